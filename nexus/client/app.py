"""The full-screen client: layout, key bindings and the network task beside the UI.

    ┌ messages ──────────────────────────┬ rooms / online ┐
    │                                    │                │
    ├────────────────────────────────────┴────────────────┤
    │ > input line                                        │
    │ ana@#general  online  localhost:9999                │ status bar
    └─────────────────────────────────────────────────────┘

Focus always stays on the input line; scrolling is the application's own
offset into the pane's scrollback, so PageUp/PageDown and the wheel work
from anywhere. `ChatApp` takes prompt_toolkit input/output objects so tests
can drive it through a pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import (
    BufferControl,
    Float,
    FloatContainer,
    FormattedTextControl,
    HSplit,
    Layout,
    VSplit,
    Window,
)
from prompt_toolkit.layout.controls import UIContent, UIControl
from prompt_toolkit.layout.menus import CompletionsMenu
from prompt_toolkit.layout.processors import BeforeInput
from prompt_toolkit.mouse_events import MouseEvent, MouseEventType
from prompt_toolkit.output import Output
from prompt_toolkit.styles import Style

from nexus.client import render
from nexus.client.commands import completions
from nexus.client.connection import ChatConnection
from nexus.client.render import Fragments
from nexus.client.session import ChatSession
from nexus.client.state import ChatState
from nexus.protocol import LoginReply

SIDE_WIDTH = 24
WHEEL_ROWS = 3

STYLE = Style.from_dict(
    {
        "header": "underline",
        "status": "reverse",
        "status.offline": "bg:ansired fg:ansiwhite bold",
        "side.border": "fg:ansibrightblack",
        "side.title": "bold underline",
        "side.current": "reverse bold",
        "side.unread": "bold ansiyellow",
        "side.mention": "bold ansired",
        "marker": "bg:ansiyellow fg:ansiblack",
        "prompt": "bold",
    }
)


class MessagePane(UIControl):
    """The current room's scrollback, rendering only the rows that fit, newest at the bottom."""

    def __init__(self, state: ChatState) -> None:
        self.state = state
        self.height = 24  # of the last render; PageUp moves by about this much

    def create_content(self, width: int, height: int) -> UIContent:
        self.height = height
        pane = self.state.pane
        marked = bool(pane.scroll) and height > 1  # a bar under the view says what waits below
        lines: list[Fragments] = pane.view(width, height - marked)
        if marked and pane.scroll:
            waiting = f"{pane.newer} newer messages" if pane.newer else "newer lines"
            lines.append([("class:marker", f" ▼ {waiting} below: PageDown ".ljust(width))])
        lines = [[] for _ in range(height - len(lines))] + lines
        return UIContent(get_line=lines.__getitem__, line_count=len(lines))

    def mouse_handler(self, mouse_event: MouseEvent) -> Any:
        if mouse_event.event_type == MouseEventType.SCROLL_UP:
            self.state.pane.scroll_by(WHEEL_ROWS)
        elif mouse_event.event_type == MouseEventType.SCROLL_DOWN:
            self.state.pane.scroll_by(-WHEEL_ROWS)
        else:
            return NotImplemented
        return None

    def is_focusable(self) -> bool:
        return False


class ChatCompleter(Completer):
    """Tab completion from the command table: commands, rooms, user names."""

    def __init__(self, state: ChatState) -> None:
        self.state = state

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        word, candidates = completions(document.text_before_cursor, self.state)
        for candidate in candidates:
            yield Completion(candidate, start_position=-len(word))


def side_panel(state: ChatState) -> Fragments:
    """Rooms with unread counts and a mention marker, then the people online."""
    out: Fragments = [("class:side.title", "Rooms\n")]
    for name in sorted(state.rooms):
        room = state.rooms[name]
        out.append(("class:side.current" if name == state.current else "", f"#{name}"))
        if room.unread:
            out.append(("class:side.unread", f" {room.unread}"))
        if room.mentioned:
            out.append(("class:side.mention", " @"))
        out.append(("", "\n"))
    out.append(("class:side.title", f"\nOnline ({len(state.online)})\n"))
    for user in sorted(state.online, key=str.casefold):
        name = render.clean(user)
        out.append((render.user_style(name), name[: SIDE_WIDTH - 2] + "\n"))
    return out


