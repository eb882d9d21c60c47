"""What every check, incident, channel and watch looks like now, for the CLI, web and metrics.

Below ``cli``, ``daemon`` and ``web``: each reads these records and none imports another's
internals. ``service`` reads the present state from the store (``onwatch status``, the pages,
``/api/v1/checks``); ``health`` is the in-memory summary /healthz and /metrics read on every
scrape; ``feed`` seeds that summary from the store, once for ``onwatch run`` and every few
seconds for ``onwatch serve``.
"""
