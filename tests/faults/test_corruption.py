"""Every kind of file the cache holds, damaged every way we could think of.

Files: entries (small, read in one go; large, with out-of-band buffers), stored
analysis plans, histories, and the marker files. Damage: byte flips (header, checksum,
signature slot, payload, last byte), truncations, swaps between keys, a foreign
pickle, an empty file, a FIFO, and symbolic links (to another key's file and out of
the cache). Each damage, applied alone, must be reported by ``checkpointing verify``;
applied to every file at once, a program using the cache must still print only right
values and exit cleanly (0 wrong values, 0 crashes, 0 hangs).
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable, Dict, List

import pytest

from checkpointing import cli
from checkpointing.store import PickleFileCache

from .conftest import figure

PROGRAM = textwrap.dedent("""
    from checkpointing import checkpoint

    def want_small(x):
        return {"x": x, "items": list(range(10 * x))}

    def want_big(x):
        return bytearray([x]) * 300_000

    @checkpoint()
    def small(x):
        return {"x": x, "items": list(range(10 * x))}

    @checkpoint()
    def big(x):
        return bytearray([x]) * 300_000

    for x in (1, 2):
        print("RESULT", "ok" if small(x) == want_small(x) else "WRONG")
        print("RESULT", "ok" if big(x) == want_big(x) else "WRONG")
