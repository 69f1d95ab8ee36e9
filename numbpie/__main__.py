"""Entry point for `python -m numbpie`."""

import sys

from numbpie.cli import main

sys.exit(main())
