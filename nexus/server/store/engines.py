"""The engines by name, and opening the one a configuration asks for."""

from __future__ import annotations

import socket
from pathlib import Path

from nexus.server.config import ServerConfig
from nexus.server.store import Store
from nexus.server.store.journal import JournalStore
from nexus.server.store.sqlite import SqliteStore


async def open_store(config: ServerConfig) -> Store:
    """The store `config.store` names, on `config.data`."""
    if config.store == "postgresql" and config.bus:
        from nexus.server.store.clustered import ClusteredStore

        return await ClusteredStore.open(
            config.database,
            node=config.node or f"{socket.gethostname()}:{config.port}",
            window=config.history_limit,
            dm_window=config.dm_history_limit,
            retention_days=config.retention_days,
            default_rooms=config.default_rooms,
        )
    if config.store == "postgresql":
        # Imported here: psycopg takes a fifth of a second to load, and most
        # servers never use it.
        from nexus.server.store.postgres import PostgresStore

        return await PostgresStore.open(
            config.database,
            window=config.history_limit,
            dm_window=config.dm_history_limit,
            retention_days=config.retention_days,
            default_rooms=config.default_rooms,
        )
    if config.store == "sqlite":
        return await SqliteStore.open(
            config.data,
            fsync=config.fsync,
            window=config.history_limit,
            dm_window=config.dm_history_limit,
            retention_days=config.retention_days,
            default_rooms=config.default_rooms,
        )
    return await JournalStore.open(
        config.data,
        fsync=config.fsync,
        room_cap=config.history_limit,
        dm_cap=config.dm_history_limit,
        default_rooms=config.default_rooms,
    )


def engine_of(path: Path) -> str:
    """The engine a data file belongs to, by its suffix: `.db` or `.sqlite`
    for sqlite, anything else for json."""
    return "sqlite" if path.suffix in (".db", ".sqlite", ".sqlite3") else "json"
