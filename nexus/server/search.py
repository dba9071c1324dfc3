"""The search index: which stored messages hold every term of a query.

The rule (docs/protocol.md): each white-space separated term of the query
must occur in the message's text, ignoring case (Unicode casefold). A term
holds no white space, so it occurs in a text exactly when it occurs in one of
the text's own terms ("words"). The index maps each word to the documents
(indexed versions of messages) that hold it, and finds the words holding a
term by searching the vocabulary, kept as a few big strings, with `str.find`.

A query picks its narrowest term. If that term's documents are few, they are
the candidates: each is checked against the model (still stored, not erased,
the text as it is now holds every term, the filters) and the survivors are
sorted newest first. If every term is broad (common words, one or two
letters), candidates would be most of the store, so the query walks the
scope's messages newest first instead, and stops at the page's end: a broad
term matches soon. Long walks yield to the event loop every SCAN_STEP
messages, so no search holds the loop for more than a couple of
milliseconds.

Documents are only added: an edit indexes the message again, an erasure or a
trim leaves its documents to fail the check. Once the documents outnumber
twice the stored messages (plus REBUILD_SLACK), the index starts over.

Indexing is lazy. The model reports each message made or edited
(`Model.on_text`); the index notes its address and indexes it within LAG_S
seconds, a slice at a time, or at once when a search needs it. A message
trimmed meanwhile is never indexed: a busy room keeps only its last 500, so
a flood of messages costs little more than noting them. At start-up every
room and conversation is in the backlog and indexed in the background, so
the server listens as soon as the store is loaded; a search needing a scope
not yet indexed indexes that scope first.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable

from nexus.protocol import search_terms
from nexus.server.model import History, Message, Model

SLICE_S = 0.002  # longest run of indexing between two passes of the event loop
LAG_S = 2.0  # how long new text may wait before the background indexes it
SCAN_STEP = 1_000  # messages a walk checks between two passes of the loop
CHUNK = 4_096  # vocabulary words per string searched with str.find
WORDS_MAX = 2_000  # a term held by more words than this is broad
DOCS_MAX = 20_000  # ... and so is one whose words hold more documents than this
REBUILD_SLACK = 100_000  # documents beyond twice the stored messages before starting over
_SEP = "\x00"  # between vocabulary words; no text or query can hold it


def history_of(model: Model, scope: str) -> History | None:
    """A scope's history: a room's by name, a conversation's by pair key."""
    if "\n" in scope:
        conv = model.conversations.get(scope)
        return conv.history if conv is not None else None
    room = model.rooms.get(scope)
    return room.history if room is not None else None


def matches(message: Message, terms: list[str], author: str | None, before: float | None) -> bool:
    """Whether a stored message answers a query, as it is now."""
    if message.get("erased"):
        return False
    if before is not None and message["ts"] >= before:
        return False
    if author is not None and message["from"] != author:
        return False
    text = message["text"].casefold()
    return all(term in text for term in terms)


def _newest_first(message: Message, scope: str) -> tuple[float, int, str]:
    """The sort key of results: newest ts first, then newest seq, then scope
    (a room name or pair key), so that equal keys never leave the order open."""
    return -message["ts"], -message["seq"], scope


