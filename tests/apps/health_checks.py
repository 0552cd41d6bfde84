"""An app with readiness checks; $OUT/database says how the database check behaves:
ok (or absent), fail, false, hang, slow."""

import asyncio
import os
from pathlib import Path

from _record import ready

import graceful

OUT = Path(os.environ["OUT"])


@graceful.readiness_check(timeout=0.5)
async def database() -> bool:
    path = OUT / "database"
    mode = path.read_text().strip() if path.exists() else "ok"
    if mode == "fail":
        raise ConnectionRefusedError("database down at db://admin:hunter2@db")
    if mode == "hang":
        await asyncio.Event().wait()
    if mode == "slow":  # within its timeout
        await asyncio.sleep(0.4)
    return mode != "false"


@graceful.readiness_check(name="cache")
async def cache_is_warm() -> None:
    pass


async def main() -> None:
    await asyncio.sleep(0)  # readiness (auto) turns on once main reaches an await
    ready()
    await asyncio.Event().wait()
