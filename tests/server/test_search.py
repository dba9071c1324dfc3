"""Search: the index against a plain scan of the model, and the command over real sockets."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from typing import Any

import pytest

from nexus.protocol import search_terms
from nexus.server import search as search_module
from nexus.server.model import Model, pair_key
from nexus.server.records import from_json
from nexus.server.search import SearchIndex, matches
from nexus.server.store import sqlite as sqlite_store
from nexus.server.store import tables
from nexus.server.store import words as words_module
from tests.wire import Peer

WORDS = ["deploy", "Deployment", "STRASSE", "straße", "lunch", "noon", "ab", "x", "Ünïcode", "😀"]


@pytest.fixture(autouse=True)
def index_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sqlite engine reads small scopes directly, and messages it has not
    indexed yet; it asks its full-text index only past SCAN_MAX messages,
    which these stores never reach. Here every message is indexed before a
    search and the index asked every time (every other test reads directly)."""
    monkeypatch.setattr(sqlite_store, "SCAN_MAX", 0)
    search = sqlite_store.SqliteStore.search

    async def indexed_first(self: sqlite_store.SqliteStore, *args: Any, **kwargs: Any) -> Any:
        await self.index_all()
        return await search(self, *args, **kwargs)

    monkeypatch.setattr(sqlite_store.SqliteStore, "search", indexed_first)


def build_model(rng: random.Random, messages: int) -> Model:
    """Three users, three rooms and a DM conversation of random texts, many sharing a ts."""
    model = Model()
    for name in ("ana", "bo", "cy"):
        model.apply(from_json({"op": "register", "username": name, "password": "-", "ts": 0.0}))
    for i in range(messages):
        text = " ".join(rng.choice(WORDS) + rng.choice(["", "s", "-x", "Ab"]) for _ in range(3))
        user = rng.choice(["ana", "bo", "cy"])
        ts = float(i // 3)  # three messages a second: equal ts are common
        if rng.random() < 0.2:
            model.apply(from_json({"op": "dm", "user": user, "to": "ana", "text": text, "ts": ts}))
        else:
            room = rng.choice(["general", "random", "tech"])
            model.apply(
                from_json({"op": "say", "user": user, "room": room, "text": text, "ts": ts})
            )
    return model


def reference(
    model: Model, scopes: set[str], terms: list[str], author: Any, before: Any, limit: int
) -> tuple[list[Any], bool]:
    """The rule, by brute force over every stored message (ties of ts and seq
    between conversations go by scope)."""
    found = []
    for scope in scopes:
        history = model.history(scope)
        if history is not None:
            found += [
                (-m.ts, -m.seq, scope, m)
                for m in history.messages
                if matches(m, terms, author, before)
            ]
    found.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in found[:limit]], len(found) > limit


QUERIES = ["deploy", "DEPLOYMENT", "strasse", "ß", "s", "ab", "x deploy", "noon lunch", "ü", "zz"]


@pytest.mark.parametrize("broad", [False, True])
async def test_index_answers_exactly_as_the_rule_says(monkeypatch, broad):
    """Index look-up (narrow terms) and newest-first walk (broad terms) both give
    the brute-force answer: same messages, same order, same `more`."""
    if broad:
        monkeypatch.setattr(search_module, "DOCS_MAX", -1)  # every term is broad
    rng = random.Random(7)
    model = build_model(rng, 900)
    model.apply(from_json({"op": "erase", "user": "ana", "room": "tech", "seq": 3}))
    model.apply(
        from_json(
            {"op": "edit", "user": "bo", "room": "general", "seq": 2, "text": "lunch", "ts": 9.0}
        )
    )
    index = SearchIndex(lambda: model)
    everything = {"general", "random", "tech", pair_key("ana", "bo"), pair_key("ana", "cy")}
    everything.add(pair_key("ana", "ana"))
    for query in QUERIES:
        terms = search_terms(query)
        for scopes in (everything, {"tech"}, {pair_key("ana", "bo")}):
            for author, before, limit in ((None, None, 20), ("bo", None, 5), (None, 100.0, 7)):
                got = await index.search(scopes, terms, author, before, limit)
                assert got == reference(model, scopes, terms, author, before, limit), query


# Words that are not letters alone: a word is all that white space does not split.
ODD_WORDS = ['say"hi"', "o'neil", "foo,bar", "a*b", "(x)", "NAÏVE", "-", "%_", "ok.", "deploy"]
ODD_QUERIES = ['"hi"', 'y"h', "o'n", "o,b", "*", "(x", "naïve", "-", "%", "_", "k.", "ay"]


