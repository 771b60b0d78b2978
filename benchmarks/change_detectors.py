"""Does CPython tell, without reading it, that an object's attribute changed?

Usage: python benchmarks/change_detectors.py   (run it with each interpreter)

A warm hit must show that nothing its key depends on changed. In Python that means
reading every place (see benchmarks/large_project.py, which measures it). CPython has
two detectors in C: dict watchers (3.12+, ``PyDict_AddWatcher``) and the version tag of
PEP 509 (``ma_version_tag``, 3.6 to 3.13, deprecated in 3.12, removed in 3.14). This
script reaches both through ``ctypes`` and reports whether each sees a change to a
plain dict and to an instance attribute (the dispatchers of networkx are instances).
It is evidence for docs/performance.md, not part of the package.
"""

from __future__ import annotations

import ctypes
import sys


def version_tag(d: dict) -> int:
    offset = object.__basicsize__ + ctypes.sizeof(ctypes.c_ssize_t)  # after ma_used
    return ctypes.c_uint64.from_address(id(d) + offset).value


class Plain:
    pass


def main() -> None:
    print(f"Python {sys.version.split()[0]}")
    d = {"a": 1}
    before = version_tag(d)
    d["a"] = 2
    print(f"  version tag, plain dict item set: changed={version_tag(d) != before}")
    obj = Plain()
    obj.x = 1
    attributes = obj.__dict__
    before = version_tag(attributes)
    obj.x = 2
    print(f"  version tag, instance attribute set: changed={version_tag(attributes) != before}")

    api = ctypes.pythonapi
    if not hasattr(api, "PyDict_AddWatcher"):
        print("  dict watchers: not in this version")
        return
    callback_type = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p
    )
    events = []

    @callback_type
    def callback(event, _dict, _key, _value):  # noqa: ANN001, ANN202
        events.append(event)
        return 0

    api.PyDict_AddWatcher.argtypes = [callback_type]
    api.PyDict_Watch.argtypes = [ctypes.c_int, ctypes.py_object]
    api.PyDict_Unwatch.argtypes = [ctypes.c_int, ctypes.py_object]
    api.PyDict_ClearWatcher.argtypes = [ctypes.c_int]
    watcher = api.PyDict_AddWatcher(callback)
    try:
        for label, target, change in (
            ("plain dict item set", d, lambda: d.__setitem__("a", 3)),
            ("instance attribute set", attributes, lambda: setattr(obj, "x", 3)),
        ):
            api.PyDict_Watch(watcher, target)
            events.clear()
            change()
            api.PyDict_Unwatch(watcher, target)
            print(f"  dict watcher, {label}: notified={bool(events)}")
    finally:
        api.PyDict_ClearWatcher(watcher)  # else the interpreter may crash at exit


if __name__ == "__main__":
    main()
