"""The README's set-up, verbatim, in a fresh copy of the project with Debian's own Python.

Debian's `/usr/bin/python3` refuses `pip install` outside a virtual
environment (PEP 668), so this is the path a new user on Debian or Ubuntu
takes. Slow by nature (a venv and an install, ~20 s with pip's cache warm),
so it does it once: the server from `make run` must serve a message sent
with the venv's `nexus-chat send`.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEBIAN_PYTHON = Path("/usr/bin/python3")


def _venv_available() -> bool:
    if not DEBIAN_PYTHON.exists() or shutil.which("make") is None:
        return False
    probe = subprocess.run(
        [str(DEBIAN_PYTHON), "-c", "import ensurepip, venv"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


pytestmark = [
    pytest.mark.install,
    pytest.mark.long,
    pytest.mark.skipif(
        not _venv_available() or not (ROOT / ".git").exists(),
        reason="needs a git checkout, make, and /usr/bin/python3 with venv (python3-venv)",
    ),
]


def fresh_copy(dest: Path) -> Path:
    """The files a clone of this tree would have (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def debian_env(home: Path) -> dict[str, str]:
    """The environment of a shell on Debian: its python3 first, nothing of ours on the path."""
    ours = ("PYTHONPATH", "VIRTUAL_ENV", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")  # `make test`'s
    env = {k: v for k, v in os.environ.items() if k not in ours}
    env["PATH"] = "/usr/bin:/bin:/usr/sbin:/sbin"
    env["XDG_CONFIG_HOME"] = str(home / "config")
    return env


def read_until(proc: subprocess.Popen[bytes], pattern: re.Pattern[bytes], timeout: float) -> bytes:
    """Output of `proc` up to the first line matching `pattern`."""
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while not pattern.search(seen):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise AssertionError(f"no {pattern.pattern!r} in output: {seen.decode()}")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            seen += os.read(proc.stdout.fileno(), 4096)
    return seen


def test_readme_setup_runs_a_server_and_sends_with_a_pep668_python(tmp_path):
    """`make run` on Debian's python3 in a fresh copy: a venv, a server, a sent message."""
    project = fresh_copy(tmp_path / "nexus-chat")
    env = debian_env(tmp_path)
    bin_dir = project / ".venv" / "bin"
    started = time.monotonic()
    server = subprocess.Popen(
        ["make", "run", "HOST=127.0.0.1", "PORT=0"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out = read_until(server, re.compile(rb"listening on 127\.0\.0\.1:(\d+)"), 600)
        print(f"venv, install and start: {time.monotonic() - started:.1f} s")
        port = re.search(rb"listening on 127\.0\.0\.1:(\d+)", out).group(1).decode()
        assert b".venv/bin/nexus-chat" in out  # it says how to start a client
        assert (bin_dir / "python").resolve().parent in (Path("/usr/bin"), DEBIAN_PYTHON.parent)
        chat = [str(bin_dir / "nexus-chat")]
        env["NEXUS_PASSWORD"] = "correct horse"
        login = subprocess.run(
            [*chat, "login", "127.0.0.1", port, "--user", "ana", "--register"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert login.returncode == 0, login.stderr
        sent = subprocess.run(
            [*chat, "send", "127.0.0.1", port, "--user", "ana", "--room", "general"],
            env=env,
            input="hello from a fresh install\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        server.stdout.close()
    export = subprocess.run(
        [str(bin_dir / "nexus-server"), "export"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert [json.loads(line)["text"] for line in export.stdout.splitlines()] == [
        "hello from a fresh install"
    ]
