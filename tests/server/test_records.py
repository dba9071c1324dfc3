"""Records: each change's journal form, read back as the same record."""

from __future__ import annotations

import itertools

import orjson

from nexus.server.records import RECORDS, Record, Say, from_json


def as_json(record: dict) -> dict:
    """A journal record as it reads back from its line (tuples are lists there)."""
    return orjson.loads(orjson.dumps(record))  # type: ignore[no-any-return]


def test_say_spells_out_the_generic_journal_form_exactly():
    """Say writes its journal line by hand (it is the hot path): for every mix
    of its optional fields, what the generic form would write."""
    options = itertools.product((False, True), (None, 3), ((), ("bo",)), (None, "Zed"))
    for action, reply_to, mentions, guest in options:
        say = Say(
            user="ana", room="tech", text="hi", ts=1.5, action=action, reply_to=reply_to,
            mentions=mentions, guest=guest,
        )  # fmt: skip
        for n in (None, 7):
            assert as_json(say.to_json(n)) == as_json(Record.to_json(say, n))
        again = from_json(say.to_json(7))  # read back alike
        assert as_json(again.to_json(7)) == as_json(say.to_json(7))


def test_every_op_names_its_record():
    """The journal's vocabulary: each op is one class."""
    assert all(op == cls.OP for op, cls in RECORDS.items())
    assert len(RECORDS) == 31
