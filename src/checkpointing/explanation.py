"""Why a call re-runs: the difference between a call and the nearest earlier entry.

Each entry is stored with a fingerprint of its key, part by part: the digest of each
reached definition, of each global it read and of each argument
(:meth:`AutoFuncCallIdentifier.fingerprint`). On a miss, the fingerprint of the call
is compared with those of the function's recent entries; the nearest one (fewest
differences) names what changed. This module owns that comparison and its wording.

:func:`explain_stored` answers from the records alone, without importing the
function's module (``checkpointing why pkg.mod:f`` without arguments): what changed
between its last two entries, and whether the files its stored analysis covers changed
on disk since (which would re-run it).
"""

from __future__ import annotations

from collections import namedtuple

from .source import display_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, NamedTuple, Optional

__all__ = [
    "Change",
    "Explanation",
    "StoredExplanation",
    "diff",
    "explain",
    "explain_stored",
    "nearest",
]


if TYPE_CHECKING:
    _ChangeFields = NamedTuple("Change", [("kind", str), ("name", str), ("where", Optional[str])])
else:
    # The same without importing typing at run time (issue 12, target 5).
    _ChangeFields = namedtuple("Change", "kind name where", defaults=(None,))


class Change(_ChangeFields):
    """One difference between a call and an earlier entry.

    ``kind`` is ``"code"`` (a definition's canonical code), ``"reached"`` (a
    definition reached now but not then), ``"unreached"`` (the reverse),
    ``"global"`` (a value read) or ``"argument"``. ``where`` is ``file:line`` for code.
    """

    __slots__ = ()

    def __str__(self) -> str:
        at = f" ({self.where})" if self.where else ""
        if self.kind == "code":
            return f"{self.name} changed{at}"
        if self.kind == "reached":
            return f"{self.name} is now reached{at}"
        if self.kind == "unreached":
            return f"{self.name} is no longer reached"
        if self.kind == "global":
            return f"global {self.name} changed"
        if self.kind == "version":
            return self.name
        return f"new argument values ({self.name})"


def _where(node: Any) -> Optional[str]:
    if isinstance(node, list) and len(node) >= 3 and node[1]:
        path = display_path(node[1])
        return f"{path}:{node[2]}" if node[2] else path
    return None


def diff(now: Dict[str, Any], before: Dict[str, Any]) -> List[Change]:
    """The changes from fingerprint ``before`` to fingerprint ``now``."""
    changes: List[Change] = []
    nodes_now, nodes_before = now.get("nodes", {}), before.get("nodes", {})
    for name, node in nodes_now.items():
        if name not in nodes_before:
            changes.append(Change("reached", name, _where(node)))
        elif node[0] != nodes_before[name][0]:
            changes.append(Change("code", name, _where(node)))
    changes.extend(Change("unreached", name) for name in nodes_before if name not in nodes_now)
    globals_now, globals_before = now.get("globals", {}), before.get("globals", {})
    changes.extend(
        Change("global", name)
        for name in globals_now
        if globals_before.get(name) != globals_now[name]
    )
    versions_now, versions_before = now.get("versions", {}), before.get("versions", {})
    changes.extend(
        Change("version", f"{name} {versions_before.get(name, 'none')} -> {version}")
        for name, version in versions_now.items()
        if versions_before and versions_before.get(name) != version
    )
    args_now, args_before = now.get("arguments", {}), before.get("arguments", {})
    changed_args = [name for name in args_now if args_before.get(name) != args_now[name]]
    code_now, code_before = now.get("argument_code"), before.get("argument_code")
    if changed_args and code_now is not None and code_before is not None:
        # An argument's digest covers the code of its class: name what changed there,
        # and call the values new only where they differ with classes taken by name.
        named = {c.name for c in changes}
        changed_code = [
            name
            for name, node in code_now.items()
            if name in code_before and node[0] != code_before[name][0] and name not in named
        ]
        found = [
            Change("code", name, _where(code_now[name]))
            for name in changed_code
            # A class whose method changed changed too: the method says more.
            if not any(other.startswith(name + ".") for other in changed_code)
        ]
        found += [
            Change("reached", name, _where(node))
            for name, node in code_now.items()
            if name not in code_before and name not in named
        ]
        found += [
            Change("unreached", name)
            for name in code_before
            if name not in code_now and name not in named
        ]
        changes.extend(found)
        values_now, values_before = now.get("argument_values"), before.get("argument_values")
        if found and values_now is not None and values_before is not None:
            changed_args = [
                name for name in changed_args if values_before.get(name) != values_now.get(name)
            ]
    if changed_args:
        changes.append(Change("argument", ", ".join(changed_args)))
    return changes


