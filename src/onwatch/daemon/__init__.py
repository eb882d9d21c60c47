"""``onwatch run``: the wiring of the daemon, its scheduler, watchdog and heartbeat."""
