"""End to end with the real binaries: nexus-server with --irc-port, irssi in tmux and
weechat-headless log in with SASL, join #general, and exchange a channel message and
a DM with a native client both ways. Skipped where the clients are not installed."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import select
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.client.tmux import Tmux

pytestmark = pytest.mark.long

PASSWORD = "e2e-irc-password"
SERVER = shutil.which("nexus-server")
TIMEOUT = 20.0


class Native:
    """A blocking native client: enough to register, say, DM and wait for events."""

    def __init__(self, port: int, name: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.file = self.sock.makefile("rb")
        self.events: list[dict[str, Any]] = []
        self.ids = 0
        self.request("register", username=name, password=PASSWORD)

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        self.ids += 1
        self.sock.sendall(json.dumps({"cmd": cmd, "id": self.ids, **args}).encode() + b"\n")
        while True:
            frame = json.loads(self.file.readline())
            if frame.get("id") == self.ids:
                assert frame["ok"], frame
                return frame
            self.events.append(frame)

    def event(self, name: str, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while True:
            for event in self.events:
                if event.get("event") == name and all(event.get(k) == v for k, v in match.items()):
                    self.events.remove(event)
                    return event
            if time.monotonic() > deadline:
                pytest.fail(f"no {name} event {match}; got {self.events[-5:]}")
            ready, _, _ = select.select([self.sock], [], [], 0.2)
            if ready:
                line = self.file.readline()
                if line:
                    self.events.append(json.loads(line))

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def ports(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A nexus-server process with IRC on: (native port, IRC port)."""
    with nexus_server(tmp_path) as found:
        yield found


