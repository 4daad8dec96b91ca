"""Makes the adapter's package importable by the tests when it is not pip-installed
(pytest puts this file's folder on sys.path)."""
