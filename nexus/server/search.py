"""The search index: which stored messages hold every term of a query.

The rule (docs/protocol.md): each white-space separated term of the query
must occur in the message's text, ignoring case (Unicode casefold). A term
holds no white space, so it occurs in a text exactly when it occurs in one of
the text's own terms ("words"). The index maps each word to the documents
(indexed versions of messages) that hold it, and finds the words holding a
term by searching the vocabulary, kept as a few big strings, with `str.find`.

A query gathers the documents of each term that is narrow (held by few
documents) and intersects them. If that leaves few candidates for the size
of the scope, each is checked against the model (still stored, not erased,
its text as it is now holds every term, the filters) and the survivors are
sorted newest first. Otherwise (common words, one or two letters: most of
the store would be candidates) the query walks the scope's messages newest
first and stops at the page's end, which a common term reaches soon. The
choice weighs the two costs: checking c candidates against walking about
(limit + 1) * N / e of the scope's N messages, e being the matches
expected (c, times the share of documents holding each broad term). Every stretch of work
yields to the event loop after SLICE_S, so a search delays the messages
flowing meanwhile by about half a millisecond.

Documents are only added: an edit indexes the message again, an erasure or a
trim leaves its documents to fail the check. Once the documents outnumber
twice the stored messages (plus REBUILD_SLACK), the index starts over.

Indexing is lazy. The model reports each message made or edited
(it is one of `Model.listeners`). A new message puts its room or conversation in the
backlog, from its seq on, unless the scope is there already: noting it is a
dictionary look-up, and the backlog holds one entry a scope however many
messages arrive, so a flood costs nothing per message and its indexing
only what is still stored when it runs (a busy room keeps its last 500). An
edit of an indexed message is queued by its address. Both are indexed
within LAG_S seconds, a slice at a time, or at once when a search needs it. At start-up every
room and conversation is in the backlog and indexed in the background, so
the server listens as soon as the store is loaded; a search needing a scope
not yet indexed indexes that scope first.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from itertools import islice

from nexus.server.model import History, Message, Model

log = logging.getLogger("nexus.search")

SLICE_S = 0.0005  # longest run of indexing or searching between two passes of the loop
LAG_S = 2.0  # how long new text may wait before the background indexes it
STEP = 48  # messages indexed between two looks at the clock (~0.3 ms)
CHUNK = 4_096  # vocabulary words per string searched with str.find
WORDS_MAX = 2_000  # a term held by more words than this is broad
DOCS_MAX = 100_000  # ... and so is one whose words hold more documents than this
# A walked message costs about a third of a checked candidate (measured:
# ~2.5 us against ~7 us): walk when checking c candidates costs more than
# walking (limit + 1) * N / e messages (e: the matches expected among them).
WALK_COST = 0.35
REBUILD_SLACK = 100_000  # documents beyond twice the stored messages before starting over
_SEP = "\x00"  # between vocabulary words; no text or query can hold it


def matches(message: Message, terms: list[str], author: str | None, before: float | None) -> bool:
    """Whether a stored message answers a query, as it is now."""
    if message.erased:
        return False
    if before is not None and message.ts >= before:
        return False
    if author is not None and message.author != author:
        return False
    text = message.text.casefold()
    return all(term in text for term in terms)


def _newest_first(message: Message, scope: str) -> tuple[float, int, str]:
    """The sort key of results: newest ts first, then newest seq, then scope
    (a room name or pair key), so that equal keys never leave the order open."""
    return -message.ts, -message.seq, scope


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
        # One clock for all index work: since it last let the loop run.
        self._slicer = _Slicer()
        self._reset()

    def _reset(self) -> None:
        # Document -> its scope's number, and the scopes (room names, pair
        # keys) by number: arrays, which the garbage collector never walks.
        self._doc_scope = array("i")
        self._scope_names: list[str] = []
        self._scope_numbers: dict[str, int] = {}
        self._doc_seq = array("q")  # document -> its message's seq
        self._postings: dict[str, array[int]] = {}  # word -> documents holding it
        self._mentioned: dict[str, array[int]] = {}  # user key -> documents mentioning them
        self._authored: dict[str, array[int]] = {}  # author's username -> their documents
        self._blobs: list[str] = []  # full chunks of the vocabulary, each one string
        self._words: list[str] = []  # the chunk being filled
        self._blob: str | None = None  # `_words` as one string, until a word is added
        self._pending: deque[tuple[str, int]] = deque()  # (scope, seq) of edits
        self._indexed: dict[str, int] = {}  # scope -> the newest seq indexed there
        # Scopes whose stored messages wait -> the seq to index next there.
        self._backlog: dict[str, int] = {}
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
        self._backlog = dict.fromkeys([*model.rooms, *model.conversations], 0)
        model.listeners.append(self)
        self._check_at = 2 * self._stored(model) + REBUILD_SLACK

    @staticmethod
    def _stored(model: Model) -> int:
        rooms = sum(len(room.history.messages) for room in model.rooms.values())
        return rooms + sum(len(conv.history.messages) for conv in model.conversations.values())

    def new_text(self, scope: str, seq: int) -> None:
        """A new message: its scope waits from its seq on, unless it waits already."""
        self._backlog.setdefault(scope, seq)

    def edited_text(self, scope: str, seq: int) -> None:
        if seq <= self._indexed.get(scope, 0):
            self._pending.append((scope, seq))  # an edit of an indexed message
        else:  # not indexed yet: it will be with the rest of its scope
            self._backlog.setdefault(scope, seq)

    async def _run(self) -> None:
        while True:
            try:
                await self.catch_up()
            except Exception:  # searches still catch up for themselves
                log.exception("background indexing failed; starting over")
                self._model = None
            await asyncio.sleep(LAG_S)

    async def catch_up(self, scopes: Iterable[str] | None = None) -> None:
        """Indexes the waiting messages, and the backlog (all of it, or the
        scopes among `scopes`), yielding to the loop every SLICE_S seconds.

        Once this returns (before any other await) every scope asked for is
        indexed."""
        if not self._pending and not self._backlog and self._model is self._model_of():
            return
        asked = None if scopes is None else list(scopes)
        wanted, generation = None, -1
        while True:
            model = self._current()
            if generation != self._generation:  # (re)built: every scope waits again
                generation = self._generation
                wanted = None if asked is None else list(asked)
            if self._pending:
                self._index_pending(model, STEP)
            else:
                scope = self._next_backlog(wanted)
                if scope is None:
                    return
                self._index_backlog(model, scope, STEP)
                if scope in self._backlog and wanted is not None:
                    wanted.append(scope)  # not done: its turn again
            await self._slicer.pause()

    def _next_backlog(self, wanted: list[str] | None) -> str | None:
        backlog = self._backlog
        if wanted is None:
            return next(iter(backlog), None)
        while wanted:
            scope = wanted.pop()
            if scope in backlog:
                return scope
        return None

    def _index_backlog(self, model: Model, scope: str, count: int) -> None:
        """Indexes up to `count` more of a backlog scope's stored messages, by
        seq (so messages trimmed or added meanwhile are no trouble); the
        scope leaves the backlog once its newest message is indexed."""
        history = model.history(scope)
        if history is None or not history.messages:
            del self._backlog[scope]
            return
        seq = max(self._backlog[scope], history.messages[0].seq)
        end = min(seq + count, history.last_seq + 1)
        generation = self._generation
        for message in islice(history.since(seq - 1), end - seq):
            self._add(scope, message)
            if self._generation != generation:
                return  # started over: the new backlog holds every scope
        self._indexed[scope] = end - 1
        if end > history.last_seq:
            del self._backlog[scope]
        else:
            self._backlog[scope] = end

    def _index_pending(self, model: Model, count: int) -> None:
        pending, generation = self._pending, self._generation
        for _ in range(min(count, len(pending))):
            scope, seq = pending.popleft()
            if seq >= self._backlog.get(scope, seq + 1):
                continue  # indexed with the rest of its scope
            history = model.history(scope)
            message = history.get(seq) if history is not None else None
            if message is not None and not message.erased:
                self._add(scope, message)
                if self._generation != generation:
                    return  # started over: the new backlog holds every scope

    def _add(self, scope: str, message: Message) -> None:
        if message.erased:
            return
        doc = len(self._doc_seq)
        number = self._scope_numbers.get(scope)
        if number is None:
            number = self._scope_numbers[scope] = len(self._scope_names)
            self._scope_names.append(scope)
        self._doc_scope.append(number)
        self._doc_seq.append(message.seq)
        get = self._postings.get
        for word in set(message.text.casefold().split()):  # as search_terms splits
            docs = get(word)
            if docs is None:
                docs = self._postings[word] = array("i")
                self._new_word(word)
            docs.append(doc)
        for name in message.mentions:
            self._mentioned.setdefault(name.lower(), array("i")).append(doc)
        authored = self._authored.get(message.author)
        if authored is None:
            authored = self._authored[message.author] = array("i")
        authored.append(doc)
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
        docs = None
        for _ in range(3):
            await self.catch_up(scopes)
            generation, model = self._generation, self._current()
            docs = await self._candidates(terms, author, limit, partial(_size, model, scopes))
            if generation == self._generation:
                break
            docs = None  # rebuilt while we yielded: those documents are gone
        if docs is None:
            return await self._walk(scopes, terms, author, before, limit)
        found = await self._check(model, docs, scopes, lambda m: matches(m, terms, author, before))
        return found[:limit], len(found) > limit

    async def mentions(self, user: str, scopes: set[str], limit: int) -> list[Message]:
        """Up to `limit` stored, not erased messages of `scopes` that mention
        `user` (a username as registered), newest first."""
        await self.catch_up(scopes)
        docs = self._mentioned.get(user.lower(), ())

        def mentioned(m: Message) -> bool:
            return not m.erased and user in m.mentions

        return (await self._check(self._current(), docs, scopes, mentioned))[:limit]

    async def _candidates(
        self, terms: list[str], author: str | None, limit: int, size: Callable[[], int]
    ) -> set[int] | None:
        """The documents to check: those holding every narrow term (and by
        `author`, if they are few); None if walking the scope's `size()`
        messages newest first is likely cheaper.

        Checking costs about one unit a candidate, walking WALK_COST a
        message, and a walk meets about `expected` matches in the store:
        the candidates times the share of documents holding each broad term.
        """
        postings = self._postings
        total = max(1, len(self._doc_seq))
        found: list[set[int]] = []
        share = 1.0  # of documents holding every broad term, if independent
        held: list[tuple[int, list[array[int]]]] = []
        if author is not None:
            docs = self._authored.get(author)
            held.append((len(docs) if docs is not None else 0, [docs] if docs is not None else []))
        for term in terms:
            words = await self._words_holding(term)
            if words is not None:
                lists = [postings[word] for word in words]
                held.append((sum(map(len, lists)), lists))
        slicer = self._slicer
        for count, lists in held:
            if count > DOCS_MAX:
                share *= min(1.0, count / total)
                continue
            docs_set: set[int] = set()
            for docs in lists:
                for start in range(0, len(docs), 4096):
                    docs_set.update(docs[start : start + 4096])
                    await slicer.pause()
            found.append(docs_set)
        if not found:
            return None
        found.sort(key=len)
        candidates = found[0]
        for other in found[1:]:
            candidates = candidates.intersection(other)  # the smaller one is walked
            await slicer.pause()
        expected = max(0.5, len(candidates) * share)
        if candidates and len(candidates) * expected > WALK_COST * (limit + 1) * size():
            return None
        return candidates

    async def _words_holding(self, term: str) -> list[str] | None:
        """The vocabulary's words that hold `term`; None past WORDS_MAX."""
        if self._blob is None:
            self._blob = _SEP + _SEP.join(self._words) + _SEP
        words: list[str] = []
        for blob in (*self._blobs, self._blob):
            await self._slicer.pause()  # a blob takes tens of microseconds
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

    async def _check(
        self,
        model: Model,
        docs: Iterable[int],
        scopes: set[str],
        wanted: Callable[[Message], bool],
    ) -> list[Message]:
        """The messages of `docs` in `scopes` that are `wanted` as they are now,
        each once, newest first (same ts: newest seq first)."""
        # A rebuild while we yield makes new tables; these stay as they are.
        doc_scope, doc_seq, names = self._doc_scope, self._doc_seq, self._scope_names
        seen: set[tuple[str, int]] = set()
        found: list[tuple[tuple[float, int, str], Message]] = []
        pause = self._slicer.pause
        for count, doc in enumerate(docs):
            if not count & 31:
                await pause()
            scope = names[doc_scope[doc]]
            if scope not in scopes:
                continue
            address = (scope, doc_seq[doc])
            if address in seen:
                continue  # an edited message has a document per version
            seen.add(address)
            history = model.history(scope)
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
        """Walks the scopes' messages newest first until `limit` + 1 match.

        A heap holds each scope's next message (scopes are unique, so the
        History in an entry is never compared); the clock is looked at
        every 32 steps, a step being a few microseconds."""
        model = self._current()
        rooms, conversations = model.rooms, model.conversations
        pause = self._slicer.pause
        heap: list[tuple[float, int, str, History]] = []
        for count, scope in enumerate(scopes):
            if not count & 31:
                await pause()
            holder = conversations.get(scope) if "\n" in scope else rooms.get(scope)
            if holder is None or not holder.history.messages:
                continue
            history = holder.history
            newest = history.messages[-1] if before is None else _newest_before(history, before)
            if newest is not None:
                heap.append((-newest.ts, -newest.seq, scope, history))
        heapq.heapify(heap)
        found: list[Message] = []
        count = 0
        while heap and len(found) <= limit:
            count += 1
            if not count & 31:
                await pause()
            _, negative_seq, scope, history = heap[0]
            message = history.get(-negative_seq)
            if message is None:  # trimmed while we yielded: older ones are gone too
                heapq.heappop(heap)
                continue
            if matches(message, terms, author, before):
                found.append(message)
            older = history.get(-negative_seq - 1)
            if older is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (-older.ts, negative_seq + 1, scope, history))
        return found[:limit], len(found) > limit


class _Slicer:
    """Yields to the event loop once SLICE_S has passed since the last time.

    (Work that starts after others ran finds its deadline passed and yields
    at its first pause: a cheap pass of the loop.) Loops of steps of a few
    microseconds call `pause` every 32 steps."""

    __slots__ = ("deadline",)

    def __init__(self) -> None:
        self.deadline = time.perf_counter() + SLICE_S

    async def pause(self) -> None:
        if time.perf_counter() > self.deadline:
            # Two passes: requests read in the first are answered there, and
            # the store writes them (and the outbox flushes) at the start of
            # the second, before the next slice of index work delays them.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            self.deadline = time.perf_counter() + SLICE_S


def _size(model: Model, scopes: Iterable[str]) -> int:
    """How many messages the scopes hold."""
    histories = (model.history(scope) for scope in scopes)
    return sum(len(history.messages) for history in histories if history is not None)


def _newest_before(history: History, before: float) -> Message | None:
    """The newest stored message older than `before`, if any."""
    stored = history.messages
    low, high = 0, len(stored)  # ts rises with seq: find the first not older
    while low < high:
        mid = (low + high) // 2
        if stored[mid].ts < before:
            low = mid + 1
        else:
            high = mid
    return stored[low - 1] if low else None