@pytest.mark.parametrize(
    ("wide", "walk", "spread"),
    [(200, 20_000, 5_000), (1, 20_000, 5_000), (-1, 20_000, 5_000), (-1, 50, 5_000), (-1, 50, -1)],
)
async def test_sqlite_index_answers_exactly_as_the_rule_says(
    tmp_path, monkeypatch, wide, walk, spread
):
    """The sqlite engine's word index gives the brute-force answer: through
    the index (terms held by few words); through the index for some terms
    and the text for others (`wide` 1); when every term is held by many
    words, reading the newest messages, then the index (`walk` 50), or
    reading on (`spread` -1)."""
    monkeypatch.setattr(words_module, "WIDE", wide)
    monkeypatch.setattr(words_module, "SPREAD", spread)
    monkeypatch.setattr(sqlite_store, "WALK_MAX", walk)
    rng = random.Random(11)
    model = build_model(rng, 600)
    for i in range(300):
        text = " ".join(rng.choice(ODD_WORDS + WORDS) for _ in range(3))
        model.apply(from_json({"op": "say", "user": "bo", "room": "tech", "text": text, "ts": i}))
    model.apply(from_json({"op": "erase", "user": "ana", "room": "tech", "seq": 3}))
    path = tmp_path / "search.db"
    with sqlite3.connect(path, isolation_level=None) as db, tables.transaction(db):
        tables.create(db, model)
    store = await sqlite_store.SqliteStore.open(path)
    try:
        edit = {"op": "edit", "user": "bo", "room": "tech", "seq": 5, "text": "x o'neil"}
        for record in (edit, {"op": "erase", "user": "bo", "room": "tech", "seq": 6}):
            await store.commit(from_json({**record, "ts": 999.0}))
            model.apply(from_json({**record, "ts": 999.0}))
        everything = {"general", "random", "tech", pair_key("ana", "bo"), pair_key("ana", "cy")}
        everything.add(pair_key("ana", "ana"))
        for query in QUERIES + ODD_QUERIES:
            terms = search_terms(query)
            for scopes in (everything, {"tech"}, {pair_key("ana", "bo")}):
                for author, before, limit in ((None, None, 20), ("bo", None, 5), (None, 300.0, 7)):
                    got = await store.search(scopes, terms, author, before, limit)
                    want = reference(model, scopes, terms, author, before, limit)
                    assert [(m.seq, m.text) for m in got[0]] == [
                        (m.seq, m.text) for m in want[0]
                    ], query
                    assert got[1] == want[1], query
    finally:
        await store.close()


async def test_messages_made_after_a_search_are_found_by_the_next(monkeypatch):
    """Text noted since the last catch-up is indexed before a search answers."""
    model = build_model(random.Random(1), 50)
    index = SearchIndex(lambda: model)
    assert await index.search({"tech"}, ["kumquat"]) == ([], False)
    model.apply(
        from_json({"op": "say", "user": "ana", "room": "tech", "text": "a Kumquat", "ts": 99.0})
    )
    found, more = await index.search({"tech"}, ["kumquat"])
    assert [m.text for m in found] == ["a Kumquat"] and not more


async def test_a_flood_waits_as_one_entry_a_room_and_edits_are_found_by_new_words():
    """Thousands of new messages leave one backlog entry a room, not one a message
    (the cost a busy server pays per message is a look-up); an edit of a message
    already indexed is found by its new words, and no longer by its old ones."""
    model = build_model(random.Random(4), 0)
    index = SearchIndex(lambda: model)
    model.apply(
        from_json({"op": "say", "user": "ana", "room": "tech", "text": "old words", "ts": 1.0})
    )
    assert len((await index.search({"tech"}, ["old"]))[0]) == 1
    for i in range(3_000):
        model.apply(
            from_json({"op": "say", "user": "bo", "room": "random", "text": f"m{i}", "ts": 2.0})
        )
    assert set(index._backlog) <= {"general", "random"} and not index._pending
    model.apply(
        from_json({"op": "edit", "user": "ana", "room": "tech", "seq": 1, "text": "new", "ts": 3.0})
    )
    assert [m.text for m in (await index.search({"tech"}, ["new"]))[0]] == ["new"]
    assert await index.search({"tech"}, ["old"]) == ([], False)
    found, _ = await index.search({"random"}, ["m2999"])
    assert [m.text for m in found] == ["m2999"]


