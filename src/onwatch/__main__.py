"""``python -m onwatch``: the same as the ``onwatch`` command."""

from onwatch.cli import run

run()