""")


def run(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "main.py"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("template")
    (root / "main.py").write_text(PROGRAM)
    done = run(root)
    assert done.returncode == 0 and done.stdout.count("RESULT ok") == 4, done.stderr
    return root


def files_of(root: Path) -> Dict[str, Path]:
    """One file of each kind (and its sibling, to swap with)."""
    cache_dir = root / ".checkpointing"
    entries = PickleFileCache(cache_dir).iter_entries()
    smalls, bigs = [], []
    for entry in sorted(entries, key=lambda e: e.path):
        (smalls if entry.metadata["function"].endswith(":small") else bigs).append(entry.path)
    plans = sorted((cache_dir / "analysis").glob("*.plan"))
    histories = sorted((cache_dir / "functions").glob("*.json"))
    assert len(smalls) == 2 and len(bigs) == 2 and len(plans) == 2 and len(histories) == 2
    return {
        "entry (small)": Path(smalls[0]),
        "entry (small) sibling": Path(smalls[1]),
        "entry (large)": Path(bigs[0]),
        "entry (large) sibling": Path(bigs[1]),
        "analysis plan": plans[0],
        "analysis plan sibling": plans[1],
        "history": histories[0],
        "history sibling": histories[1],
        "marker CACHEDIR.TAG": cache_dir / "CACHEDIR.TAG",
        "marker CACHEDIR.TAG sibling": cache_dir / ".gitignore",
        "marker .gitignore": cache_dir / ".gitignore",
        "marker .gitignore sibling": cache_dir / "CACHEDIR.TAG",
    }


def flip(position: int) -> Callable[[Path, Path, Path], None]:
    def damage(path: Path, sibling: Path, outside: Path) -> None:
        data = bytearray(path.read_bytes())
        data[position % len(data)] ^= 0x20
        path.write_bytes(bytes(data))

    damage.__name__ = f"flip byte {position}"
    return damage


def truncate(keep: Callable[[int], int], label: str) -> Callable[[Path, Path, Path], None]:
    def damage(path: Path, sibling: Path, outside: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: min(keep(len(data)), len(data) - 1)])

    damage.__name__ = f"truncate {label}"
    return damage


def swap(path: Path, sibling: Path, outside: Path) -> None:
    a, b = path.read_bytes(), sibling.read_bytes()
    path.write_bytes(b)
    sibling.write_bytes(a)


def foreign_pickle(path: Path, sibling: Path, outside: Path) -> None:
    path.write_bytes(pickle.dumps({"x": 1, "items": [0] * 10}))


def empty(path: Path, sibling: Path, outside: Path) -> None:
    path.write_bytes(b"")


def fifo(path: Path, sibling: Path, outside: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def symlink_to_sibling(path: Path, sibling: Path, outside: Path) -> None:
    path.unlink()
    path.symlink_to(sibling)


def symlink_outside(path: Path, sibling: Path, outside: Path) -> None:
    shutil.copyfile(sibling, outside)  # a file that looks right, outside the cache
    path.unlink()
    path.symlink_to(outside)


DAMAGES = [
    flip(0),
    flip(4),
    flip(6),
    flip(12),
    flip(20),
    flip(52),
    flip(70),
    flip(-1),
    flip(100_007),
    truncate(lambda n: n // 2, "to half"),
    truncate(lambda n: n - 1, "by one byte"),
    truncate(lambda n: 10, "to 10 bytes"),
    swap,
    foreign_pickle,
    empty,
    fifo,
    symlink_to_sibling,
    symlink_outside,
]
KINDS = [
    "entry (small)",
    "entry (large)",
    "analysis plan",
    "history",
    "marker CACHEDIR.TAG",
    "marker .gitignore",
]


def verify(cache_dir: Path) -> tuple:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["verify", "--dir", str(cache_dir)])
    return code, out.getvalue()


def copy_of(template: Path, target: Path) -> Path:
    shutil.copytree(template, target, symlinks=True)
    return target


@pytest.mark.slow
def test_each_damage_is_reported_by_verify_and_never_served(template, tmp_path) -> None:
    assert verify(template / ".checkpointing")[0] == 0
    undetected: List[str] = []
    cases = 0
    for damage in DAMAGES:
        for kind in KINDS:
            root = copy_of(template, tmp_path / f"case{cases}")
            files = files_of(root)
            path, sibling = files[kind], files[f"{kind} sibling"]
            damage(path, sibling, tmp_path / f"outside{cases}")
            code, report = verify(root / ".checkpointing")
            cases += 1
            names = {os.path.basename(path)} | (
                {os.path.basename(sibling)} if damage is swap else set()
            )
            if code != 1 or not any(name in report for name in names):
                undetected.append(f"{damage.__name__} of {kind}: {report}")
            shutil.rmtree(root)

    # Every damage at once on every kind of file: the program must still be right.
    wrong = crashes = runs = 0
    for number, damage in enumerate(DAMAGES):
        root = copy_of(template, tmp_path / f"all{number}")
        files = files_of(root)
        outside = tmp_path / f"outside-all{number}"
        for kind in (
            "entry (small)",
            "entry (large)",
            "analysis plan",
            "history",
            "marker CACHEDIR.TAG",
        ):
            damage(files[kind], files[f"{kind} sibling"], Path(f"{outside}-{kind[:5]}"))
        before = {p: p.read_bytes() for p in tmp_path.glob(f"outside-all{number}*")}
        done = run(root)
        runs += 1
        wrong += done.stdout.count("WRONG") + (4 - done.stdout.count("RESULT"))
        crashes += done.returncode != 0 or "Traceback" in done.stderr
        assert {p: p.read_bytes() for p in before} == before  # nothing written outside
        shutil.rmtree(root)
    figure(
        "corruption of entries, plans, histories, markers",
        f"{len(DAMAGES)} kinds of damage x {len(KINDS)} kinds of file = {cases} cases: "
        f"{cases - len(undetected)} reported by verify; {runs} program runs on fully "
        f"damaged caches: {wrong} wrong values, {crashes} crashes",
    )
    assert undetected == []
    assert (wrong, crashes) == (0, 0)


def test_symlinked_folders_are_never_followed_out_of_the_root(template, tmp_path) -> None:
    for folder in ("entries", "functions"):
        root = copy_of(template, tmp_path / folder)
        cache_dir = root / ".checkpointing"
        outside = tmp_path / f"outside-{folder}"
        shutil.move(str(cache_dir / folder), str(outside))
        (cache_dir / folder).symlink_to(outside)
        before = {p.name: p.read_bytes() for p in outside.iterdir()}
        cleared = subprocess.run(
            [sys.executable, "-m", "checkpointing", "clear", "--yes", "--dir", str(cache_dir)],
            capture_output=True,
            text=True,
            cwd=root,
        )
        done = run(root)
        assert done.stdout.count("RESULT ok") == 4 and done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr + cleared.stderr
        assert {p.name: p.read_bytes() for p in outside.iterdir()} == before
        if folder == "entries":
            assert cleared.returncode == 2 and "symbolic link" in cleared.stderr
            assert len(cleared.stderr.strip().splitlines()) == 1
            code, report = verify(cache_dir)
            assert code == 1 and "symbolic link" in report
    figure(
        "symlinked entries/ and functions/",
        "clear, saves and history writes: 0 files written or deleted outside the cache root",
    )
