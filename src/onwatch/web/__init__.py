"""onwatch's HTTP side: ``app.py`` builds the app (``create_app``), ``server.py`` serves it.

Today it serves what keeps the daemon observable from outside: ``/healthz`` for liveness probes
and ``/metrics`` for Prometheus, both read from the in-memory ``onwatch.state.health.Health``
so they keep answering while the database is down, beside the dashboard and the JSON API.
"""
