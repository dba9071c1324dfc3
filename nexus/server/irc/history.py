"""Messages in IRC terms: their ids (`msgid`), their times (`server-time`), and
which of a conversation's stored messages a CHATHISTORY request selects."""

from __future__ import annotations

import datetime
from typing import Any

Message = dict[str, Any]


def irc_time(ts: float) -> str:
    """A timestamp as `server-time` writes it: 2026-12-02T04:47:08.123Z."""
    moment = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> float | None:
    """`server-time` text -> a timestamp; None if it is not one."""
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def msgid(scope: str, seq: int) -> str:
    """A message's IRC id: `general.42` for a room, `ana+bob.7` for a DM pair."""
    return f"{scope}.{seq}"


def pair(a: str, b: str) -> str:
    """The scope of a DM pair's msgids: both names, lower case, sorted."""
    return "+".join(sorted((a.lower(), b.lower())))


def seq_of(mid: str | None) -> int | None:
    """A msgid's seq ('general.42' -> 42)."""
    if not mid:
        return None
    tail = mid.rpartition(".")[2]
    return int(tail) if tail.isdigit() else None


def _ref_key(ref: str) -> tuple[str, float] | None:
    """A CHATHISTORY message reference -> ('seq', n) or ('ts', t); None for '*'."""
    kind, _, value = ref.partition("=")
    if kind == "msgid":
        seq = seq_of(value)
        return ("seq", seq) if seq is not None else None
    if kind == "timestamp":
        ts = parse_time(value)
        return ("ts", ts) if ts is not None else None
    return None


def history_window(sub: str, refs: list[str], limit: int, messages: list[Message]) -> list[Message]:
    """The messages (oldest first) a CHATHISTORY subcommand selects."""
    keys = [_ref_key(ref) for ref in refs]

    def position(key: tuple[str, float] | None) -> float:
        """How many messages come before the reference."""
        if key is None:
            return len(messages)
        field_ = "seq" if key[0] == "seq" else "ts"
        return sum(1 for m in messages if m[field_] < key[1])

    def exact(key: tuple[str, float] | None) -> bool:
        return key is not None and any(
            m["seq" if key[0] == "seq" else "ts"] == key[1] for m in messages
        )

    if sub == "LATEST":
        if keys[0] is None:
            return messages[-limit:] if limit else []
        start = int(position(keys[0])) + (1 if exact(keys[0]) else 0)
        return messages[start:][-limit:] if limit else []
    if sub == "BEFORE":
        end = int(position(keys[0]))
        return messages[max(0, end - limit) : end]
    if sub == "AFTER":
        start = int(position(keys[0])) + (1 if exact(keys[0]) else 0)
        return messages[start : start + limit]
    if sub == "AROUND":
        middle = int(position(keys[0]))
        start = max(0, middle - limit // 2)
        return messages[start : start + limit]
    # BETWEEN
    first, second = (position(k) for k in keys)
    low, high = sorted((first, second))
    start = int(low) + (1 if exact(keys[0] if first <= second else keys[1]) else 0)
    window = messages[start : int(high)]
    return window[:limit] if first <= second else window[-limit:]
