"""Build a ``Watcher`` from an installation's parts: shared by ``onwatch watch check`` and ``run``.

Both the CLI and the daemon wire a watcher the same way (the configuration's store, its
environments folder, a runner and a recorder), so the one way lives here, below both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onwatch.config import Config
    from onwatch.runner.execute import Runner
    from onwatch.store import Store
    from onwatch.store.recorder import Recorder
    from onwatch.upstream.watcher import Notify, Watcher


def build_watcher(
    config: Config, runner: Runner, recorder: Recorder, store: Store, notify: Notify | None
) -> Watcher:
    """Return a watcher wired to the configuration's store, environments folder and runner."""
    from onwatch.upstream.venv import Environments
    from onwatch.upstream.watcher import Watcher

    return Watcher(
        config,
        runner,
        recorder.record,
        store.upstream,
        Environments(config.state_dir / "environments"),
        notify=notify,
    )
