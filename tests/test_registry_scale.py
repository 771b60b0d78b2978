"""Registries of functions that reach each other through the registry (issue #9 §2).

A project global container of functions whose functions read the same container is
a cycle through values: digesting it once per key, as a strongly connected component,
keeps the cost linear (it was exponential). These programs run in subprocesses; what
re-ran and the values are checked against a fresh run. No timing is asserted (see
``benchmarks/large_project.py``), but the 200-function registry would not finish
within the test's timeout with an exponential walk.
"""

from __future__ import annotations

import shutil

N = 200


def registry_source(n: int, bump: int = -1) -> str:
    """``n`` functions in REGISTRY, each reading REGISTRY and calling the next one;
    function ``bump`` adds 1000 to its term."""
    lines = ["REGISTRY = {}", "SCALE = [1]", ""]
    for i in range(n):
        term = i + 1 + (1000 if i == bump else 0)
        lines += [
            f"def f{i}(x, depth=0):",
            "    if depth >= len(REGISTRY) - 1:",
            f"        return x + {term} * SCALE[0]",
            f"    return REGISTRY['f{(i + 1) % n}'](x, depth + 1) + {term}",
            "",
        ]
    lines += [f"REGISTRY['f{i}'] = f{i}" for i in range(n)]
    return "\n".join(lines) + "\n"


MAIN = """
import sys
from checkpointing import checkpoint
from proj import reg

@checkpoint
def run(x):
    print("RAN run")
    return reg.f0(x)

print("RESULT", run(1))
"""


def _project(project, n=N, bump=-1):
    project.write("proj/__init__.py", "")
    project.write("proj/reg.py", registry_source(n, bump))
    project.write("proj/main.py", MAIN)


def test_large_registry_hits_and_reruns_when_one_function_changes(project, tmp_path):
    _project(project)
    first = project.run("-m", "proj.main")
    assert first.ran == ["run"]
    again = project.run("-m", "proj.main")
    assert again.ran == [] and again.results == first.results

    # One function deep inside the registry changes: the key must change.
    project.write("proj/reg.py", registry_source(N, bump=137))
    edited = project.run("-m", "proj.main")
    assert edited.ran == ["run"]
    fresh_root = tmp_path / "fresh"
    shutil.copytree(project.root, fresh_root, ignore=shutil.ignore_patterns(".checkpointing"))
    fresh = type(project)(fresh_root).run("-m", "proj.main")
    assert edited.results == fresh.results != first.results

    # And back: the earlier entry is found again.
    project.write("proj/reg.py", registry_source(N))
    back = project.run("-m", "proj.main")
    assert back.ran == [] and back.results == first.results


DIGESTS = """
import sys
from checkpointing import hashing, keyplan  # keyplan digests functions by their code
from proj import reg

start = int(sys.argv[1])
# The first digest walks the whole component from ``start``; the others reuse it.
first = hashing.hexdigest_value(getattr(reg, f"f{start}"))
for i in (0, 3, 7, 11):
    print("RESULT", i, hashing.hexdigest_value(getattr(reg, f"f{i}")))
print("RESULT registry", hashing.hexdigest_value(reg.REGISTRY))
"""


def test_digest_does_not_depend_on_the_member_digested_first(project):
    """Two processes entering the cycle at different members agree on every digest
    (a walk that numbered nodes from its start would not)."""
    _project(project, n=12)
    project.write("digests.py", DIGESTS)
    runs = [project.run("digests.py", str(start)).results for start in (0, 5, 11)]
    assert runs[0] == runs[1] == runs[2]
    member_digests = [line.split()[1] for line in runs[0][:-1]]
    assert len(set(member_digests)) == len(member_digests)  # members stay distinct


def test_digest_changes_for_every_member_when_one_changes(project):
    _project(project, n=12)
    project.write("digests.py", DIGESTS)
    before = project.run("digests.py", "0").results
    project.write("proj/reg.py", registry_source(12, bump=9))
    after = project.run("digests.py", "4").results
    assert all(a != b for a, b in zip(before, after))


MUTATIONS = """
from checkpointing import checkpoint
from proj import reg

@checkpoint
def run(x):
    print("RAN run")
    return reg.f0(x)

print("RESULT", run(1))
print("RESULT", run(1))                # a hit: nothing changed
reg.REGISTRY["extra"] = reg.f3         # the registry gains an entry
print("RESULT", run(1))
print("RESULT", run(1))
reg.SCALE[0] = 5                       # a list read by the last function called
print("RESULT", run(1))
del reg.REGISTRY["extra"]
reg.SCALE[0] = 1                       # everything as at first: the first entry again
print("RESULT", run(1))
"""


def test_mutated_registry_or_value_read_inside_it_reruns_in_process(project):
    """A hit skips digesting the registry only while nothing it holds changed."""
    _project(project, n=30)
    project.write("mutations.py", MUTATIONS)
    out = project.run("mutations.py")
    assert out.ran == ["run", "run", "run"]
    r = [int(v) for v in out.results]
    assert r[0] == r[1] == r[5]
    # With 31 entries the chain is one step longer; then SCALE multiplies the last term.
    assert r[2] == r[3] != r[0]
    assert r[4] != r[3]


OTHER_CONTAINERS = """
import collections
from checkpointing import checkpoint


def double(x):
    return 2 * x


def triple(x):
    return 3 * x


class Holder:
    __slots__ = ("op",)  # no __dict__: the witness digests it again at each check

    def __init__(self, op):
        self.op = op


OPS = collections.defaultdict(lambda: double, {"a": double})
HELD = Holder(double)


@checkpoint
def run(x):
    print("RAN run")
    return OPS["a"](x) + HELD.op(x)


print("RESULT", run(5))
print("RESULT", run(5))        # a hit
OPS["a"] = triple               # another function in a defaultdict
print("RESULT", run(5))
HELD.op = triple                # and in an object with slots
print("RESULT", run(5))
print("RESULT", run(5))        # a hit again
"""


def test_functions_in_containers_the_witness_cannot_copy_are_checked(project):
    """A hit reuses digests only while what values hold is the same: containers that
    cannot be copied cheaply (defaultdict, objects with slots) are digested again,
    with the functions inside compared by identity."""
    project.write("main.py", OTHER_CONTAINERS)
    out = project.run("main.py")
    assert out.ran == ["run", "run", "run"], out
    assert out.results == ["20", "20", "25", "30", "30"], out
