"""Declarative field mappings (YAML), one file per adapter; see docs/mappings.md."""
