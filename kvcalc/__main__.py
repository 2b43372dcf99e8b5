"""``python -m kvcalc`` = the ``kvcalc`` command."""

import sys

from kvcalc.cli.main import main

sys.exit(main())
