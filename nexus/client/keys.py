"""The key bindings: scrolling, switching buffers, editing the last message, quitting.

Focus never leaves the input line, so every binding here works while typing;
the ones that would steal a key from the line editor (Home, End, Up) act
only when the line has nothing left to do with them. docs/client.md lists
every key.

Up on an empty line puts your newest message of the current buffer on the
line as `/edit N text` (as Slack, Discord and Element do); the input history
stays one more Up away, and Down comes back to the offer. With no message of
yours loaded there, Up is the history at once, as in WeeChat and senpai.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

from prompt_toolkit.buffer import Buffer as InputBuffer
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from nexus.client.state import ChatState

TOP = 1 << 30  # a scroll offset past any scrollback: the view clamps it to the oldest line


def bindings(
    state: ChatState,
    line: InputBuffer,
    page: Callable[[], int],
    changed: Callable[[], None],
    leave: Callable[[], None],
    toggle_panel: Callable[[], None] = lambda: None,
) -> KeyBindings:
    """Keys over `state`; `page()` is the pane's height, `changed()` runs after a switch,
    `toggle_panel()` hides or shows the side panel."""
    kb = KeyBindings()
    empty = Condition(lambda: not line.text)
    at_end = Condition(lambda: line.cursor_position == len(line.text))
    at_start = Condition(lambda: line.cursor_position == 0)

    @kb.add("up", filter=empty)
    async def _(event: KeyPressEvent) -> None:
        buffer = state.current
        entry = buffer.newest(mine=True) if buffer is not None else None
        if entry is None:
            if line.working_index == 0:
                # Enter left the line's copy of the history empty until the next
                # redraw reloads it: reload it now, or an Up typed straight after
                # Enter finds nothing. (A history read from memory or a file
                # loads within the one step the loader task is given here.)
                line.load_history_if_not_yet_loaded()
                await asyncio.sleep(0)
            line.history_backward(count=event.arg)
            return
        text = f"/edit {entry.seq} {entry.text}"
        line.document = Document(text, len(text))

    @kb.add("pageup")
    def _(event: KeyPressEvent) -> None:
        state.pane.scroll_by(max(1, page() - 2))

    @kb.add("pagedown")
    def _(event: KeyPressEvent) -> None:
        state.pane.scroll_by(-max(1, page() - 2))

    @kb.add("home", filter=at_start)
    @kb.add("c-home")
    @kb.add("escape", "home")
    def _(event: KeyPressEvent) -> None:
        state.pane.scroll_by(TOP)  # the top; older history is fetched from there

    @kb.add("end", filter=at_end)
    @kb.add("c-end")
    @kb.add("escape", "end")
    def _(event: KeyPressEvent) -> None:
        state.pane.scroll_by(-state.pane.scroll)

    def switching(move: Callable[[], None]) -> Callable[[KeyPressEvent], None]:
        def handler(event: KeyPressEvent) -> None:
            move()
            changed()

        return handler

    kb.add("c-n")(switching(lambda: state.cycle(1)))
    kb.add("escape", "right")(switching(lambda: state.cycle(1)))
    kb.add("c-p")(switching(lambda: state.cycle(-1)))
    kb.add("escape", "left")(switching(lambda: state.cycle(-1)))
    kb.add("escape", "a")(switching(state.next_active))
    for digit in "1234567890":
        kb.add("escape", digit)(switching(partial(state.switch_number, int(digit) or 10)))

    @kb.add("escape", "=")
    def _(event: KeyPressEvent) -> None:
        state.show_folded = not state.show_folded

    # WeeChat's keys for its nick list (Alt-Shift-N) and buffer list (Alt-Shift-B): the
    # side panel is both.
    @kb.add("escape", "N")
    @kb.add("escape", "B")
    def _(event: KeyPressEvent) -> None:
        toggle_panel()

    @kb.add("c-l")
    def _(event: KeyPressEvent) -> None:
        event.app.renderer.clear()  # erase and draw everything again, as terminals expect

    @kb.add("c-c")
    @kb.add("c-d", filter=empty)
    def _(event: KeyPressEvent) -> None:
        leave()

    return kb
