"""Adapters: the database (tables, migrations, units of work), clocks and id sources,
the audit trail's signed checkpoint log (`checkpoints.py`).

May import `domain`; nothing in `domain` imports an adapter."""
