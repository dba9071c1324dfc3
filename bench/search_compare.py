"""`python -m bench.search_compare [--rooms N]`: the search index against SQLite FTS5.

Builds scenario 9's store (N rooms x 500 messages; default 2,000, i.e.
1,000,000 messages) and measures, in this process, both ways of answering
the scenario's query mix over the whole store: the server's word index
(build CPU, memory, latency by kind of query) and an FTS5 table with the
trigram tokenizer (build, cost of a new message, memory, latency). The
figures behind docs/performance.md's choice; run on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import datagen
from bench.runner import search_queries
from nexus.protocol import search_terms
from nexus.server.search import SearchIndex
from nexus.server.store.journal import JournalStore

KINDS = ["rare", "middling", "common", "two words", "two letters", "nowhere", "from", "room"]


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def report(name: str, timings: list[float]) -> None:
    """Prints latency by kind of query (the mix cycles through KINDS) and overall."""
    for k, kind in enumerate(KINDS):
        mine = sorted(timings[k :: len(KINDS)])
        print(f"  {name} {kind:12} p50 {mine[len(mine) // 2]:7.2f}  max {mine[-1]:7.2f} ms")
    ordered = sorted(timings)
    p50, p99 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99)]
    print(f"  {name} all {len(ordered)}: p50 {p50:.2f}  p99 {p99:.2f}  max {ordered[-1]:.2f} ms")


async def word_index(path: Path, rooms: list[str], queries: list[dict[str, Any]]) -> None:
    store = await JournalStore.open(path)
    gc.collect()
    gc.freeze()  # as the server does once its store is loaded
    before = rss_mib()
    index = SearchIndex(lambda: store.model)
    cpu = time.process_time()
    await index.catch_up()
    print(f"word index: build {time.process_time() - cpu:.1f} s CPU, +{rss_mib() - before:.0f} MiB")
    everything = set(rooms)
    timings = []
    for query in queries:
        scopes = {query["room"]} if "room" in query else everything
        start = time.perf_counter()
        await index.search(scopes, search_terms(query["query"]), query.get("from"), None, 20)
        timings.append((time.perf_counter() - start) * 1000)
    report("word index", timings)
    await store.close()


def fts5(path: Path, queries: list[dict[str, Any]]) -> None:
    store = asyncio.run(JournalStore.open(path))
    rows = [
        (m["text"].casefold(), room.name, m["from"], m["ts"], m["seq"])
        for room in store.model.rooms.values()
        for m in room.history.messages
    ]
    rows.sort(key=lambda row: (row[3], row[4]))  # rowid in time order: newest = highest
    del store
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE m USING fts5(text, scope UNINDEXED, author UNINDEXED,"
        " ts UNINDEXED, seq UNINDEXED, tokenize='trigram case_sensitive 1')"
    )
    cpu = time.process_time()
    with db:
        db.executemany("INSERT INTO m VALUES (?, ?, ?, ?, ?)", rows)
    per_row = 1e6 * (time.process_time() - cpu) / len(rows)
    cpu = time.process_time()
    live = [(f"@{i:019d} " + "x" * 60, "bench", "u1", 1e10 + i, i) for i in range(20_000)]
    for at in range(0, len(live), 100):  # a group commit's worth a transaction
        with db:
            db.executemany("INSERT INTO m VALUES (?, ?, ?, ?, ?)", live[at : at + 100])
    new = 1e6 * (time.process_time() - cpu) / len(live)
    (pages,) = db.execute(
        "SELECT page_count * page_size / 1048576.0 FROM pragma_page_count(), pragma_page_size()"
    ).fetchone()
    print(f"FTS5: build {per_row:.1f} us a row, a new message {new:.1f} us, {pages:.0f} MiB")
    timings = []
    for query in queries:
        conditions, args = [], []
        for term in search_terms(query["query"]):
            if len(term) >= 3:  # trigram MATCH needs three characters; GLOB scans
                conditions.append("m MATCH ?")
                args.append('"' + term.replace('"', '""') + '"')
            else:
                conditions.append("text GLOB ?")
                escaped = term.replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")
                args.append(f"*{escaped}*")
        for key, column in (("from", "author"), ("room", "scope")):
            if key in query:
                conditions.append(f"{column} = ?")
                args.append(query[key])
        sql = f"SELECT scope, seq FROM m WHERE {' AND '.join(conditions)}"
        start = time.perf_counter()
        db.execute(sql + " ORDER BY rowid DESC LIMIT 21", args).fetchall()
        timings.append((time.perf_counter() - start) * 1000)
    report("FTS5", timings)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search_compare", description=__doc__)
    parser.add_argument("--rooms", type=int, default=2000, help="rooms of 500 messages each")
    args = parser.parse_args()
    rooms = [f"r{i}" for i in range(args.rooms)]
    words = datagen.vocabulary(30_000)
    queries = search_queries(words, rooms, 20)
    with tempfile.TemporaryDirectory(prefix="nexus-search-") as tmp:
        path = datagen.write_store(
            Path(tmp) / "nexus_data.json",
            21,
            rooms_of={0: rooms},
            room_messages=dict.fromkeys(rooms, 500),
            texts=datagen.chat_texts(words, 5_000),
        )
        print(f"{args.rooms * 500:,} messages, {len(queries)} queries")
        asyncio.run(word_index(path, rooms, queries))
        fts5(path, queries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
