"""The global random generators' state is not part of the key (like the clock).

``random.choice`` and numpy's ``np.random.rand`` are bound methods of a hidden
generator seeded afresh in every process: a function whose code reads them depends on
the library function, not on the generator's state. Digesting that state made every
new process miss (networkx keeps ``from random import choice`` in a module global).
"""

from __future__ import annotations

HELPERS = """
from random import choice, random
import numpy as np

PICK = choice
DRAW = np.random.rand


def noisy(x):
    return x + 0 * PICK([1, 2]) + 0 * random() + 0 * float(DRAW())
"""

MAIN = """
import random
from checkpointing import checkpoint
import helpers


@checkpoint
def f(x):
    print("RAN f")
    return helpers.noisy(x) * {factor}


print("RESULT", f(2), f(2))
random.random()
print("RESULT", f(2))
"""


def test_a_new_process_hits_although_the_generators_were_seeded_afresh(project):
    project.write("helpers.py", HELPERS)
    project.write("main.py", MAIN.format(factor=3))
    first = project.run("main.py")
    assert first.ran == ["f"]  # the draws between calls do not change the key either
    again = project.run("main.py")
    assert again.ran == [] and again.results == first.results
    project.write("main.py", MAIN.format(factor=4))  # the code still counts
    edited = project.run("main.py")
    assert edited.ran == ["f"] and edited.results != first.results
