"""onwatch: run a chosen selection of an existing pytest suite as production monitoring."""

__version__ = "0.1.0"