def nearest(now: Dict[str, Any], history: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The earlier entry with the fewest differences (the most recent among equals)."""
    best, best_count = None, None
    for entry in reversed(history):
        if "nodes" not in entry:
            continue
        count = len(diff(now, entry))
        if best_count is None or count < best_count:
            best, best_count = entry, count
    return best


class Explanation:
    """Whether a call is answered from the cache and, if not, why.

    Attributes:
        function: the function's qualified name (``pkg.mod:func``).
        key: the key of the call.
        hit: True when an entry exists for the key.
        changes: on a miss, the :class:`Change` list versus ``nearest_key``.
        nearest_key: the key of the nearest earlier entry (None on a first call).
    """

    def __init__(
        self,
        function: str,
        key: str,
        hit: bool,
        changes: List[Change],
        nearest_key: Optional[str],
        has_history: bool,
    ) -> None:
        self.function = function
        self.key = key
        self.hit = hit
        self.changes = changes
        self.nearest_key = nearest_key
        self.has_history = has_history
        # What the analysis could not see (``file:line what``): changes there are not
        # tracked, whatever the answer says.
        self.blind_spots: List[str] = []
        # What else decides the answer (``version=``, code accepted as equivalent).
        self.notes: List[str] = []

    @property
    def first_call(self) -> bool:
        """No earlier entry of this function is known."""
        return not self.hit and not self.has_history

    def to_dict(self) -> Dict[str, Any]:
        """The explanation as plain data (for ``--json``)."""
        return {
            "function": self.function,
            "key": self.key,
            "hit": self.hit,
            "first_call": self.first_call,
            "nearest_key": self.nearest_key,
            "changes": [c._asdict() for c in self.changes],
            "summary": self._answer(),
            "blind_spots": list(self.blind_spots),
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        text = self._answer()
        for note in self.notes:
            text += f"\n  note: {note}"
        if self.blind_spots:
            text += "\n  not tracked (blind spots): " + "; ".join(self.blind_spots)
        return text

    def _answer(self) -> str:
        if self.hit:
            return f"{self.function}: answered from the cache (entry {self.key})"
        if self.first_call:
            return f"{self.function} runs: first call"
        if not self.changes:
            return (
                f"{self.function} re-runs: no entry for this key, though nothing "
                f"tracked differs from entry {self.nearest_key} (it was deleted, or "
                f"stored by another Python or checkpointing version)"
            )
        return f"{self.function} re-runs: " + "; ".join(str(c) for c in self.changes)

    def __repr__(self) -> str:
        return f"<Explanation {self}>"


def explanation_for(
    function: str,
    key: str,
    hit: bool,
    fingerprint: Optional[Dict[str, Any]],
    history: List[Dict[str, Any]],
) -> Explanation:
    """Build the explanation of a call from its fingerprint and the function's history."""
    if hit or fingerprint is None:
        return Explanation(function, key, hit, [], None, bool(history))
    entry = nearest(fingerprint, history)
    if entry is None:
        return Explanation(function, key, False, [], None, bool(history))
    return Explanation(function, key, False, diff(fingerprint, entry), entry.get("key"), True)


def explain(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Explanation:
    """Would ``func(*args, **kwargs)`` be answered from the cache, and if not, why?

    ``func`` is a function decorated with :func:`checkpointing.checkpoint`. Nothing
    runs and nothing is stored::

        >>> print(checkpointing.explain(train, data, lr=0.1))
        pipeline:train re-runs: proj.features:scale changed (proj/features.py:12)
    """
    decorator = getattr(func, "checkpoint", None)
    original = getattr(func, "__wrapped__", None)
    if decorator is None or original is None:
        raise TypeError(
            f"explain() takes a function decorated with @checkpoint, not "
            f"{func!r}; decorate it first"
        )
    return decorator.explain(original, args, kwargs)


class StoredExplanation:
    """What the stored records say about a function, read without importing its module.

    Attributes:
        function: ``pkg.mod:func``.
        entries: how many recent entries its history holds.
        latest_key: the key of the most recent entry (None without history).
        latest_created: when it was stored (seconds since the epoch, or None).
        last_changes: the :class:`Change` list from the entry before it to it.
        previous_key: the key of that entry before it (None with one entry).
        analysed: a stored analysis of the function was found.
        changed_files: the files that analysis covers which changed on disk since.
        checked_files: how many files it covers.
        reads: the globals and closure cells its key reads (their values need an import).
        blind_spots: what the analysis could not see (``file:line what``).
        latest_stored: the most recent entry is still in the store.
        version: the ``version=`` standing for its code, if the latest entry has one.
    """

    def __init__(self, function: str, module: str) -> None:
        self.function = function
        self.module = module
        self.entries = 0
        self.latest_key: Optional[str] = None
        self.latest_created: Optional[float] = None
        self.last_changes: List[Change] = []
        self.previous_key: Optional[str] = None
        self.analysed = False
        self.changed_files: List[str] = []
        self.checked_files = 0
        self.reads: List[str] = []
        self.blind_spots: List[str] = []
        self.version: Optional[str] = None
        self.latest_stored = True

    @property
    def would_rerun(self) -> bool:
        """A file the stored analysis covers changed on disk since the last run."""
        return bool(self.changed_files) and self.version is None

    def to_dict(self) -> Dict[str, Any]:
        """The answer as plain data (for ``--json``)."""
        return {
            "function": self.function,
            "source": "stored records",
            "imported": False,
            "entries": self.entries,
            "latest_key": self.latest_key,
            "latest_created": self.latest_created,
            "latest_stored": self.latest_stored,
            "previous_key": self.previous_key,
            "last_changes": [c._asdict() for c in self.last_changes],
            "analysed": self.analysed,
            "changed_files": [display_path(f) for f in self.changed_files],
            "checked_files": self.checked_files,
            "would_rerun": self.would_rerun,
            "reads": list(self.reads),
            "blind_spots": list(self.blind_spots),
            "version": self.version,
            "summary": str(self).splitlines()[0],
        }

    def __str__(self) -> str:
        import time

        name = self.function
        lines = [
            f"{name}: from the stored records (fingerprints and analysis), without "
            f"importing {self.module}"
        ]
        if self.latest_key is None:
            lines.append("  no entry is recorded: its first call runs it")
            return "\n".join(lines)
        when = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(self.latest_created))
            if isinstance(self.latest_created, (int, float))
            else "?"
        )
        lines.append(
            f"  last entry: {self.latest_key} ({when}), {self.entries} recorded"
            + ("" if self.latest_stored else "; it was deleted since")
        )
        if self.previous_key is not None:
            what = "; ".join(str(c) for c in self.last_changes) or (
                "nothing tracked differs (other arguments, or another Python)"
            )
            lines.append(f"  since the entry before it ({self.previous_key}): {what}")
        if self.version is not None:
            lines.append(f"  its code is not tracked: version={self.version!r} stands for it")
        elif not self.analysed:
            lines.append(
                "  its analysis is not stored: whether its code changed needs an import "
                "(pass --import)"
            )
        elif self.changed_files:
            files = ", ".join(display_path(f) for f in self.changed_files)
            lines.append(
                f"  would re-run: {files} changed on disk since the last run (unless the "
                f"edit changes no code it reaches, a comment say, or goes back to code an "
                f"entry was stored for)"
            )
        else:
            lines.append(
                f"  its code is unchanged on disk since the last run ({self.checked_files} "
                f"files checked): a call re-runs only for new arguments"
                + (f", changed values of {', '.join(self.reads)}" if self.reads else "")
                + " or what the analysis does not track"
            )
        lines.append(
            f"  for one call, give its arguments (checkpointing why {name} ARGS): that "
            f"imports {self.module}"
        )
        if self.blind_spots:
            lines.append("  not tracked (blind spots): " + "; ".join(self.blind_spots))
        return "\n".join(lines)


