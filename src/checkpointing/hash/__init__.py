"""checkpointing 1.0's ``checkpointing.hash``: :func:`hash_anything`, over the value
digests of :mod:`checkpointing.hashing`.

1.0's ``HashStream`` and ``hash_generic`` (hashing by pickle, then dill, then repr) are
not provided: values are digested by :mod:`checkpointing.hashing`, which refuses a value
it cannot digest stably instead of falling back to its repr.
"""

import hashlib
from typing import Any, Optional

from ..config import defaults
from ..hashing import digest_value

__all__ = ["defaults", "hash_anything"]


def hash_anything(
    *objs: Any, algorithm: Optional[str] = None, pickle_protocol: Optional[int] = None
) -> str:
    """A hex digest of ``objs``: equal for equal values, in any process.

    Args:
        objs: the values to digest (each digested by :func:`checkpointing.hashing.digest_value`).
        algorithm: a :mod:`hashlib` algorithm folding the values' digests; ``None``: md5,
            1.0's default. The digests differ from those of 1.0.
        pickle_protocol: accepted for 1.0's signature and unused.

    Raises:
        HashFailedError: a value has no stable digest.
        ValueError: ``algorithm`` is not known to hashlib.
    """
    del pickle_protocol
    folded = hashlib.new(algorithm or "md5")
    for obj in objs:
        folded.update(digest_value(obj))
    return folded.hexdigest()
