"""The bundled demo: a small "production" bank app and a monitoring suite that checks it.

``onwatch.demo.app`` serves Bankly, whose features can be broken or slowed on purpose;
``onwatch/demo/suite`` is an ordinary pytest suite (it never imports onwatch) that onwatch
runs against it. Importing this package stays cheap: the web framework loads with ``app``.
"""
