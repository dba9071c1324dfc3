"""Messages in IRC terms: their ids (`msgid`), their times (`server-time`), and
the pages of a conversation's history that a CHATHISTORY request (or a read
marker, or TARGETS) needs.

The server pages a history newest first: `history` (a room) and `dms` (a DM
conversation) answer up to `limit` messages older than `before` (a seq; the
newest without it), oldest first, and whether older ones are stored. A walk
here is a generator that yields each page it wants as `(limit, before)`, is
sent back `(messages, more)`, and returns what it found: the translator asks
the server for each page in turn. A walk asks for about as many messages as
its answer holds: a page of the limit asked from a seq known from a msgid, or
from a time found by a binary search of one-message probes (a dozen for the
500 messages a room keeps); never the whole history. Erased messages are
skipped, so a page that holds some is followed by a larger one.

Message times only grow with their seq, so the messages said before a time
are the oldest ones: that is what the searches rely on. IRC times have
millisecond precision, so times are compared in milliseconds.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Generator, Mapping
from typing import Any, TypeVar

from nexus.protocol import PAGE_MAX

Message = Mapping[str, Any]  # as the server sent it: shared, never changed
Page = tuple[int, int | None]  # a page asked: (limit, before)
Got = tuple[list[Message], bool]  # its answer: the messages, oldest first, and `more`
T = TypeVar("T")
Walk = Generator[Page, Got, T]


def irc_time(ts: float) -> str:
    """A timestamp as `server-time` writes it: 2026-12-02T04:47:08.123Z."""
    moment = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MS = datetime.timedelta(milliseconds=1)


def parse_ms(text: str) -> int | None:
    """`server-time` text -> milliseconds since the epoch, exactly (a float
    timestamp times 1000 can land a millisecond short); None if it is not one."""
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:  # IRC times are UTC
        moment = moment.replace(tzinfo=datetime.UTC)
    return (moment - _EPOCH) // _MS


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
    return int(tail) if tail.isdecimal() else None


def ms(ts: float) -> int:
    """A message's time at `server-time` precision (irc_time cuts it there too),
    to compare with the times clients send (parse_ms)."""
    return int(ts * 1000)


Ref = tuple[str, int] | None  # ('seq', n) or ('ts', milliseconds); None for '*' or no reference


def ref_key(ref: str) -> Ref:
    """A CHATHISTORY message reference: msgid=... or timestamp=...; None for '*'."""
    kind, _, value = ref.partition("=")
    if kind == "msgid":
        seq = seq_of(value)
        return ("seq", seq) if seq is not None else None
    if kind == "timestamp":
        at = parse_ms(value)
        return ("ts", at) if at is not None else None
    return None


def _page(limit: int) -> int:
    return max(1, min(PAGE_MAX, limit))


def search(said_before: Callable[[Message], bool], cap: int) -> Walk[tuple[int, Message | None]]:
    """Binary search for where `said_before` stops holding (it holds for the
    oldest messages, if any): (seq, message) of the last stored message it
    holds for, or (a seq older than every stored one, None). Probes one message
    at a time: the newest first, then about log2(cap) more."""
    found, _ = yield (1, None)
    if not found:
        return 0, None
    newest = found[-1]
    if said_before(newest):
        return newest["seq"], newest
    low, low_message, high = max(0, newest["seq"] - cap), None, newest["seq"]
    while high - low > 1:  # `low` holds (or is not stored), `high` does not
        middle = (low + high) // 2
        found, _ = yield (1, middle + 1)
        if found and not said_before(found[-1]):
            high = middle
        else:
            low, low_message = middle, found[-1] if found else None
    return low, low_message


def first_from(at: int, cap: int) -> Walk[int]:
    """The seq of the oldest stored message said at `at` (ms) or later; one
    past the newest if there is none."""
    seq, _ = yield from search(lambda m: ms(m["ts"]) < at, cap)
    return seq + 1


def newest(
    count: int,
    before: int | None = None,
    after: int | None = None,
    since: int | None = None,
) -> Walk[list[Message]]:
    """The newest `count` messages (oldest first, erased ones skipped) with a
    seq below `before` (None: any) and above `after`, said after `since` (ms).
    With a lower bound, the first page is one message (from `before`, or the
    newest: a request for what came after what the client has costs what
    came, not its limit); then pages double, or, below `after`, hold just the
    seqs left."""
    found: list[Message] = []
    grow = 0
    while count > len(found):
        if before is not None and after is not None and before <= after + 1:
            break
        size = (count - len(found)) << grow
        if after is not None and before is not None and grow:  # a stored seq: the seqs left
            size = min(size >> 1, before - after - 1)
        elif after is not None or since is not None:
            size = min(size, 1 << grow)
        page, more = yield (_page(size), before)
        for m in reversed(page):
            if (after is not None and m["seq"] <= after) or (
                since is not None and ms(m["ts"]) <= since
            ):
                return found[::-1]
            if not m.get("erased"):
                found.append(m)
                if len(found) == count:
                    break
        if not more or not page:
            break
        before, grow = page[0]["seq"], grow + 1
    return found[::-1]


def _window(low: int, high: int) -> Walk[list[Message] | None]:
    """The stored messages with low <= seq < high, oldest first (`high` at
    most one past the newest); None when they are all older than every
    stored message."""
    window: list[Message] = []
    upto = high
    while True:
        page, more = yield (upto - low, upto)
        if not page and upto == high:
            return None
        window[:0] = [m for m in page if m["seq"] >= low]
        if not more or not page or page[0]["seq"] <= low:
            return window
        upto = page[0]["seq"]  # a page cut short for its size: the rest of the window


def scan(
    after: int, size: int, cap: int, take: Callable[[Message], bool], before: int | None = None
) -> Walk[None]:
    """Hands `take` the stored messages with a seq above `after` (and below
    `before`), oldest first, until it returns False or there are no more.
    Reads the newest message first (no page then reaches past it), then
    `size` seqs at a time, twice as many each time after."""
    found, _ = yield (1, None)
    if not found:
        return
    newest_seq = found[-1]["seq"]
    end = newest_seq + 1 if before is None else min(before, newest_seq + 1)
    low, grow, jumped = after + 1, 0, False
    while low < end:
        high = min(low + _page(size << grow), end)
        window = yield from _window(low, high)
        if window is None:  # trimmed: on to the oldest stored, which the cap places
            low, grow = (high, grow + 1) if jumped else (max(high, newest_seq - cap + 1), grow)
            jumped = True
            continue
        for m in window:
            if not take(m):
                return
        low, grow = high, grow + 1


def oldest(count: int, after: int, before: int | None, cap: int) -> Walk[list[Message]]:
    """The oldest `count` messages (erased ones skipped) with a seq above
    `after` and below `before` (None: any)."""
    found: list[Message] = []

    def take(m: Message) -> bool:
        if not m.get("erased"):
            found.append(m)
        return len(found) < count

    if count > 0:
        yield from scan(after, count, cap, take, before)
    return found


def _upto(key: Ref, cap: int) -> Walk[int | None]:
    """The seq the messages before reference `key` end at (exclusive): a
    msgid's own, or the first said at or after a time; None for '*'."""
    if key is None:
        return None
    if key[0] == "seq":
        return key[1]
    return (yield from first_from(key[1], cap))


