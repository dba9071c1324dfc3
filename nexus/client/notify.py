"""Telling the person about a mention or a direct message they are not looking at.

Three ways, each switched in client.toml's `[notifications]`: the terminal
bell; a desktop notification asked of the terminal itself with an escape
sequence (OSC 777, which foot, kitty, WezTerm, Ghostty and urxvt show; OSC 9
for iTerm2 and Windows Terminal), wrapped for tmux's passthrough when inside
tmux; and a command of the person's choosing (`notify-send` style), run
with the notification's text as its last argument, never through a shell.
The escape sequences carry remote text, so every control character is
taken out of it first and it is cut to a sane length.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable, Mapping

from nexus.client.config import Notifications
from nexus.client.state import Alert

log = logging.getLogger("nexus.client.notify")  # shown in the message pane

TEXT_MAX = 200  # characters of a message in a notification: a glance, not the message
COMMAND_TIMEOUT = 10.0  # seconds a notification command may run before it is killed
OSC9_TERMINALS = {"iTerm.app", "vscode"}  # TERM_PROGRAM values that speak OSC 9, not 777
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f]+")  # C0, DEL and C1: never into an escape sequence


def _safe(text: str, limit: int = TEXT_MAX) -> str:
    text = _UNSAFE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def desktop_sequence(title: str, body: str, environ: Mapping[str, str]) -> str:
    """The escape sequence that asks this terminal for a desktop notification."""
    title, body = _safe(title, 60).replace(";", ","), _safe(body)
    if environ.get("TERM_PROGRAM") in OSC9_TERMINALS:
        sequence = f"\x1b]9;{title}: {body}\x07"
    else:
        sequence = f"\x1b]777;notify;{title};{body}\x1b\\"
    if environ.get("TMUX"):  # tmux passes it on (with allow-passthrough on), ESCs doubled
        sequence = "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return sequence


class Notifier:
    """Rings, notifies and runs the command as `settings` say, for each alert.

    `write` puts raw text on the terminal. The bell rings for every alert, as
    it always has; the desktop notification and the command are for alerts in
    a buffer that is not on screen.
    """

    def __init__(
        self,
        settings: Notifications,
        write: Callable[[str], None],
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.write = write
        self.environ = os.environ if environ is None else environ
        self._running: set[asyncio.Task[None]] = set()

    def __call__(self, alert: Alert) -> None:
        settings = self.settings
        if settings.bell:
            self.write("\a")
        if alert.seen:
            return
        title = f"{alert.sender} in {alert.where}" if alert.where.startswith("#") else alert.sender
        if settings.desktop:
            self.write(desktop_sequence(f"Nexus: {title}", alert.text, self.environ))
        if settings.command:
            task = asyncio.get_running_loop().create_task(
                self._run([*settings.command, f"{_safe(title, 60)}: {_safe(alert.text)}"])
            )
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, argv: list[str]) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError as exc:
            log.warning("notification command %s failed: %s", argv[0], exc.strerror or exc)
            return
        try:
            await asyncio.wait_for(proc.wait(), COMMAND_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            log.warning("notification command %s took over %.0f s", argv[0], COMMAND_TIMEOUT)

    async def close(self) -> None:
        """Waits for the commands still running (they are short; each has a timeout)."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
