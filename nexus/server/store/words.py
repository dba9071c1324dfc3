"""The SQLite engine's search index: a vocabulary, and each message's words.

The protocol's rule is that a term (no white space in it) matches a message
when it occurs in the message's case-folded text; so it occurs in one of
the text's white-space separated words. The index follows the json engine's
(search.py), on disk:
- `vocab` holds every word ever indexed once, and `grams`, a trigram FTS5
  table over it, finds the words holding a term of three characters or
  more; shorter terms scan the vocabulary itself (a few MiB, not the
  messages).
- `words` is a contentless FTS5 table of each message's words (`detail=none`:
  which messages hold a word, nothing more). A term becomes the words that
  hold it, OR-ed, and a query the AND of its terms' groups.
A message costs its words' tokens (about a fifth of its trigrams) and a
vocabulary lookup for words not seen lately; a term found in no word
answers at once, with no posting list read. A term held by more than
WIDE words (`ing`, `e`) is left to the caller, which checks it against the
text of what the other terms find, or walks messages newest first: such a
term is common, so matches come soon.
"""

from __future__ import annotations

import sqlite3
from string import punctuation

# Every ASCII character but white space is part of a word, as `str.split`
# has it (the `ascii` tokenizer takes every other character as one already;
# controls cannot be in a message). Quoted for the SQL (') and for the
# tokenizer's own argument (' again).
_TOKENCHARS = punctuation.replace("'", "''")
_TOKENIZE = f"ascii tokenchars '{_TOKENCHARS}'".replace("'", "''")

SCHEMA = f"""
CREATE VIRTUAL TABLE words USING fts5(
    text, content='', detail=none, columnsize=0, tokenize='{_TOKENIZE}'
);
CREATE TABLE vocab (id INTEGER PRIMARY KEY, word TEXT NOT NULL UNIQUE);
CREATE VIRTUAL TABLE grams USING fts5(
    word, content='vocab', content_rowid='id', tokenize='trigram'
);
CREATE TRIGGER vocab_grams AFTER INSERT ON vocab BEGIN
    INSERT INTO grams (rowid, word) VALUES (new.id, new.word);
END
"""
TABLES = ("words", "vocab", "grams")

# Words holding a term past which it is checked against the text of what the
# other terms find, rather than looked up (an OR of a word costs ~0.1 ms), and
# past which it is never looked up.
WIDE = 200
SPREAD = 5_000
KNOWN_MAX = 100_000  # words remembered as in the vocabulary (~10 MiB)


def indexed_text(text: str) -> str:
    """What `words` holds of `text`: its case-folded words, one space apart.
    A deletion from a contentless table must give exactly this again."""
    return " ".join(text.casefold().split())


def quoted(word: str) -> str:
    """`word` as one FTS5 string, whatever characters it holds."""
    return '"' + word.replace('"', '""') + '"'


class Vocabulary:
    """Adds messages to the index and keeps the vocabulary whole. It
    remembers the words it has lately seen in the vocabulary, so that a
    message of words already known costs no lookup there: one per writer."""

    def __init__(self) -> None:
        self._known: set[str] = set()

    def add(self, db: sqlite3.Connection, docs: list[tuple[int, str]]) -> None:
        """Indexes (message id, text) pairs."""
        rows = [(id_, indexed_text(text)) for id_, text in docs]
        new = {word for _, words in rows for word in words.split(" ")} - self._known
        new.discard("")
        if new:
            if len(self._known) + len(new) > KNOWN_MAX:
                self._known.clear()
            self._known |= new
            db.executemany("INSERT OR IGNORE INTO vocab (word) VALUES (?)", [(w,) for w in new])
        db.executemany("INSERT INTO words (rowid, text) VALUES (?, ?)", rows)


def remove(db: sqlite3.Connection, docs: list[tuple[int, str]]) -> None:
    """Takes (message id, text as indexed) pairs out of `words`; the
    vocabulary keeps their words (one left unused finds nothing)."""
    if not docs:  # an engine without this index never has any
        return
    db.executemany(
        "INSERT INTO words (words, rowid, text) VALUES ('delete', ?, ?)",
        [(id_, indexed_text(text)) for id_, text in docs],
    )


def holding(db: sqlite3.Connection, term: str, most: int) -> list[str] | None:
    """The vocabulary's words that hold `term`, or None if more than `most` do."""
    if len(term) >= 3:
        rows = db.execute(
            "SELECT word FROM grams WHERE grams MATCH ? LIMIT ?", (quoted(term), most + 1)
        )
    else:
        rows = db.execute("SELECT word FROM vocab WHERE instr(word, ?) LIMIT ?", (term, most + 1))
    found = [word for (word,) in rows if term in word]  # the trigrams fold case themselves
    return None if len(found) > most else found


def match(groups: list[list[str]]) -> str:
    """The FTS5 query for messages holding a word of each group."""
    return " AND ".join("(" + " OR ".join(map(quoted, group)) + ")" for group in groups)