async def test_trimmed_messages_never_match():
    """A message pushed out by the history cap is not stored, so it is not found."""
    model = build_model(random.Random(2), 0)
    index = SearchIndex(lambda: model)
    model.apply(
        from_json({"op": "say", "user": "ana", "room": "tech", "text": "first words", "ts": 1.0})
    )
    assert len((await index.search({"tech"}, ["first"]))[0]) == 1
    for i in range(500):
        model.apply(
            from_json({"op": "say", "user": "ana", "room": "tech", "text": f"m{i}", "ts": 2.0})
        )
    assert await index.search({"tech"}, ["first"]) == ([], False)


async def test_index_starts_over_when_bloated_or_given_a_new_model(monkeypatch):
    """Past twice the stored messages (plus slack) the index rebuilds; a replaced
    model (after a failed write) is indexed afresh; answers stay right."""
    monkeypatch.setattr(search_module, "REBUILD_SLACK", 10)
    model = build_model(random.Random(3), 0)
    holder = {"model": model}
    index = SearchIndex(lambda: holder["model"])
    for i in range(1_000):
        model.apply(
            from_json({"op": "say", "user": "ana", "room": "tech", "text": f"w{i} x", "ts": i})
        )
        if i % 100 == 0:
            await index.catch_up()
    await index.catch_up()
    assert len(index._doc_seq) <= 2 * 500 + 10 + 100
    found, more = await index.search({"tech"}, ["w999"])
    assert [m.seq for m in found] == [1000] and not more
    replaced = build_model(random.Random(4), 0)
    replaced.apply(
        from_json({"op": "say", "user": "ana", "room": "tech", "text": "only me", "ts": 1.0})
    )
    holder["model"] = replaced
    assert await index.search({"tech"}, ["w999"]) == ([], False)
    assert [m.text for m in (await index.search({"tech"}, ["only"]))[0]] == ["only me"]


# -- the command over real sockets ---------------------------------------------------


async def texts(peer: Peer, **args: Any) -> list[str]:
    return [m["text"] for m in (await peer.ok("search", **args))["results"]]


async def test_search_matches_every_term_as_a_substring_ignoring_case(server):
    """Each term must occur in the text, casefolded; short terms work too."""
    alice = await server.user("alice")
    for text in ("Deploying the NEW build", "deployment failed", "Straße gesperrt", "lunch"):
        await alice.ok("say", room="general", text=text)
    assert await texts(alice, query="deploy") == ["deployment failed", "Deploying the NEW build"]
    assert await texts(alice, query="DEPLOY new") == ["Deploying the NEW build"]
    assert await texts(alice, query="  STRASSE \t") == ["Straße gesperrt"]
    assert await texts(alice, query="ss") == ["Straße gesperrt"]
    assert await texts(alice, query="u") == ["lunch", "Deploying the NEW build"]
    assert await texts(alice, query="zz") == []


async def test_search_pages_newest_first_with_before_and_more(server):
    """limit cuts the newest; before (a ts) continues; more says whether older matches remain."""
    alice = await server.user("alice")
    for i in range(5):
        await alice.ok("say", room="general", text=f"match {i}")
        await alice.ok("say", room="general", text=f"other {i}")
    page = await alice.ok("search", query="match", limit=2)
    assert [m["text"] for m in page["results"]] == ["match 4", "match 3"] and page["more"]
    page = await alice.ok("search", query="match", limit=2, before=page["results"][-1]["ts"])
    assert [m["text"] for m in page["results"]] == ["match 2", "match 1"] and page["more"]
    page = await alice.ok("search", query="match", limit=2, before=page["results"][-1]["ts"])
    assert [m["text"] for m in page["results"]] == ["match 0"] and not page["more"]
    assert set(page["results"][0]) == {"room", "seq", "from", "text", "ts"}


