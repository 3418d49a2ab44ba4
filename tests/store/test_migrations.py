"""The schema comes only from migrations, and migrations cover every model change."""

from __future__ import annotations

from sqlalchemy import Column, Integer, Table

from warmline.store import Base, Database
from warmline.store.migrate import schema_drift


async def test_migrated_schema_matches_models(db: Database) -> None:
    assert await schema_drift(db.engine) == []


async def test_a_model_change_without_migration_is_detected(db: Database) -> None:
    # Simulate a developer adding a table to the models and forgetting the migration.
    extra = Table("forgotten_table", Base.metadata, Column("id", Integer, primary_key=True))
    try:
        drift = await schema_drift(db.engine)
    finally:
        Base.metadata.remove(extra)
    assert any(d[0] == "add_table" and d[1].name == "forgotten_table" for d in drift)
