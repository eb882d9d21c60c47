"""``python -m onwatch``: the same as the ``onwatch`` command."""

import sys

from onwatch.cli import main

sys.exit(main())
