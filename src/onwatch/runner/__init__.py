"""Running checks: ``execute.Runner`` runs a check through its kind and returns a ``Run``.

``kinds`` says what a check kind does (collect, run, recover, review) and ``registry`` lists
the kinds, one line each. The pytest kind is ``pytest_kind`` with ``process`` (starts and kills
pytest), ``parse`` (what pytest left behind, as results) and, inside the pytest process,
``plugin``, ``capture`` and ``launch``; the names below connect the two sides.
"""

# The environment that connects onwatch to its pytest plugin; kept here so that starting a run
# does not import pytest into onwatch itself.
EVENTS_ENV = "ONWATCH_EVENTS"
# Where the plugin goes on writing events when the events file refuses a write (the disk
# filled up during the run): a memory file of the parent's.
EVENTS_SPARE_ENV = "ONWATCH_EVENTS_SPARE"
ATTEMPT_ENV = "ONWATCH_ATTEMPT"
# Every process a run starts inherits its run id: how the processes it left behind are found.
RUN_ID_ENV = "ONWATCH_RUN_ID"
# Browser tests: where the plugin writes captured files, when it keeps them, whether it
# records Playwright traces, and the Chromium onwatch found (for suites that want it).
ARTIFACTS_DIR_ENV = "ONWATCH_ARTIFACTS_DIR"
ARTIFACTS_MODE_ENV = "ONWATCH_ARTIFACTS"
TRACING_ENV = "ONWATCH_TRACING"
BROWSER_ENV = "ONWATCH_BROWSER"
SCREENSHOTS_ENV = "ONWATCH_SCREENSHOTS"  # "0": keep no screenshots, record traces without
# The names (never the values) of the environment variables that hold the check's secrets.
SECRETS_ENV = "ONWATCH_SECRETS"
# Chromium on a server: no sandbox (containers, root), no GPU, no small /dev/shm, and no calls
# to Google's hosts, which a monitoring host often cannot reach.
CHROMIUM_SERVER_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
