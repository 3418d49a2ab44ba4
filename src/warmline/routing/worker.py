"""The background loop of each server process: fires due timers and re-runs assignment cycles.

Timers live in the database, so whichever process is up fires them (after a restart, the ones that
came due meanwhile fire at once); row locks make each fire exactly once across processes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from warmline.routing.actions import do_assign_all, do_run_due_timers
from warmline.store import Database
from warmline.store.schema import EnvironmentRow

log = logging.getLogger(__name__)


class RoutingWorker:
    """Runs until cancelled; one per process."""

    def __init__(
        self, db: Database, clock: Callable[[], datetime], *, interval: float = 0.5, sweep_every: int = 10
    ) -> None:
        self.db = db
        self.clock = clock
        self.interval = interval
        self.sweep_every = sweep_every

    async def tick(self, sweep: bool) -> int:
        """Fire due timers; on sweep ticks also run an assignment cycle for every environment."""
        now = self.clock()
        async with self.db.transaction() as tx:
            fired = await do_run_due_timers(tx, now)
        if sweep:
            async with self.db.reading() as session:
                environments = list(await session.scalars(select(EnvironmentRow.id)))
            for environment in environments:
                async with self.db.transaction() as tx:
                    await do_assign_all(tx, environment, now)
        return fired

    async def run(self) -> None:
        """Tick forever; errors are logged and retried on the next tick (e.g. a database restart)."""
        count = 0
        while True:
            try:
                await self.tick(sweep=count % self.sweep_every == 0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("routing worker tick failed; retrying")
            count += 1
            await asyncio.sleep(self.interval)