def explain_stored(
    function: str,
    module: str,
    history: List[Dict[str, Any]],
    analysis: Optional[Dict[str, Any]],
) -> StoredExplanation:
    """What the records say about ``function`` without importing ``module``: ``history``
    is its recorded entries, oldest first; ``analysis`` what
    :func:`checkpointing.keyplan.stored_analysis` found (or None)."""
    out = StoredExplanation(function, module)
    out.entries = len(history)
    if history:
        latest = history[-1]
        out.latest_key = latest.get("key")
        created = latest.get("created")
        out.latest_created = created if isinstance(created, (int, float)) else None
        versions = latest.get("versions")
        if isinstance(versions, dict) and versions:
            out.version = ", ".join(str(v) for v in versions.values())
        if len(history) > 1:
            previous = history[-2]
            out.previous_key = previous.get("key")
            out.last_changes = diff(latest, previous)
    if analysis is not None:
        data = analysis["data"]
        out.analysed = True
        out.changed_files = list(analysis["changed"])
        out.checked_files = len(data.get("files", {}))
        out.reads = [str(slot[0]) for slot in data.get("slots", ()) if slot]
        out.blind_spots = [
            f"{display_path(item[0]) if item[0] else '?'}:{item[1]} {item[2]}"
            for item in data.get("blind_spots", ())
            if isinstance(item, list) and len(item) >= 3
        ]
    return out


# Documented, shown and pickled as checkpointing.Explanation and checkpointing.explain,
# whether or not the package has handed them out yet (they load at first use).
Explanation.__module__ = explain.__module__ = "checkpointing"
