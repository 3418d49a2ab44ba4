"""Durable state: the SQLAlchemy engine and schema, units of work, Alembic migrations.

SQLite (embedded, the default) and PostgreSQL are both first-class; nothing above this package
knows which one it runs on.
"""

from warmline.store.database import Database, Transaction
from warmline.store.schema import Base

__all__ = ["Base", "Database", "Transaction"]
