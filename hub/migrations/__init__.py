"""The hub's database migrations (Alembic). Applied by `hub db upgrade`; see hub.db."""
