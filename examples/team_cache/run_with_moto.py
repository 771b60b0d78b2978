"""Run the team-cache example against a local S3 server (moto), as two machines.

    pip install 'checkpointing[s3]' 'moto[server]'
    python examples/team_cache/run_with_moto.py

Starts ``moto_server`` on 127.0.0.1, creates a bucket, then runs ``pipeline.py`` as
"alice" and as "bob" (each with a local tier of their own, as on two machines):
alice computes, bob hits what alice stored; after an edit of the helper, bob computes
again and alice hits bob's new entry.
"""

import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent


def start_moto() -> "tuple[subprocess.Popen, str]":
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("moto_server did not start")


def main() -> None:
    server, endpoint = start_moto()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = pathlib.Path(tmp) / "team_cache"
            shutil.copytree(HERE, work, ignore=shutil.ignore_patterns("run_with_moto.py"))
            env = {
                **os.environ,
                "AWS_ACCESS_KEY_ID": "example",
                "AWS_SECRET_ACCESS_KEY": "example",
                "FSSPEC_S3_ENDPOINT_URL": endpoint,
                "TEAM_CACHE": "s3://team-bucket/checkpointing",
                "CHECKPOINTING_SECRET": "the team's secret",
            }
            import s3fs

            s3fs.S3FileSystem(endpoint_url=endpoint, key="example", secret="example").mkdir(
                "team-bucket"
            )

            def run(who: str, title: str) -> None:
                print(f"{title} ({who})", flush=True)
                machine = {**env, "XDG_CACHE_HOME": str(pathlib.Path(tmp) / who)}
                subprocess.run([sys.executable, "pipeline.py"], cwd=work, env=machine, check=True)

            run("alice", "1. alice runs first: nothing is cached, train() runs")
            run("bob", "2. bob, another machine: answered from the bucket")
            run("bob", "3. bob again: from his local tier, no download")
            helper = work / "features.py"
            helper.write_text(helper.read_text().replace("1000.0", "100.0"))
            run("bob", "4. after an edit of the helper: bob computes again")
            run("alice", "5. alice, same code: hits bob's new entry")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
