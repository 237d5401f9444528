"""``python -m inrkit``: the same command line as the ``inrkit`` console script."""

import sys

from inrkit.cli import main

sys.exit(main())
