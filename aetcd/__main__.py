"""``python -m aetcd``: the command line (see :mod:`aetcd.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
