"""Alerting: from run history to notifications people receive once, durably.

``rules`` decides incident transitions from run history (pure), ``silences`` whether a check is
silenced (pure), ``render`` turns a ``Notification`` into text for each kind of channel (pure,
escaping included), ``outbox`` stores every notification before sending it and retries it, and
``channels`` holds one module per transport. ``engine`` wires them to the daemon.
"""
