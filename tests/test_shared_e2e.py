"""Programs sharing one bucket (issue 14, part 1): two machines, a killed writer,
concurrent writers of one key.

Each "machine" is a program run with its own local tier (``XDG_CACHE_HOME``); all of
them use one bucket on the moto server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

HELPERS = """
FACTOR = {factor}


def scale(x):
    return x * FACTOR
"""

MAIN = """
import os

from checkpointing import checkpoint

import helpers


@checkpoint(os.environ["CACHE"])
def f(x):
    print("RAN f", x, flush=True)
    return helpers.scale(x)


print("RESULT", f(2), f(3), flush=True)
"""


def _machine(s3, tmp_path, name):
    return {**s3.env, "CACHE": s3.url, "XDG_CACHE_HOME": str(tmp_path / f"machine-{name}")}


def test_two_machines_share_one_bucket(project, s3, tmp_path) -> None:
    a, b = _machine(s3, tmp_path, "a"), _machine(s3, tmp_path, "b")
    project.write("helpers.py", HELPERS.format(factor=10))
    project.write("main.py", MAIN)
    first = project.run(env=a)
    assert first.ran == ["f 2", "f 3"] and first.results == ["20 30"]
    second = project.run(env=b)  # the other machine: hits, downloaded into its tier
    assert second.ran == [] and second.results == ["20 30"]
    assert project.run(env=b).ran == []  # from its warm tier now
    project.write("helpers.py", HELPERS.format(factor=7))
    third = project.run(env=b)
    assert third.ran == ["f 2", "f 3"] and third.results == ["14 21"]
    fourth = project.run(env=a)  # a's tier holds the old entries: not served
    assert fourth.ran == [] and fourth.results == ["14 21"]
    assert "Warning" not in first.stderr + second.stderr + third.stderr + fourth.stderr


BIG = """
import os
import sys

from checkpointing import checkpoint


@checkpoint(
    os.environ["CACHE"],
    compute_once=False,
    ignore=["fill", "writers"],
    track_files=False,  # the markers below are how the test synchronises, not inputs
    allow_side_effects=True,
)
def big(n, fill, writers):
    print("RAN big", n, flush=True)
    if writers:  # all compute before any saves: the saves overlap
        open(f"computed-{fill}", "w").close()
        while len([name for name in os.listdir(".") if name.startswith("computed-")]) < writers:
            pass
    return bytes([fill]) * n


if len(sys.argv) > 2:  # wait for the starting gun
    while not os.path.exists(sys.argv[2]):
        pass
fill = int(sys.argv[1]) if len(sys.argv) > 1 else 1
value = big(int(os.environ["SIZE"]), fill, int(sys.argv[3]) if len(sys.argv) > 3 else 0)
print("RESULT", len(value), set(value), flush=True)
"""


@pytest.mark.slow
def test_a_writer_killed_mid_upload_leaves_no_entry(project, s3, tmp_path) -> None:
    project.write("big.py", BIG)
    size = 110 << 20  # above s3fs's 50 MiB part size: a multipart upload
    env = {**os.environ, **_machine(s3, tmp_path, "a"), "SIZE": str(size)}
    writer = subprocess.Popen(
        [sys.executable, "big.py"], cwd=project.root, env=env, stdout=subprocess.PIPE, text=True
    )
    client = s3.client()
    deadline = time.monotonic() + 120
    while not client.list_multipart_uploads(Bucket=s3.name).get("Uploads"):
        assert writer.poll() is None, "the upload finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert s3.objects() == {}  # nothing visible: the upload never completed
    reader = project.run("big.py", env={**_machine(s3, tmp_path, "b"), "SIZE": str(size)})
    assert reader.ran == [f"big {size}"] and reader.results == [f"{size} {{1}}"]
    assert "CorruptEntryWarning" not in reader.stderr
    assert "CheckpointFailedWarning" not in reader.stderr
    again = project.run("big.py", env={**_machine(s3, tmp_path, "c"), "SIZE": str(size)})
    assert again.ran == [] and again.results == [f"{size} {{1}}"]


@pytest.mark.slow
def test_concurrent_writers_of_one_key_leave_one_valid_entry(project, s3, tmp_path) -> None:
    project.write("big.py", BIG)
    go = project.root / "go"
    size = 8 << 20
    writers = [
        subprocess.Popen(
            [sys.executable, "big.py", fill, str(go), "3"],
            cwd=project.root,
            env={
                **os.environ,
                **_machine(s3, tmp_path, name),
                "SIZE": str(size),
                "PYTHONDONTWRITEBYTECODE": "1",
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, fill in (("a", "1"), ("b", "2"), ("c", "3"))
    ]
    time.sleep(1.0)
    go.write_text("")
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0 and f"RAN big {size}" in out, err
    assert len(s3.objects()) == 1
    reader = project.run("big.py", env={**_machine(s3, tmp_path, "d"), "SIZE": str(size)})
    assert reader.ran == [] and "CorruptEntryWarning" not in reader.stderr, reader.stderr
    (result,) = reader.results
    assert result in {f"{size} {{1}}", f"{size} {{2}}", f"{size} {{3}}"}


@pytest.mark.slow
def test_the_team_cache_example_runs_against_moto() -> None:
    example = os.path.join(
        os.path.dirname(__file__), "..", "examples", "team_cache", "run_with_moto.py"
    )
    out = subprocess.run(
        [sys.executable, example], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    steps = out.split("\n")
    trained = [steps[i - 1][:2] for i, line in enumerate(steps) if "training" in line]
    assert trained == ["1.", "4."], out
    scores = [line.split()[1] for line in steps if line.strip().startswith("score")]
    assert scores == ["499.500", "499.500", "499.500", "4995.000", "4995.000"], out
