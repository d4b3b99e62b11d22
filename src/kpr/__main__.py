"""``python -m kpr`` = the ``kpr`` command."""

import sys

from kpr.cli import main

sys.exit(main())
