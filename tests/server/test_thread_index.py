"""A root's replies as the model keeps them (model.Thread): what summaries,
thread pages and unread counts are answered from, on every engine."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nexus.server.model import THREAD_PARTICIPANTS, Thread


def test_the_summary_counts_replies_not_erased_and_names_the_latest_writers() -> None:
    thread = Thread()
    for seq, author in enumerate(["ana", "bob", "ana", "cyd", "dee", "eve", "fay", "bob"], 2):
        thread.add(seq, author, float(seq))
    assert thread.summary() == {
        "replies": 8,
        "last": 9.0,
        "participants": ["bob", "fay", "eve", "dee", "cyd"],
    }
    thread.erase(9)  # bob's last: the one before is the last now
    assert thread.summary() == {
        "replies": 7,
        "last": 8.0,
        "participants": ["fay", "eve", "dee", "cyd", "ana"],
    }
    assert thread.unread(after=5, reader="fay") == 2  # 6 (dee), 7 (eve); 8 is fay's, 9 erased
    assert thread.newest(1) == 9  # erased replies are still kept
    for seq in range(2, 10):
        thread.erase(seq)
    assert thread.summary() is None and thread.replies == 0
    assert Thread().newest(1) == 1


def test_replies_come_in_any_order_once_each_and_go_when_trimmed() -> None:
    thread = Thread()
    thread.add(5, "ana", 5.0)
    thread.add(3, "bob", 3.0, erased=True)  # read back out of order, already erased
    thread.add(5, "ana", 5.0)  # again: once
    assert list(thread.seqs) == [3, 5] and thread.replies == 1
    thread.add(3, "bob", 3.0)  # told again not erased
    assert thread.replies == 2
    thread.drop(3)
    thread.drop(4)  # never there: nothing
    assert list(thread.seqs) == [5] and thread.authors == ["ana"] and list(thread.times) == [5.0]
    assert thread.unread(after=0, reader="bob") == 1


_REPLIES = st.lists(
    st.tuples(st.sampled_from(["ana", "bob", "cyd", "dee", "eve", "fay"]), st.booleans()),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(_REPLIES, st.integers(min_value=0, max_value=45), st.sampled_from(["ana", "bob", "zed"]))
def test_the_arrays_answer_as_a_dict_of_every_reply_would(
    replies: list[tuple[str, bool]], after: int, reader: str
) -> None:
    """Against the plainest model: every reply in a list, erased or not."""
    thread = Thread()
    kept: list[tuple[int, str, float, bool]] = []
    for seq, (author, erased) in enumerate(replies, 2):
        thread.add(seq, author, seq * 1.5)
        if erased:
            thread.erase(seq)
        kept.append((seq, author, seq * 1.5, erased))
    live = [(seq, author, ts) for seq, author, ts, erased in kept if not erased]
    participants: list[str] = []
    for _, author, _ in reversed(live):
        if author not in participants and len(participants) < THREAD_PARTICIPANTS:
            participants.append(author)
    if live:
        assert thread.summary() == {
            "replies": len(live),
            "last": live[-1][2],
            "participants": participants,
        }
    else:
        assert thread.summary() is None and thread.last() is None
    assert thread.unread(after, reader) == sum(
        1 for seq, author, _ in live if seq > after and author != reader
    )