def _past(key: Ref, cap: int) -> Walk[int | None]:
    """The last seq at or before reference `key`: the messages after it come
    after this one. None for '*' (nothing comes after the end)."""
    if key is None:
        return None
    if key[0] == "seq":
        return key[1]
    return (yield from first_from(key[1] + 1, cap)) - 1


def chathistory(sub: str, refs: list[str], limit: int, cap: int) -> Walk[list[Message]]:
    """The messages (oldest first) a CHATHISTORY subcommand selects from a
    conversation whose history keeps up to `cap` messages, erased ones left
    out: LATEST (the newest, after the reference), BEFORE, AFTER, AROUND (half
    before the reference, the rest from it on) and BETWEEN (both excluded: the
    earliest `limit` when the first is the older, else the latest)."""
    keys = [ref_key(ref) for ref in refs]
    if limit <= 0:
        return []
    if sub == "LATEST":
        key = keys[0]
        if key is None:
            return (yield from newest(limit))
        if key[0] == "seq":
            return (yield from newest(limit, after=key[1]))
        return (yield from newest(limit, since=key[1]))
    if sub == "BEFORE":
        return (yield from newest(limit, before=(yield from _upto(keys[0], cap))))
    if sub == "AFTER":
        after = yield from _past(keys[0], cap)
        return [] if after is None else (yield from oldest(limit, after, None, cap))
    if sub == "AROUND":
        middle = yield from _upto(keys[0], cap)
        earlier = yield from newest(limit // 2, before=middle)
        if middle is None:
            return earlier
        return earlier + (yield from oldest(limit - len(earlier), middle - 1, None, cap))
    # BETWEEN: the positions of both references say which is the older
    one = yield from _upto(keys[0], cap)
    other = yield from _upto(keys[1], cap)
    older_first = one is not None and (other is None or one <= other)
    low_key, high = (keys[0], other) if older_first else (keys[1], one)
    low = yield from _past(low_key, cap)
    if low is None:
        return []
    if older_first:
        return (yield from oldest(limit, low, high, cap))
    return (yield from newest(limit, before=high, after=low))


def latest_between(since: int, until: int, cap: int) -> Walk[float | None]:
    """The time of the newest message (not erased) said after `since` and
    before `until` (ms, both excluded), None if there is none. For a window
    that ends after the newest message, that message is all it reads."""
    seq, message = yield from search(lambda m: ms(m["ts"]) < until, cap)
    if message is None or ms(message["ts"]) <= since:
        return None
    if not message.get("erased"):
        return float(message["ts"])
    found = yield from newest(1, before=seq, since=since)
    return float(found[0]["ts"]) if found else None


def said_by(until: int, cap: int) -> Walk[Message | None]:
    """The newest stored message said at `until` (ms) or before; None if none."""
    _, message = yield from search(lambda m: ms(m["ts"]) <= until, cap)
    return message


def read_up_to(marker: int, me: str, cap: int) -> Walk[float | None]:
    """The time of the last message read in a room whose read marker is at
    seq `marker`: the message before the first unread one after it (unread:
    neither the reader's (`me`, lower case) nor erased, as the server counts
    them), else the newest; None when that message is not stored."""
    last: list[Message | None] = [None]

    def take(m: Message) -> bool:
        if m["seq"] > marker and m["from"].lower() != me and not m.get("erased"):
            return False
        last[0] = m
        return True

    yield from scan(marker - 1, 2, cap, take)
    found = last[0]
    return None if found is None else float(found["ts"])
