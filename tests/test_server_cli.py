"""The installed `nexus-server` binary: flags, clean shutdown, refusing damaged data."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import orjson
import pytest

from nexus import __version__
from nexus.server.store.journal import encode_record
from tests.procs import ServerProcess, server_command
from tests.wire import Peer


def run(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*server_command(), *args], capture_output=True, text=True, timeout=30, cwd=cwd
    )


def test_version_and_help():
    """--version prints the package version; --help lists every flag."""
    assert run("--version").stdout.strip() == f"nexus-server {__version__}"
    help_text = run("--help").stdout
    for flag in ("--host", "--port", "--data", "--log", "--motd", "--fsync", "--rate-limit"):
        assert flag in help_text


def test_python_dash_m_nexus_runs_the_server():
    """`python -m nexus` is the same program."""
    out = subprocess.run(
        [sys.executable, "-m", "nexus", "--version"], capture_output=True, text=True, timeout=30
    )
    assert out.stdout.strip() == f"nexus-server {__version__}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_stops_cleanly_and_saves_everything(tmp_path, sig):
    """SIGTERM or SIGINT: exit status 0, snapshot written, journal folded in, log kept."""
    data = tmp_path / "nexus_data.json"
    with ServerProcess(data, "--motd", "hi team") as server:
        peer = await Peer.connect("127.0.0.1", server.port)
        hello = await peer.frame()
        assert hello == {
            "event": "hello",
            "server": "nexus",
            "version": __version__,
            "protocol": 3,
            "motd": "hi team",
        }
        await peer.ok("register", username="alice", password="password1")
        await peer.ok("say", room="general", text="kept")
        assert server.stop(sig) == 0
        assert await peer.closed()
        await peer.close()
    snapshot = orjson.loads(data.read_bytes())
    assert [u["username"] for u in snapshot["users"]] == ["alice"]
    general = next(r for r in snapshot["rooms"] if r["name"] == "general")
    assert general["messages"][0]["text"] == "kept"
    assert (tmp_path / "nexus_data.json.journal").stat().st_size == 0
    log = (tmp_path / "nexus_data.log").read_text()
    assert "listening on 127.0.0.1" in log and "stopped" in log
    assert "password1" not in log


def test_a_damaged_store_is_refused_with_a_message_not_a_traceback(tmp_path):
    """Damage in the middle of the journal stops start-up, naming the file and offset."""
    data = tmp_path / "nexus_data.json"
    sound = encode_record({"n": 2, "op": "bio", "user": "x", "text": ""})
    (tmp_path / "nexus_data.json.journal").write_bytes(b"00000000 {}\n" + sound)
    out = run("--port", "0", "--data", str(data), "--log", str(tmp_path / "log"))
    assert out.returncode == 2
    assert "refusing to start" in out.stderr and "byte offset 0" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_port_in_use_is_a_clear_error(tmp_path):
    """Starting on a busy port exits non-zero with one line, no traceback."""
    with ServerProcess(tmp_path / "a.json") as first:
        out = run(
            "--host", "127.0.0.1", "--port", str(first.port),
            "--data", str(tmp_path / "b.json"), "--log", str(tmp_path / "b.log"),
        )  # fmt: skip
    assert out.returncode == 2
    assert "cannot start" in out.stderr and "Traceback" not in out.stderr


def test_defaults_write_data_and_log_in_the_working_directory(tmp_path):
    """With no flags the data and log files land in ./ (checked via a refused start)."""
    (tmp_path / "nexus_data.json").write_text("not json")
    out = run("--port", "0", "--host", "127.0.0.1", cwd=tmp_path)
    assert out.returncode == 2
    assert "nexus_data.json" in out.stderr
    assert (tmp_path / "nexus_server.log").exists()


def test_postgresql_without_a_database_or_reaching_none_is_a_clear_error(tmp_path):
    """--store postgresql needs --database; one nothing answers at is refused in
    one line naming it, no traceback."""
    base = ("--port", "0", "--data", str(tmp_path / "d.pg"), "--log", str(tmp_path / "log"))
    out = run(*base, "--store", "postgresql")
    assert out.returncode == 2 and "--database" in out.stderr
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://nexus@127.0.0.1:{port}/none"
    out = run(*base, "--store", "postgresql", "--database", url)
    assert out.returncode == 2 and "cannot reach the database" in out.stderr
    assert "Traceback" not in out.stderr
