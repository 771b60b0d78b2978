"""The shared cache against a real S3-protocol server (moto's), next to the local store.

Usage: python benchmarks/shared.py [--big-mib 256] [--calls 2000] [--cold 30]

Starts ``moto_server`` in a process of its own on 127.0.0.1 (so that the server does not
share this interpreter's GIL), and measures in the same run:

1. a small result ``f(1, 2)``: the warm hit of the local store; of the S3 store with a
   warm local tier (already checked in this process: no request); the first hit of a
   process whose tier holds the entry (one HEAD); a hit with a cold tier (HEAD + GET);
   a miss + save on each store;
2. a big result (a float64 array of ``--big-mib`` MiB): save and load on the local
   store, save and cold-tier load on S3, next to s3fs ``put_file``/``get_file`` of a
   file of the same size (the ceiling of the transfer);
3. compute-once: what the lock adds to a miss (locally and on S3), and how long a
   waiter takes to return after the holder's entry appears.

Targets (issue 14): warm-tier hit <= 1.2x the local hit; the big round trip (save +
cold load) >= 0.8x the throughput of put_file + get_file.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server() -> "tuple[subprocess.Popen, str]":
    port = _free_port()
    moto = os.path.join(os.path.dirname(sys.executable), "moto_server")
    server = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return server, endpoint
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("moto_server did not start")


def _median_us(fn, calls: int, *args) -> float:
    samples = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn(*args)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(samples)


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big-mib", type=int, default=256)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--cold", type=int, default=30)
    args = parser.parse_args()

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "benchmark")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "benchmark")
    os.environ["CHECKPOINTING_SECRET"] = "benchmark team secret"
    server, endpoint = _start_server()
    work = tempfile.mkdtemp(prefix="ckpt-shared-bench-")
    os.chdir(work)
    try:
        _run(args, endpoint, work)
    finally:
        server.terminate()
        server.wait()


def _run(args: argparse.Namespace, endpoint: str, work: str) -> None:
    import fsspec.config
    import numpy as np
    import s3fs

    from checkpointing import checkpoint, defaults
    from checkpointing.store.remote import RemoteStore

    fsspec.config.conf["s3"] = {"endpoint_url": endpoint}
    fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    fs.mkdir(bucket)
    url = f"s3://{bucket}/cache"
    tiers = iter(range(10**6))

    def tier() -> str:
        return os.path.join(work, f"tier-{next(tiers)}")

    print(f"Python {sys.version.split()[0]}, moto_server at {endpoint}, in {work}")

    # -- 1. a small result ----------------------------------------------------------
    def plain(a, b):
        return a + b

    local = checkpoint(os.path.join(work, "local"))(plain)
    defaults["cache.local_tier"] = tier()
    remote = checkpoint(url)(plain)
    local(1, 2)
    remote(1, 2)
    local_hit = _median_us(local, args.calls, 1, 2)
    warm_hit = _median_us(remote, args.calls, 1, 2)
    key = remote.key(1, 2)
    shared_tier = tier()
    RemoteStore(url, local_tier=shared_tier).retrieve(key)

    def first_hit_warm_tier() -> None:
        RemoteStore(url, local_tier=shared_tier).retrieve(key)

    cold_tier = tier()
    RemoteStore(url, local_tier=cold_tier).retrieve(key)

    def cold_hit() -> None:
        store = RemoteStore(url, local_tier=cold_tier)
        store._forget(key)  # the tier (made already) without this entry
        store.retrieve(key)

    first_hit = _median_us(first_hit_warm_tier, args.cold)
    cold = _median_us(cold_hit, args.cold)
    counter = iter(range(10, 10**6))
    local_miss = _median_us(lambda: local(next(counter), 0), args.cold)
    remote_miss = _median_us(lambda: remote(next(counter), 0), args.cold)
    print("\n1. small result f(1, 2)                    median")
    print(f"   local store, warm hit                 {local_hit:10.1f} us")
    print(
        f"   S3, warm tier (checked this process)  {warm_hit:10.1f} us   "
        f"{warm_hit / local_hit:.2f}x local (target <= 1.2x)"
    )
    print(
        f"   S3, first hit of a process, warm tier {first_hit / 1000:10.2f} ms   "
        f"(one conditional GET: 304)"
    )
    print(f"   S3, cold tier                         {cold / 1000:10.2f} ms   (one GET)")
    print(f"   local store, miss + save              {local_miss / 1000:10.2f} ms")
    print(f"   S3, miss + save                       {remote_miss / 1000:10.2f} ms")

    # -- 2. a big result ------------------------------------------------------------
    mib = args.big_mib
    big = np.arange(mib * (1 << 20) // 8, dtype=np.float64)
    nbytes = big.nbytes

    def make_big(n):
        return big

    local_big = checkpoint(os.path.join(work, "local-big"))(make_big)
    local_save = _timed(local_big, 1)
    local_load = min(_timed(local_big, 1) for _ in range(3))

    store = RemoteStore(url, local_tier=tier())
    remote_save = _timed(store.save, "big", big)
    cold_loads = []
    for _ in range(3):
        reader = RemoteStore(url, local_tier=tier())
        cold_loads.append(_timed(reader.retrieve, "big"))
    remote_load = min(cold_loads)
    warm_store = reader
    warm_load = min(_timed(warm_store.retrieve, "big") for _ in range(3))

    raw = os.path.join(work, "raw.bin")
    with open(raw, "wb") as out:
        out.write(memoryview(big).cast("B"))
    puts, gets = [], []
    for i in range(3):
        puts.append(_timed(fs.put_file, raw, f"{bucket}/raw/{i}.bin"))
        target = os.path.join(work, f"raw-{i}.bin")
        gets.append(_timed(fs.get_file, f"{bucket}/raw/{i}.bin", target))
        os.remove(target)
    put, get = min(puts), min(gets)
    ours = remote_save + remote_load
    print(f"\n2. a {mib} MiB float64 array                 seconds   MB/s")
    for name, seconds in (
        ("local store, save", local_save),
        ("local store, load (page cache warm)", local_load),
        ("S3, save (tier write + upload)", remote_save),
        ("S3, load with a cold tier (download)", remote_load),
        ("S3, load with a warm tier", warm_load),
        ("s3fs put_file of the same bytes", put),
        ("s3fs get_file of the same bytes", get),
    ):
        print(f"   {name:<38} {seconds:8.3f}  {nbytes / seconds / 1e6:7.0f}")
    print(
        f"   round trip: ours {ours:.3f} s, put_file + get_file {put + get:.3f} s: "
        f"{(put + get) / ours:.2f}x their throughput (target >= 0.8x)"
    )

    # -- 3. compute-once --------------------------------------------------------------
    def overhead(directory: str) -> "tuple[float, float]":
        defaults["cache.local_tier"] = tier()
        on = checkpoint(directory, compute_once=True)(plain)
        defaults["cache.local_tier"] = tier()
        off = checkpoint(directory + "-off", compute_once=False)(plain)
        numbers = iter(range(10**6))
        return (
            _median_us(lambda: on(next(numbers), 1), args.cold),
            _median_us(lambda: off(next(numbers), 1), args.cold),
        )

    holder_program = os.path.join(work, "holder.py")
    for name, text in (("holder.py", HOLDER), ("slowlib.py", SLOW)):
        with open(os.path.join(work, name), "w") as out:
            out.write(text)

    def waiter_latency(directory: str) -> float:
        """Another process holds the key for 1 s; this one waits (polling) and hits."""
        env = {**os.environ, "FSSPEC_S3_ENDPOINT_URL": endpoint, "CACHE": directory}
        holder = subprocess.Popen(
            [sys.executable, holder_program], env=env, stdout=subprocess.PIPE, text=True, cwd=work
        )
        assert holder.stdout.readline().strip() == "COMPUTING"
        defaults["cache.local_tier"] = tier()
        sys.path.insert(0, work)
        try:
            import slowlib
        finally:
            sys.path.pop(0)
        f = checkpoint(directory)(slowlib.slow)
        assert f(7) == 7
        returned = time.time()
        saved = float(holder.stdout.readline().split()[1])
        holder.wait()
        return returned - saved

    print("\n3. compute-once                              median")
    for name, directory in (("local", os.path.join(work, "once")), ("S3", f"{url}-once")):
        with_lock, without = overhead(directory)
        print(
            f"   {name:<5} miss + save, compute_once on  {with_lock / 1000:8.2f} ms, "
            f"off {without / 1000:8.2f} ms: +{(with_lock - without) / 1000:.2f} ms"
        )
    for name, directory in (("local", os.path.join(work, "wait")), ("S3", f"{url}-wait")):
        latencies = [waiter_latency(directory + str(i)) for i in range(5)]
        print(
            f"   {name:<5} a waiting process returns {statistics.median(latencies) * 1000:.1f}"
            f" ms after the holder's entry is saved (median of 5)"
        )


SLOW = """
import time


def slow(x):
    print("COMPUTING", flush=True)
    time.sleep(1.0)
    return x
"""

HOLDER = """
import os
import time

from checkpointing import checkpoint

import slowlib

f = checkpoint(os.environ["CACHE"])(slowlib.slow)
original = f.checkpoint.cache.save_entry


def noting(*args, **kwargs):
    original(*args, **kwargs)
    print("SAVED", time.time(), flush=True)


f.checkpoint.cache.save_entry = noting
f(7)
"""

if __name__ == "__main__":
    main()
