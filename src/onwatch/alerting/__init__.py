"""Alerting: from run history to notifications people receive once, durably.

``rules`` decides incident transitions from run history (pure), ``silences`` whether a check is
silenced (pure), ``outbox`` stores every notification before sending it and retries it, and
``engine`` wires them to the daemon. The transports, the ``Notification`` they carry and its
rendering per format live in ``onwatch.channels``, below ``config`` (which validates each
``[notify.NAME]`` table with its channel's own model) and below this package.
"""
