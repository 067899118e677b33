"""Importing another system's records through the actions (docs/import.md)."""
