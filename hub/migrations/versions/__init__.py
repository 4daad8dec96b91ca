"""Migration scripts, oldest first (Alembic reads them by revision, not by name)."""