class SearchIndex:
    """Words -> documents, over the model that `model_of()` returns now.

    The store replaces its model after a failed write; the index notices
    (the model is not the one it indexed) and starts over from the new one.
    """

    def __init__(self, model_of: Callable[[], Model]) -> None:
        self._model_of = model_of
        self._model: Model | None = None
        self._task: asyncio.Task[None] | None = None
        self._generation = 0  # counts rebuilds: a catch-up under way starts again
        self._reset()

    def _reset(self) -> None:
        self._doc_scope: list[str] = []  # document -> its scope (room name or pair key)
        self._doc_seq = array("q")  # document -> its message's seq
        self._postings: dict[str, array[int]] = {}  # word -> documents holding it
        self._mentioned: dict[str, array[int]] = {}  # user key -> documents mentioning them
        self._blobs: list[str] = []  # full chunks of the vocabulary, each one string
        self._words: list[str] = []  # the chunk being filled
        self._blob: str | None = None  # `_words` as one string, until a word is added
        self._pending: deque[tuple[str, int]] = deque()  # (scope, seq) made or edited
        self._backlog: dict[str, None] = {}  # scopes whose stored messages wait
        self._check_at = 0  # document count at which to see whether to start over

    # -- keeping up with the model -----------------------------------------------

    def start(self) -> None:
        """Begins indexing the model's messages in the background."""
        self._current()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _current(self) -> Model:
        model = self._model_of()
        if model is not self._model:
            self._rebuild(model)
        return model

    def _rebuild(self, model: Model) -> None:
        """Forgets every document; every scope of `model` goes to the backlog."""
        self._reset()
        self._generation += 1
        self._model = model
        model.on_text = self._note
        self._backlog = dict.fromkeys([*model.rooms, *model.conversations])
        self._check_at = 2 * self._stored(model) + REBUILD_SLACK

    @staticmethod
    def _stored(model: Model) -> int:
        rooms = sum(len(room.history.messages) for room in model.rooms.values())
        return rooms + sum(len(conv.history.messages) for conv in model.conversations.values())

    def _note(self, scope: str, seq: int) -> None:
        self._pending.append((scope, seq))

    async def _run(self) -> None:
        while True:
            await self.catch_up()
            await asyncio.sleep(LAG_S)

    async def catch_up(self, scopes: Iterable[str] | None = None) -> None:
        """Indexes the waiting messages, and the backlog (all of it, or the
        scopes among `scopes`), yielding to the loop every SLICE_S seconds.

        A scope is indexed whole within one slice, so once this returns
        (before any other await) every scope asked for is indexed."""
        asked = None if scopes is None else list(scopes)
        wanted, generation = None, -1
        deadline = time.perf_counter() + SLICE_S
        while True:
            model = self._current()
            if generation != self._generation:  # (re)built: every scope waits again
                generation = self._generation
                wanted = None if asked is None else list(asked)
            if self._pending:
                self._index_pending(model, 256)
            else:
                scope = self._next_backlog(wanted)
                if scope is None:
                    return
                del self._backlog[scope]
                history = history_of(model, scope)
                if history is not None:
                    for message in history.messages:
                        self._add(scope, message)
            if time.perf_counter() > deadline:
                await asyncio.sleep(0)
                deadline = time.perf_counter() + SLICE_S

    def _next_backlog(self, wanted: list[str] | None) -> str | None:
        backlog = self._backlog
        if wanted is None:
            return next(iter(backlog), None)
        while wanted:
            scope = wanted.pop()
            if scope in backlog:
                return scope
        return None

    def _index_pending(self, model: Model, count: int) -> None:
        pending = self._pending
        for _ in range(min(count, len(pending))):
            scope, seq = pending.popleft()
            if scope in self._backlog:
                continue  # indexed with its whole scope
            history = history_of(model, scope)
            message = history.get(seq) if history is not None else None
            if message is not None and not message.get("erased"):
                self._add(scope, message)

    def _add(self, scope: str, message: Message) -> None:
        if message.get("erased"):
            return
        doc = len(self._doc_seq)
        self._doc_scope.append(scope)
        self._doc_seq.append(message["seq"])
        postings = self._postings
        for word in search_terms(message["text"]):
            docs = postings.get(word)
            if docs is None:
                docs = postings[word] = array("i")
                self._new_word(word)
            docs.append(doc)
        for name in message.get("mentions", ()):
            self._mentioned.setdefault(name.lower(), array("i")).append(doc)
        if doc >= self._check_at:
            self._maybe_start_over()

    def _new_word(self, word: str) -> None:
        self._words.append(word)
        self._blob = None
        if len(self._words) == CHUNK:
            self._blobs.append(_SEP + _SEP.join(self._words) + _SEP)
            self._words = []

    def _maybe_start_over(self) -> None:
        assert self._model is not None
        stored = self._stored(self._model)
        if len(self._doc_seq) > 2 * stored + REBUILD_SLACK:
            self._rebuild(self._model)
        else:
            self._check_at = 2 * stored + REBUILD_SLACK

    # -- answering -----------------------------------------------------------------

    async def search(
        self,
        scopes: set[str],
        terms: list[str],
        author: str | None = None,
        before: float | None = None,
        limit: int = 20,
    ) -> tuple[list[Message], bool]:
        """Up to `limit` stored messages of `scopes` holding every term (by
        `author`, older than `before`, if given), newest first, and whether
        older matches remain."""
        await self.catch_up(scopes)
        docs = self._candidates(terms)
        if docs is None:
            return await self._walk(scopes, terms, author, before, limit)
        model = self._current()
        found = self._check(model, docs, scopes, lambda m: matches(m, terms, author, before))
        return found[:limit], len(found) > limit

    async def mentions(self, user: str, scopes: set[str], limit: int) -> list[Message]:
        """Up to `limit` stored, not erased messages of `scopes` that mention
        `user` (a username as registered), newest first."""
        await self.catch_up(scopes)
        docs = self._mentioned.get(user.lower(), ())

        def mentioned(m: Message) -> bool:
            return not m.get("erased") and user in m.get("mentions", ())

        return self._check(self._current(), docs, scopes, mentioned)[:limit]

    def _candidates(self, terms: list[str]) -> set[int] | None:
        """The documents of the narrowest term, or None if every term is broad."""
        best: tuple[int, list[str]] | None = None
        for term in terms:
            words = self._words_holding(term)
            if words is None:
                continue
            size = sum(len(self._postings[word]) for word in words)
            if size <= DOCS_MAX and (best is None or size < best[0]):
                best = (size, words)
        if best is None:
            return None
        docs: set[int] = set()
        for word in best[1]:
            docs.update(self._postings[word])
        return docs

    def _words_holding(self, term: str) -> list[str] | None:
        """The vocabulary's words that hold `term`; None past WORDS_MAX."""
        if self._blob is None:
            self._blob = _SEP + _SEP.join(self._words) + _SEP
        words: list[str] = []
        for blob in (*self._blobs, self._blob):
            count = blob.count(term)
            if not count:
                continue
            if len(words) + count > WORDS_MAX:
                return None
            at = blob.find(term)
            while at >= 0:
                end = blob.find(_SEP, at)
                words.append(blob[blob.rfind(_SEP, 0, at) + 1 : end])
                at = blob.find(term, end)
        return words

    def _check(
        self,
        model: Model,
        docs: Iterable[int],
        scopes: set[str],
        wanted: Callable[[Message], bool],
    ) -> list[Message]:
        """The messages of `docs` in `scopes` that are `wanted` as they are now,
        each once, newest first (same ts: newest seq first)."""
        doc_scope, doc_seq = self._doc_scope, self._doc_seq
        seen: set[tuple[str, int]] = set()
        found: list[tuple[tuple[float, int, str], Message]] = []
        for doc in docs:
            scope = doc_scope[doc]
            if scope not in scopes:
                continue
            address = (scope, doc_seq[doc])
            if address in seen:
                continue  # an edited message has a document per version
            seen.add(address)
            history = history_of(model, scope)
            message = history.get(address[1]) if history is not None else None
            if message is not None and wanted(message):
                found.append((_newest_first(message, scope), message))
        found.sort(key=lambda pair: pair[0])
        return [message for _, message in found]

    async def _walk(
        self,
        scopes: set[str],
        terms: list[str],
        author: str | None,
        before: float | None,
        limit: int,
    ) -> tuple[list[Message], bool]:
        """Walks the scopes' messages newest first until `limit` + 1 match."""
        model = self._current()
        heap: list[tuple[float, int, str]] = []
        histories: dict[str, History] = {}
        for scope in scopes:
            history = history_of(model, scope)
            seq = _newest_before(history, before) if history is not None else None
            if history is not None and seq is not None:
                histories[scope] = history
                heap.append((-history.get(seq)["ts"], -seq, scope))  # type: ignore[index]
        heapq.heapify(heap)
        found: list[Message] = []
        checked = 0
        while heap and len(found) <= limit:
            _, negative_seq, scope = heapq.heappop(heap)
            history = histories[scope]
            message = history.get(-negative_seq)
            if message is None:
                continue  # trimmed while we yielded: older ones are gone too
            if matches(message, terms, author, before):
                found.append(message)
            older = history.get(-negative_seq - 1)
            if older is not None:
                heapq.heappush(heap, (-older["ts"], negative_seq + 1, scope))
            checked += 1
            if checked % SCAN_STEP == 0:
                await asyncio.sleep(0)
        return found[:limit], len(found) > limit


def _newest_before(history: History, before: float | None) -> int | None:
    """The seq of the newest stored message older than `before` (None: none)."""
    stored = history.messages
    if not stored:
        return None
    if before is None:
        return int(stored[-1]["seq"])
    low, high = 0, len(stored)  # ts rises with seq: find the first not older
    while low < high:
        mid = (low + high) // 2
        if stored[mid]["ts"] < before:
            low = mid + 1
        else:
            high = mid
    return int(stored[low - 1]["seq"]) if low else None
