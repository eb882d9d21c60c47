"""Analysis: pure functions over test results, no I/O.

``categorize`` says why a failure happened (credentials, network, timeout, the test code or the
product) and sums up a run whose failures mostly share one cause; ``drift`` turns a run that
tested far less than usual into an error.
"""
