"""Adapters: the database (tables, migrations, units of work), clocks and id sources.

May import `domain`; nothing in `domain` imports an adapter."""