def header(state: ChatState) -> Fragments:
    """The current room and its topic, above the messages."""
    room = state.rooms.get(state.current or "")
    if room is None:
        return [("class:header", " no room: /join one, /rooms lists them")]
    return [("class:header bold", f" #{room.name} "), ("class:header", render.clean(room.topic))]


def status_bar(state: ChatState) -> Fragments:
    where = f"#{state.current}" if state.current else "(no room)"
    style = "class:status" if state.connected else "class:status.offline"
    scrolled = "  [scrolled]" if state.pane.scroll else ""
    return [
        ("class:status", f" {state.me}@{where}  "),
        (style, f" {state.connection} "),
        ("class:status", f"  {state.server}{scrolled} "),
    ]


class PaneLog(logging.Handler):
    """Shows the client's log warnings (a malformed event dropped) as error lines.

    While the full screen runs it owns the terminal: a warning written to
    stderr by logging's last-resort handler would land across the layout.
    """

    def __init__(self, app: ChatApp) -> None:
        super().__init__(logging.WARNING)
        self.app = app

    def emit(self, record: logging.LogRecord) -> None:
        self.app.state.error(record.getMessage())
        self.app.invalidate()


class ChatApp:
    """The Application around one ChatSession."""

    def __init__(
        self, session: ChatSession, *, input: Input | None = None, output: Output | None = None
    ) -> None:
        self.session = session
        state = self.state = session.state
        session.on_change = self.invalidate
        session.on_bell = self.bell
        session.on_quit = self.exit
        self.pane = MessagePane(state)
        self.input = Buffer(
            multiline=False,
            history=InMemoryHistory(),
            completer=ChatCompleter(state),
            accept_handler=self._accept,
        )
        body = VSplit(
            [
                HSplit(
                    [
                        Window(FormattedTextControl(lambda: header(state)), height=1),
                        Window(self.pane, wrap_lines=False),
                    ]
                ),
                Window(width=1, char="│", style="class:side.border"),
                Window(
                    FormattedTextControl(lambda: side_panel(state)),
                    width=SIDE_WIDTH,
                ),
            ]
        )
        root = FloatContainer(
            HSplit(
                [
                    body,
                    Window(
                        BufferControl(
                            self.input, input_processors=[BeforeInput("> ", style="class:prompt")]
                        ),
                        height=1,
                    ),
                    Window(
                        FormattedTextControl(lambda: status_bar(state)),
                        height=1,
                        style="class:status",
                    ),
                ]
            ),
            floats=[Float(xcursor=True, ycursor=True, content=CompletionsMenu(max_height=8))],
        )
        self.app: Application[None] = Application(
            layout=Layout(root, focused_element=self.input),
            key_bindings=self._bindings(),
            style=STYLE,
            full_screen=True,
            mouse_support=True,
            input=input,
            output=output,
        )

    def _accept(self, buffer: Buffer) -> bool:
        self.session.submit(buffer.text)
        return False  # clears the line; it is already in the history

    def _bindings(self) -> KeyBindings:
        kb = KeyBindings()
        state = self.state
        empty = Condition(lambda: not self.input.text)

        @kb.add("pageup")
        def _(event: KeyPressEvent) -> None:
            state.pane.scroll_by(max(1, self.pane.height - 2))

        @kb.add("pagedown")
        def _(event: KeyPressEvent) -> None:
            state.pane.scroll_by(-max(1, self.pane.height - 2))

        @kb.add("c-n")
        @kb.add("escape", "right")
        def _(event: KeyPressEvent) -> None:
            state.cycle(1)

        @kb.add("c-p")
        @kb.add("escape", "left")
        def _(event: KeyPressEvent) -> None:
            state.cycle(-1)

        @kb.add("c-c")
        @kb.add("c-d", filter=empty)
        def _(event: KeyPressEvent) -> None:
            self.exit()

        return kb

    def invalidate(self) -> None:
        self.app.invalidate()

    def bell(self) -> None:
        self.app.output.bell()

    def exit(self) -> None:
        if self.app.is_running and not self.app.is_done:
            self.app.exit()

    async def run(
        self, conn: ChatConnection | None = None, login: LoginReply | None = None
    ) -> None:
        """Runs the screen and the network side by side; returns when the user leaves."""
        client_log = logging.getLogger("nexus.client")
        pane_log = PaneLog(self)
        client_log.addHandler(pane_log)
        network = asyncio.create_task(self.session.run(conn, login))
        try:
            await self.app.run_async()
        finally:
            await self.session.close()
            network.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await network
            client_log.removeHandler(pane_log)
