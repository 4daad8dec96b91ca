"""The core: settings, database, the call pipeline (gateway), the adapter registry, health,
metrics, logs and the background worker. It names no national system."""
