"""The full-screen client: the parts of layout.py and the keys of keys.py around one session.

Focus always stays on the input line; scrolling is the application's own
offset into the pane's scrollback, so PageUp/PageDown and the wheel work
from anywhere. `ChatApp` takes prompt_toolkit input/output objects so tests
can drive it through a pipe.

/password reads its answers in the same input line, switched to a secret
mode: the characters show as `*`, Enter hands the text to the command
instead of the history, Ctrl-C or Escape cancels, and nothing typed there is
kept or shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from pathlib import Path

from prompt_toolkit.application import Application
from prompt_toolkit.buffer import Buffer as InputBuffer
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.history import History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent, merge_key_bindings
from prompt_toolkit.layout import (
    BufferControl,
    ConditionalContainer,
    Dimension,
    Float,
    FloatContainer,
    FormattedTextControl,
    HSplit,
    Layout,
    VSplit,
    Window,
)
from prompt_toolkit.layout.menus import CompletionsMenu
from prompt_toolkit.layout.processors import ConditionalProcessor, PasswordProcessor
from prompt_toolkit.output import ColorDepth, Output

from nexus.client import images
from nexus.client.commands import UsageError, completions
from nexus.client.config import Notifications
from nexus.client.connection import ChatConnection
from nexus.client.history import InputHistory
from nexus.client.keys import bindings
from nexus.client.layout import (
    SIDE_WIDTH,
    STYLE,
    Fitted,
    MessagePane,
    header,
    panel_shown,
    side_panel,
    status_bar,
)
from nexus.client.notify import Notifier
from nexus.client.numbers import BufferNumbers
from nexus.client.session import ChatSession
from nexus.client.state import Buffer, ChatState
from nexus.protocol import LoginReply

INPUT_ROWS = 5  # the input line wraps and grows up to this many rows


class ChatCompleter(Completer):
    """Tab completion from the command table: commands, rooms, user names.

    A completed word is followed by a space, and a name that starts a line by
    `: ` (the usual way to address someone), so typing goes straight on; a
    directory by nothing, so Tab goes on into it.
    """

    def __init__(self, state: ChatState) -> None:
        self.state = state

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        before = document.text_before_cursor
        word, candidates = completions(before, self.state)
        addressing = not before.startswith("/") and before == word
        suffix = ": " if addressing else " "
        for candidate in candidates:
            end = "" if candidate.endswith("/") else suffix
            yield Completion(candidate + end, start_position=-len(word), display=candidate)


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
    """The Application around one ChatSession.

    `history` is the file typed lines are kept in across runs (none: memory only), and
    `numbers` the one buffer numbers are (numbers.py; none: numbered as they open);
    `notifications` says how alerts reach the person (client.toml's table).
    """

    def __init__(
        self,
        session: ChatSession,
        *,
        input: Input | None = None,
        output: Output | None = None,
        history: Path | None = None,
        numbers: Path | None = None,
        notifications: Notifications | None = None,
    ) -> None:
        self.session = session
        state = self.state = session.state
        session.on_change = self.changed
        self.numbers: BufferNumbers | None = None
        if numbers is not None:
            home = session.servers[0]  # a cluster's first node names it
            account = f"{state.me.casefold()}@{home.host}:{home.port}"
            self.numbers = BufferNumbers(numbers, account)
            state.order = self.numbers.load()
        self.notifier = Notifier(notifications or Notifications(), self._write_raw)
        session.on_alert = self.notifier
        session.on_quit = self.exit
        session.on_refused = self.give_back
        session.ask_secret = self.ask_secret
        self._secret: asyncio.Future[str] | None = None  # /password waiting for a line
        self._secret_prompt = ""
        self.pane = MessagePane(
            state,
            on_top=session.fetch_older,
            on_bottom=self._read_soon,
            on_link=lambda link: session.submit(f"/goto {link}"),
            on_end=session.fetch_newer,
        )
        lines: History = InputHistory(history) if history is not None else InMemoryHistory()
        self.input = InputBuffer(
            multiline=False,
            history=lines,
            completer=ChatCompleter(state),
            accept_handler=self._accept,
            on_text_changed=self._composing,
        )
        panel = Condition(self.panel_shown)
        body = VSplit(
            [
                HSplit(
                    [
                        Window(Fitted(lambda width: header(state, width)), height=1),
                        Window(self.pane, wrap_lines=False),
                    ]
                ),
                ConditionalContainer(
                    Window(width=1, char="│", style="class:side.border"), filter=panel
                ),
                ConditionalContainer(
                    Window(
                        FormattedTextControl(lambda: side_panel(state, self.select)),
                        width=SIDE_WIDTH,
                    ),
                    filter=panel,
                ),
            ]
        )
        # The prompt is a window of its own: a long line scrolls or wraps the
        # input window only, so the prompt can never be pushed out of sight.
        secret = Condition(lambda: self._secret is not None)
        prompt = Window(
            FormattedTextControl(
                lambda: f"{self._secret_prompt}: " if self._secret is not None else "> "
            ),
            dont_extend_width=True,
            style="class:prompt",
        )
        line = Window(
            BufferControl(
                self.input,
                input_processors=[ConditionalProcessor(PasswordProcessor(), secret)],
            ),
            wrap_lines=True,
            height=Dimension(min=1, max=INPUT_ROWS),
            dont_extend_height=True,
        )
        root = FloatContainer(
            HSplit(
                [
                    body,
                    VSplit([prompt, line]),
                    Window(
                        FormattedTextControl(lambda: status_bar(state, not self.panel_shown())),
                        height=1,
                        style="class:status",
                    ),
                ]
            ),
            floats=[Float(xcursor=True, ycursor=True, content=CompletionsMenu(max_height=8))],
        )
        self.app: Application[None] = Application(
            layout=Layout(root, focused_element=self.input),
            key_bindings=merge_key_bindings(
                [
                    bindings(
                        state,
                        self.input,
                        lambda: self.pane.height,
                        session.changed,
                        self.exit,
                        self.toggle_panel,
                    ),
                    self._secret_keys(secret),
                ]
            ),
            style=STYLE,
            color_depth=ColorDepth.TRUE_COLOR if images.true_colour() else None,
            full_screen=True,
            mouse_support=True,
            input=input,
            output=output,
        )

    def _accept(self, buffer: InputBuffer) -> bool:
        self.session.sending(buffer.text)
        self.session.submit(buffer.text)
        return False  # clears the line; it is already in the history

    def _composing(self, buffer: InputBuffer) -> None:
        """The line changed: others learn that I type (never in the password prompt)."""
        if self._secret is None:
            self.session.composing(buffer.text)

    def _read_soon(self) -> None:
        """The newest message is on screen: counted read after this redraw, not during it."""
        asyncio.get_running_loop().call_soon(self.session.changed)

    async def ask_secret(self, prompt: str) -> str:
        """Reads one line in secret mode (see the module docstring); what was being
        typed before comes back after."""
        if self._secret is not None:
            raise UsageError("a password is being asked for already")
        kept = self.input.document
        self.input.reset()
        self._secret = asyncio.get_running_loop().create_future()
        self._secret_prompt = prompt
        self.invalidate()
        try:
            return await self._secret
        finally:
            self._secret = None
            self.input.reset(kept)
            self.invalidate()

    def _secret_keys(self, secret: Condition) -> KeyBindings:
        """Enter, Ctrl-C and Escape in secret mode; Up, Down and Tab do nothing there, so
        no history or completion shows in the masked line."""
        kb = KeyBindings()

        def answer(text: str | None) -> None:
            future, self._secret = self._secret, None
            self.input.reset()
            if future is not None and not future.done():
                if text is None:
                    future.set_exception(UsageError("cancelled: the password is unchanged"))
                else:
                    future.set_result(text)

        @kb.add("enter", filter=secret)
        def _(event: KeyPressEvent) -> None:
            answer(self.input.text)

        @kb.add("c-c", filter=secret)
        @kb.add("escape", filter=secret, eager=True)
        def _(event: KeyPressEvent) -> None:
            answer(None)

        @kb.add("up", filter=secret)
        @kb.add("down", filter=secret)
        @kb.add("tab", filter=secret)
        def _(event: KeyPressEvent) -> None:
            pass

        # Ctrl-Y, as WeeChat answers its question about a long paste: the text refused as
        # too long, still on the line as it was given back, goes as several messages.
        @kb.add("c-y", filter=Condition(self._split_offered))
        def _(event: KeyPressEvent) -> None:
            self.input.reset()
            self.session.send_split()

        return kb

    def _split_offered(self) -> bool:
        item = self.session.oversized
        return item is not None and self.input.text == (item.typed or item.text)

    def panel_shown(self) -> bool:
        return panel_shown(self.state, self.app.output.get_size().columns)

    def toggle_panel(self) -> None:
        """Alt-Shift-N: hides the side panel, or shows it, whatever the width."""
        self.state.panel = not self.panel_shown()

    def select(self, buffer: Buffer) -> None:
        """A click on a buffer in the side panel."""
        self.state.switch(buffer)
        self.session.changed()

    def give_back(self, text: str) -> None:
        """Text the server refused: back on the input line if it is free, and in the history
        (once: Enter put the line there already)."""
        kept = self.input.history.get_strings()
        if not kept or kept[-1] != text:
            self.input.history.append_string(text)
        if not self.input.text:
            self.input.document = Document(text, len(text))
        self.invalidate()

    def invalidate(self) -> None:
        self.app.invalidate()

    def changed(self) -> None:
        """After the session changed the state: buffer numbers that moved are kept, and
        the screen is drawn again."""
        if self.state.order_changed:
            self.state.order_changed = False
            if self.numbers is not None:
                self.numbers.save(self.state.order)
        self.invalidate()

    def _write_raw(self, text: str) -> None:
        """Bytes for the terminal itself (the bell, notification escapes), not the screen."""
        self.app.output.write_raw(text)
        self.app.output.flush()

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
            await self.notifier.close()
            network.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await network
            client_log.removeHandler(pane_log)
