"""``python -m checkpointing``: the command line (see :mod:`checkpointing.cli`)."""

import sys

from .cli import main

sys.exit(main())
