"""Input history on disk: what survives a restart, what is trimmed, what a broken file costs."""

from __future__ import annotations

import json
import logging

from nexus.client.history import HISTORY_CAP, InputHistory, history_path


def test_the_path_follows_xdg_state_home(state_home):
    """$XDG_STATE_HOME/nexus/input_history (the fixture points it at a temporary directory)."""
    assert history_path() == state_home / "nexus" / "input_history"


def test_lines_come_back_newest_first_with_any_character(tmp_path):
    """Each line is one JSON string, so newlines and quotes read back as typed."""
    history = InputHistory(tmp_path / "h")
    for line in ("first", 'say "hi"\nthere', "third"):
        history.store_string(line)
    assert list(InputHistory(tmp_path / "h").load_history_strings()) == [
        "third",
        'say "hi"\nthere',
        "first",
    ]


def test_only_the_newest_lines_are_kept_and_broken_lines_are_skipped(tmp_path):
    """Past the cap the file is rewritten with the newest lines; a garbled line is ignored."""
    path = tmp_path / "h"
    lines = [json.dumps(f"line {i}") for i in range(HISTORY_CAP + 5)]
    path.write_text("\n".join(["{not json", *lines]) + "\n")
    loaded = list(InputHistory(path).load_history_strings())
    assert len(loaded) == HISTORY_CAP and loaded[0] == f"line {HISTORY_CAP + 4}"
    assert len(path.read_text().splitlines()) == HISTORY_CAP


def test_a_history_that_cannot_be_written_warns_once(tmp_path, caplog):
    """A path under a plain file: one warning, no exception; typing goes on."""
    (tmp_path / "file").write_text("")
    history = InputHistory(tmp_path / "file" / "h")
    with caplog.at_level(logging.WARNING, logger="nexus.client.history"):
        history.store_string("a")
        history.store_string("b")
    assert len(caplog.records) == 1 and "input history not kept" in caplog.records[0].message