@pytest.fixture
def guest_ports(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """The same with guests allowed (--irc-guests)."""
    with nexus_server(tmp_path, "--irc-guests") as found:
        yield found


@pytest.fixture
def web_ports(tmp_path: Path) -> Iterator[tuple[int, int, int]]:
    """The same with the web port on: (native port, IRC port, web port)."""
    with nexus_server(tmp_path, "--web-port", "0") as found:
        yield found


@contextlib.contextmanager
def nexus_server(tmp_path: Path, *flags: str) -> Iterator[Any]:
    if SERVER is None:
        pytest.skip("nexus-server is not installed (pip install -e .)")
    proc = subprocess.Popen(
        [SERVER, "--host", "127.0.0.1", "--port", "0", "--irc-port", "0",
         "--data", str(tmp_path / "data.json"), "--log", str(tmp_path / "server.log"),
         "--rate-limit", "off", "--motd", "real clients welcome", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        output = b""
        deadline = time.monotonic() + 15
        waited = b"web client on" if "--web-port" in flags else b"listening on"
        while waited not in output:
            ready, _, _ = select.select([proc.stdout], [], [], max(0, deadline - time.monotonic()))
            if not ready or proc.poll() is not None:
                pytest.fail(f"nexus-server did not start: {output!r}")
            output += os.read(proc.stdout.fileno(), 4096)
        found = re.search(r"listening on \S+:(\d+) \(tcp\), IRC on \S+:(\d+)", output.decode())
        assert found, output
        ports = int(found.group(1)), int(found.group(2))
        web = re.search(r"web client on http://\S+:(\d+)/", output.decode())
        yield (*ports, int(web.group(1))) if web else ports
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


IRSSI_CONFIG = """\
servers = (
  {{ address = "127.0.0.1"; chatnet = "nexus"; port = "{port}"; use_tls = "no";
    autoconnect = "yes"; }}
);
chatnets = {{
  nexus = {{ type = "IRC"; nick = "{nick}"; sasl_mechanism = "PLAIN";
    sasl_username = "{nick}"; sasl_password = "{password}"; }};
}};
settings = {{
  core = {{ nick = "{nick}"; user_name = "{nick}"; real_name = "{nick}"; }};
  "fe-common/core" = {{ autocreate_query_level = "MSGS"; }};
}};
"""


@contextlib.contextmanager
def irssi(tmp_path: Path, config: str) -> Iterator[Tmux]:
    """irssi in tmux with `config` as its whole configuration, killed after;
    the test is skipped where irssi or tmux is not installed."""
    binary = shutil.which("irssi")
    if binary is None or shutil.which("tmux") is None:
        pytest.skip("irssi or tmux is not installed (apt-get install irssi tmux)")
    home = tmp_path / "irssi"
    home.mkdir()
    (home / "config").write_text(config)
    tmux = Tmux(tmp_path)
    try:
        tmux.start("irssi", binary, f"--home={home}")
        yield tmux
    finally:
        tmux.kill()


def test_irssi_logs_in_with_sasl_and_talks_both_ways(
    ports: tuple[int, int], tmp_path: Path
) -> None:
    """irssi (in tmux) logs in with SASL, joins #general, and exchanges a channel
    message and a DM with a native client both ways."""
    native_port, irc_port = ports
    Native(native_port, "ana").close()  # the account irssi logs in with
    config = IRSSI_CONFIG.format(port=irc_port, nick="ana", password=PASSWORD)
    with contextlib.closing(Native(native_port, "bob")) as bob, irssi(tmp_path, config) as tmux:
        tmux.wait_for("irssi", "real clients welcome", TIMEOUT)
        bob.event("presence", user="ana", online=True)
        tmux.keys("irssi", "/join #general")
        tmux.wait_for("irssi", "#general", TIMEOUT)
        tmux.keys("irssi", "hello from irssi")
        assert bob.event("message", room="general")["text"] == "hello from irssi"
        bob.request("say", room="general", text="hi irssi, bob here")
        tmux.wait_for("irssi", "hi irssi, bob here", TIMEOUT)
        tmux.keys("irssi", "/msg bob a dm from irssi")
        assert bob.event("dm")["text"] == "a dm from irssi"
        bob.request("dm", to="ana", text="a dm back to irssi")
        tmux.keys("irssi", "/query bob")
        tmux.wait_for("irssi", "a dm back to irssi", TIMEOUT)
        tmux.keys("irssi", "/quit")


def test_irssi_sees_a_shared_file_as_its_link(
    web_ports: tuple[int, int, int], tmp_path: Path
) -> None:
    """A native user uploads a file and shares it in #general: irssi shows the
    line with the file's link, which downloads with the irssi user's password."""
    native_port, irc_port, web_port = web_ports
    Native(native_port, "ana").close()
    base = f"http://127.0.0.1:{web_port}"
    upload = urllib.request.Request(
        base + "/files",
        data=b"minutes of the meeting\n",
        headers={**basic("bob"), "Content-Disposition": 'attachment; filename="minutes.txt"'},
        method="POST",
    )
    config = IRSSI_CONFIG.format(port=irc_port, nick="ana", password=PASSWORD)
    with contextlib.closing(Native(native_port, "bob")) as bob, irssi(tmp_path, config) as tmux:
        with urllib.request.urlopen(upload, timeout=TIMEOUT) as answer:
            up = json.load(answer)
        tmux.wait_for("irssi", "real clients welcome", TIMEOUT)
        tmux.keys("irssi", "/join #general")
        tmux.wait_for("irssi", "#general", TIMEOUT)
        bob.request("say", room="general", text="the minutes", files=[up["id"]])
        link = f"{base}/files/{up['id']}/minutes.txt"
        tmux.wait_for("irssi", link, TIMEOUT)
        with urllib.request.urlopen(
            urllib.request.Request(link, headers=basic("ana")), timeout=TIMEOUT
        ) as answer:
            assert answer.read() == b"minutes of the meeting\n"
        tmux.keys("irssi", "/quit")


def test_irssi_reads_formatting_threads_and_pins_as_lines(
    ports: tuple[int, int], tmp_path: Path
) -> None:
    """What protocol 3 adds reads well in irssi: bold and italic as IRC's
    codes, strike and code as typed (irssi draws IRC's codes for them as
    reverse-video letters), a thread reply with a short quote of its root
    in words, a pin as a notice naming the message."""
    native_port, irc_port = ports
    Native(native_port, "ana").close()
    config = IRSSI_CONFIG.format(port=irc_port, nick="ana", password=PASSWORD)
    with contextlib.closing(Native(native_port, "bob")) as bob, irssi(tmp_path, config) as tmux:
        bob.request("create", room="den")
        tmux.wait_for("irssi", "real clients welcome", TIMEOUT)
        tmux.keys("irssi", "/join #den")
        tmux.wait_for("irssi", "#den", TIMEOUT)
        bob.event("joined", room="den", user="ana")
        root = bob.request("say", room="den", text="the **deploy** of `v2` is _done_ ~~late~~")
        tmux.wait_for("irssi", "the deploy of `v2` is done ~~late~~", TIMEOUT)
        bob.request("say", room="den", text="and the logs are clean", thread=root["seq"])
        quoted = '(thread: bob "the deploy of v2 is done late") and the logs are clean'
        tmux.wait_for("irssi", quoted, TIMEOUT)
        bob.request("pin", room="den", seq=root["seq"])
        tmux.wait_for("irssi", f"bob pinned #den/{root['seq']}", TIMEOUT)
        screen = tmux.screen("irssi")
        assert "**" not in screen and "Qv2Q" not in screen and "^late^" not in screen, screen
        tmux.keys("irssi", "/quit")


def basic(name: str) -> dict[str, str]:
    """HTTP Basic credentials of `name`, as a browser or an IRC client sends them."""
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{PASSWORD}".encode()).decode()}


IRSSI_GUEST_CONFIG = """\
servers = (
  {{ address = "127.0.0.1"; chatnet = "nexus"; port = "{port}"; use_tls = "no";
    autoconnect = "yes"; }}
);
chatnets = {{ nexus = {{ type = "IRC"; nick = "{nick}"; }}; }};
settings = {{ core = {{ nick = "{nick}"; user_name = "{nick}"; real_name = "{nick}"; }}; }};
"""


def test_irssi_without_an_account_comes_in_as_a_guest(
    guest_ports: tuple[int, int], tmp_path: Path
) -> None:
    """irssi with no SASL or password on a --irc-guests server: its nick is an
    account's, so it is told (433) and takes another by itself, then joins
    #general as a guest and talks with a native client both ways."""
    native_port, irc_port = guest_ports
    config = IRSSI_GUEST_CONFIG.format(port=irc_port, nick="bob")
    with contextlib.closing(Native(native_port, "bob")) as bob, irssi(tmp_path, config) as tmux:
        tmux.wait_for("irssi", "You are a guest", TIMEOUT)
        tmux.keys("irssi", "/join #general")
        tmux.wait_for("irssi", "#general", TIMEOUT)
        tmux.keys("irssi", "hello from a guest")
        said = bob.event("message", room="general")
        assert said["text"] == "hello from a guest" and said["guest"] is True
        assert said["from"].startswith("bob") and said["from"] != "bob"
        bob.request("say", room="general", text="welcome, guest")
        tmux.wait_for("irssi", "welcome, guest", TIMEOUT)
        tmux.keys("irssi", "/quit")
        assert bob.event("presence", user=said["from"])["online"] is False


def test_weechat_logs_in_with_sasl_and_talks_both_ways(
    ports: tuple[int, int], tmp_path: Path
) -> None:
    """weechat-headless logs in with SASL, joins #general, and exchanges a channel
    message and a DM with a native client both ways (driven through its FIFO)."""
    weechat = shutil.which("weechat-headless")
    if weechat is None:
        pytest.skip("weechat-headless is not installed (apt-get install weechat-headless)")
    native_port, irc_port = ports
    Native(native_port, "wee").close()
    bob = Native(native_port, "bob")
    home = tmp_path / "weechat"
    home.mkdir()
    setup = ";".join(
        [
            "/set logger.file.flush_delay 0",
            "/set fifo.file.enabled on",
            f"/server add nexus 127.0.0.1/{irc_port} -notls -nicks=wee -sasl_mechanism=plain"
            f" -sasl_username=wee -sasl_password={PASSWORD}",
            "/connect nexus",
        ]
    )
    proc = subprocess.Popen(
        [weechat, "--dir", str(home), "--no-script", "--run-command", setup],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        bob.event("presence", user="wee", online=True)
        logs = home / "logs"
        channel_log = logs / "irc.nexus.#general.weechatlog"
        wait_file(channel_log)
        fifo = next(home.glob("weechat_fifo*"))

        def command(text: str) -> None:
            with fifo.open("w") as pipe:
                pipe.write(f"irc.server.nexus *{text}\n")

        command("/msg #general hello from weechat")
        assert bob.event("message", room="general")["text"] == "hello from weechat"
        bob.request("say", room="general", text="hi weechat, bob here")
        wait_file(channel_log, "hi weechat, bob here")
        command("/msg bob a dm from weechat")
        assert bob.event("dm")["text"] == "a dm from weechat"
        bob.request("dm", to="wee", text="a dm back to weechat")
        wait_file(logs / "irc.nexus.bob.weechatlog", "a dm back to weechat")
        command("/quit")
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        bob.close()


def wait_file(path: Path, text: str = "") -> None:
    """Waits until `path` exists and holds `text`."""
    deadline = time.monotonic() + TIMEOUT
    while not (path.exists() and text in path.read_text(errors="replace")):
        if time.monotonic() > deadline:
            found = sorted(p.name for p in path.parent.glob("*")) if path.parent.exists() else []
            pytest.fail(f"{text!r} never reached {path} (logs: {found})")
        time.sleep(0.1)
