"""What every check, incident, channel and watch looks like now, for the CLI, web and metrics.

Below both ``daemon`` and ``web``: each reads these records and neither imports the other.
"""
