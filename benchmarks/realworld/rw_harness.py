"""Runs a driver's calls in one process and prints what happened as one JSON line.

Copied next to the driver into the temporary project folder. ``RW_MODE`` selects:
``cached`` (the driver's functions decorated with ``checkpoint``), ``plain`` (undecorated)
or ``trace`` (undecorated, recording the lines of the project each call executes).
Function bodies report their runs with ``ran(name)``; the record lives on the ``sys``
module because a global list would be a value the functions read.
"""

import hashlib
import json
import os
import sys
import time
import warnings

MODE = os.environ.get("RW_MODE", "cached")
ROOT = os.path.dirname(os.path.abspath(__file__))
sys.rw_ran = []
WARM_HITS = 21


def cache(func):
    """``checkpoint`` in cached mode; the function itself otherwise."""
    if MODE != "cached":
        return func
    from checkpointing import checkpoint

    return checkpoint(func)


def ran(name):
    sys.rw_ran.append(name)


def _fingerprint(value):
    text = repr(value)
    return hashlib.sha256(text.encode()).hexdigest()[:16], text[:80]


def _tracer(lines):
    def local(frame, event, arg):
        if event == "line":
            lines.add((frame.f_code.co_filename, frame.f_lineno))
        return local

    def global_(frame, event, arg):
        filename = frame.f_code.co_filename
        if filename.startswith(ROOT):
            lines.add((filename, frame.f_lineno))
            return local
        return None

    return global_


def main(calls):
    """Run each ``(name, function, args)`` twice in this process; print the record."""
    out = {"mode": MODE, "calls": {}, "warnings": []}

    def show(message, category, filename, lineno, file=None, line=None):
        if MODE == "cached" and category.__module__.startswith("checkpointing"):
            out["warnings"].append(f"{category.__name__}: {message}"[:300])

    warnings.showwarning = show
    warnings.simplefilter("always")
    for name, func, args in calls:
        record = out["calls"][name] = {}
        for attempt in (1, 2):
            before = len(sys.rw_ran)
            lines = set()
            if MODE == "trace" and attempt == 1:
                sys.settrace(_tracer(lines))
            start = time.perf_counter()
            try:
                value = func(*args)
                error = None
            except Exception as exc:  # reported, not hidden: a crash of the call
                value, error = None, f"{type(exc).__name__}: {exc}"[:300]
            finally:
                sys.settrace(None)
            elapsed = time.perf_counter() - start
            record[f"ran{attempt}"] = name in sys.rw_ran[before:]
            record[f"ms{attempt}"] = elapsed * 1000
            record[f"value{attempt}"], record["head"] = _fingerprint(value)
            record[f"error{attempt}"] = error
            if lines:
                record["lines"] = sorted([os.path.relpath(f, ROOT), n] for f, n in lines)
        if MODE == "cached" and record["error2"] is None:
            # The warm hit: more hits in this process, median; a run among them is a
            # needless re-run like any other.
            before = len(sys.rw_ran)
            times = []
            for _ in range(WARM_HITS):
                start = time.perf_counter()
                func(*args)
                times.append(time.perf_counter() - start)
            record["warm_us"] = sorted(times)[len(times) // 2] * 1e6
            record["ran_warm"] = name in sys.rw_ran[before:]
    if MODE == "cached":
        out["plain_us"] = _plain_hit()
        out["floor_ms"] = _floor()
    print("RW-RESULT " + json.dumps(out))


def _floor():
    """The least any sound check of these keys must do in a new process, measured here
    (so with warm caches: a lower bound): read every place the plans read (globals,
    attributes, defaults, cells) once and digest every distinct object read once, in a
    single pass, the definitions inside as placeholders (their own reads are among the
    places). Not counted: the source files' digests and the check of each name."""
    from checkpointing import keyplan

    plans = list(keyplan._PLANS.values()) + list(keyplan._LOCAL_PLANS.values())
    places = [get for plan in plans for get in plan._getters]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        read = [get() for get in places]
        keyplan._probe(list({id(v): v for v in read}.values()))
        best = min(best, time.perf_counter() - start)
    return best * 1000


def _alone(x):
    return x + 1


def _plain_hit():
    """The warm hit of a function with no dependencies, measured like the others."""
    alone = cache(_alone)
    alone(1)
    alone(1)
    times = []
    for _ in range(WARM_HITS):
        start = time.perf_counter()
        alone(1)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1e6
