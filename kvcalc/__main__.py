"""``python -m kvcalc`` = the ``kvcalc`` command."""

import sys

from kvcalc.cli import main

sys.exit(main())
