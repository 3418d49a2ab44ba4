"""Storing and finding widgets (secrets are kept only as SHA-256 digests)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warmline.channels.widget.model import Widget, WidgetAuth
from warmline.store import Transaction
from warmline.store.schema import WidgetRow


def secret_digest(secret: str) -> str:
    """What the store keeps of a Direct Line secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def do_save_widget(tx: Transaction, widget: Widget, secret: str, now: datetime) -> None:
    """Create or replace a widget and set its Direct Line secret."""
    row = await tx.session.get(WidgetRow, widget.id)
    values = {
        "name": widget.name,
        "target_workstream": widget.target_workstream,
        "allowed_origins": list(widget.allowed_origins),
        "auth": widget.auth.model_dump() if widget.auth else None,
        "context_variables": [v.model_dump(mode="json") for v in widget.context_variables],
        "directline_secret_hash": secret_digest(secret),
    }
    if row is None:
        tx.session.add(WidgetRow(id=widget.id, created_at=now, **values))
    else:
        for key, value in values.items():
            setattr(row, key, value)
    await tx.session.flush()


def to_widget(row: WidgetRow) -> Widget:
    """The validated model of a stored widget."""
    return Widget(
        id=row.id,
        name=row.name,
        target_workstream=row.target_workstream,
        allowed_origins=list(row.allowed_origins),
        auth=WidgetAuth.model_validate(row.auth) if row.auth else None,
        context_variables=list(row.context_variables),
    )


async def get_widget(session: AsyncSession, widget_id: str) -> Widget | None:
    """The widget with this id, or None."""
    row = await session.get(WidgetRow, widget_id)
    return None if row is None else to_widget(row)


async def get_widget_by_secret(session: AsyncSession, secret: str) -> Widget | None:
    """The widget owning this Direct Line secret, or None."""
    row = await session.scalar(
        select(WidgetRow).where(WidgetRow.directline_secret_hash == secret_digest(secret))
    )
    return None if row is None else to_widget(row)


async def list_widgets(session: AsyncSession) -> list[Widget]:
    """Every widget, by id."""
    rows = await session.scalars(select(WidgetRow).order_by(WidgetRow.id))
    return [to_widget(row) for row in rows]
