"""Relational storage: SQLAlchemy Core tables, engines for SQLite and PostgreSQL, Alembic
migrations, and the units of work through which actions write."""