async def test_search_scope_rooms_dms_and_filters(server):
    """Without room/with: the caller's rooms and DMs; room: any public room; with:
    that DM conversation; from: one author."""
    alice = await server.user("alice")
    bob = await server.user("bob")
    await bob.ok("join", room="tech")
    await bob.ok("say", room="tech", text="kiwi in tech")
    await bob.ok("say", room="general", text="kiwi in general")
    await alice.ok("say", room="general", text="kiwi from alice")
    await bob.ok("dm", to="alice", text="kiwi by dm")
    await bob.ok("dm", to="bob", text="kiwi to myself")
    assert await texts(alice, query="kiwi") == [
        "kiwi by dm",
        "kiwi from alice",
        "kiwi in general",
    ]
    assert await texts(alice, query="kiwi", room="#tech") == ["kiwi in tech"]
    assert await texts(alice, query="kiwi", **{"with": "BOB"}) == ["kiwi by dm"]
    assert await texts(alice, query="kiwi", **{"from": "Bob"}) == [
        "kiwi by dm",
        "kiwi in general",
    ]
    assert await texts(bob, query="kiwi", **{"with": "bob"}) == ["kiwi to myself"]


async def test_search_never_matches_erased_and_sees_edits(server):
    """Erased messages never match; an edited message matches its new text only."""
    alice = await server.user("alice")
    await alice.ok("say", room="general", text="secret plan")
    await alice.ok("say", room="general", text="old wording")
    await alice.ok("erase", room="general", seq=1)
    await alice.ok("edit", room="general", seq=2, text="new wording")
    assert await texts(alice, query="secret") == []
    assert await texts(alice, query="old") == []
    found = (await alice.ok("search", query="wording"))["results"]
    assert [m["text"] for m in found] == ["new wording"] and "edited" in found[0]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ({"query": "   "}, "empty"),
        ({"query": ""}, "empty"),
        ({"query": "x" * 201}, "too_long"),
        ({"query": "a\x00"}, "bad_args"),
        ({"query": "a", "room": "general", "with": "alice"}, "bad_args"),
        ({"query": "a", "room": "nowhere"}, "no_such_room"),
        ({"query": "a", "with": "nobody"}, "no_such_user"),
        ({"query": "a", "from": "nobody"}, "no_such_user"),
        ({"query": "a", "limit": 0}, "bad_args"),
        ({"query": "a", "limit": 101}, "bad_args"),
        ({"query": "a", "before": "now"}, "bad_args"),
    ],
)
async def test_search_refusals(server, args, code):
    """Each malformed search gets its code."""
    alice = await server.user("alice")
    await alice.fails(code, "search", **args)


async def test_a_model_replaced_while_a_search_yields_still_gets_a_right_answer(monkeypatch):
    """If the store reloads its model (and the background rebuilds) while a search
    is between slices, the answer is right for one model or the other, never one
    read through stale documents."""
    monkeypatch.setattr(search_module, "SLICE_S", 0.0)  # yield at every pause
    first, second = build_model(random.Random(5), 600), build_model(random.Random(6), 600)
    holder = {"model": first}
    index = SearchIndex(lambda: holder["model"])
    await index.catch_up()
    everything = {"general", "random", "tech"}
    for delay in range(0, 12, 2):
        holder["model"] = first
        await index.catch_up()

        async def swap(passes: int) -> None:
            for _ in range(passes):
                await asyncio.sleep(0)
            holder["model"] = second
            await index.catch_up()  # the background notices and rebuilds

        task = asyncio.create_task(swap(delay))
        got = await index.search(everything, ["lunchab"])  # a narrow term: candidates
        await task
        answers = [reference(m, everything, ["lunchab"], None, None, 20) for m in (first, second)]
        assert got in answers, delay


async def test_messages_said_and_trimmed_while_the_backlog_is_indexed_are_right(monkeypatch):
    """Scopes are indexed a few dozen messages at a time; messages said (and
    old ones trimmed) between those steps are found exactly as the rule says."""
    monkeypatch.setattr(search_module, "SLICE_S", 0.0)  # yield at every step
    model = build_model(random.Random(9), 900)
    index = SearchIndex(lambda: model)

    async def talk() -> None:
        for i in range(700):  # past the cap of 500: the oldest go meanwhile
            text = f"lunchab {i}"
            model.apply(
                from_json({"op": "say", "user": "bo", "room": "tech", "text": text, "ts": 1e3 + i})
            )
            await asyncio.sleep(0)

    task = asyncio.create_task(talk())
    await index.catch_up()
    await task
    everything = {"general", "random", "tech", pair_key("ana", "bo"), pair_key("ana", "cy")}
    for query in [*QUERIES, "lunchab", "lunchab 69"]:
        terms = search_terms(query)
        for limit in (5, 100):
            got = await index.search(everything, terms, None, None, limit)
            assert got == reference(model, everything, terms, None, None, limit), query
