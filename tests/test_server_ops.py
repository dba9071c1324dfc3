"""Running nexus-server as a service: the config file, logs, file modes, the systemd unit."""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from nexus.server.config import ServerConfig, load
from tests.procs import ServerProcess, server_command
from tests.wire import Peer

ROOT = Path(__file__).resolve().parent.parent


def test_settings_come_from_flags_then_environment_then_file(tmp_path):
    """Each layer overrides the one below it; keys are named like the flags."""
    config = tmp_path / "server.toml"
    config.write_text(
        'port = 7000\nmotd = "from the file"\nmax-outbound = 4096\nrate_limit = false\n'
        "message-rate = 3\n"
    )
    loaded = load(config, {"NEXUS_PORT": "7001"}, port=7002, motd=None)
    assert (loaded.port, loaded.motd, loaded.max_outbound) == (7002, "from the file", 4096)
    assert (loaded.rate_limit, loaded.message_rate) == (False, 3.0)
    assert load(config, {"NEXUS_PORT": "7001"}).port == 7001
    assert load(None, {"NEXUS_CONFIG": str(config)}).port == 7000
    assert load(None, {}) == ServerConfig()


def test_admins_are_named_by_repeated_flags_a_comma_list_or_a_toml_list(tmp_path):
    """--admin (repeatable, here as the tuple the parser collects), NEXUS_ADMIN=a,b
    and `admin = [...]` in the file each give the list of names; flags win."""
    config = tmp_path / "server.toml"
    config.write_text('admin = ["ana", "bob"]\n')
    assert load(config, {}).admin == ("ana", "bob")
    assert load(config, {"NEXUS_ADMIN": "carol, dan,"}).admin == ("carol", "dan")
    assert load(config, {"NEXUS_ADMIN": "carol"}, admin=("eve",)).admin == ("eve",)
    assert load(None, {}).admin == ()
    config.write_text('admin = "ana,bob"\n')
    assert load(config, {}).admin == ("ana", "bob")
    config.write_text("admin = [1]\n")
    with pytest.raises(ValueError, match="'admin'"):
        load(config, {})


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("prot = 1\n", "'prot'"),
        ('port = "x"\n', "'port'"),
        ("fsync = 2\n", "'fsync'"),
        ("motd = [1]\n", "'motd'"),
        ("port = \n", "not valid TOML"),
    ],
)
def test_a_bad_config_file_exits_2_naming_the_key(tmp_path, text, named):
    """Unknown keys, wrong types, broken TOML: exit 2, the file and key named, no traceback."""
    config = tmp_path / "server.toml"
    config.write_text(text)
    out = subprocess.run(
        [*server_command(), "--config", str(config), "--data", str(tmp_path / "d.json")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 2
    assert named in out.stderr and str(config) in out.stderr and "Traceback" not in out.stderr


def test_help_shows_the_precedence():
    """--help says flags > NEXUS_* > --config file > defaults."""
    out = subprocess.run([*server_command(), "--help"], capture_output=True, text=True).stdout
    flat = " ".join(out.split())
    assert "--config FILE" in out and "then NEXUS_<NAME> variables" in flat
    assert "then the TOML file given with --config" in flat


async def test_a_config_file_sets_what_the_server_says(tmp_path):
    """The real server takes its motd from --config."""
    config = tmp_path / "server.toml"
    config.write_text('motd = "configured motd"\n')
    with ServerProcess(tmp_path / "d.json", "--config", str(config)) as running:
        peer = await Peer.connect("127.0.0.1", running.port)
        assert (await peer.frame())["motd"] == "configured motd"
        await peer.close()


def test_the_data_directory_is_created_private(tmp_path):
    """A missing data directory is made 0700 (whatever the umask); data files are 0600."""
    data = tmp_path / "state" / "nexus" / "nexus_data.json"
    old = os.umask(0o022)
    try:
        with ServerProcess(data) as running:
            assert running.stop() == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(data.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(data.stat().st_mode) == 0o600


def test_log_dash_writes_to_standard_error(tmp_path):
    """--log - sends the log to stderr (for journald and containers), no file."""
    data = tmp_path / "nexus_data.json"
    server = ServerProcess(data, "--log", "-")
    with server:
        assert server.stop() == 0
        err = server.proc.stderr.read()
    assert "INFO nexus.server: listening on 127.0.0.1" in err and "stopped" in err
    assert not (tmp_path / "-").exists() and not data.with_suffix(".log").exists()


def test_sighup_reopens_the_log_for_logrotate(tmp_path):
    """After the log is moved away, SIGHUP makes the server write a new one."""
    data = tmp_path / "nexus_data.json"
    log = data.with_suffix(".log")
    with ServerProcess(data) as server:
        log.rename(tmp_path / "rotated.log")
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not (log.exists() and "log reopened" in log.read_text()):
            assert time.monotonic() < deadline, "no new log after SIGHUP"
            time.sleep(0.05)
        assert server.proc.poll() is None  # SIGHUP does not stop it
        assert server.stop() == 0
    assert "listening on" in (tmp_path / "rotated.log").read_text()
    assert "stopped" in log.read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    """contrib/nexus-server.service is accepted by `systemd-analyze verify`, warnings included."""
    unit = (ROOT / "contrib" / "nexus-server.service").read_text()
    exe = shutil.which("nexus-server")
    if exe is None:
        pytest.skip("needs the nexus-server program installed")
    # verify checks that the program exists: point the unit at this machine's.
    unit = unit.replace("/opt/nexus/bin/nexus-server", exe)
    path = tmp_path / "nexus-server.service"
    path.write_text(unit)
    out = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    ours = [line for line in (out.stdout + out.stderr).splitlines() if "nexus-server" in line]
    assert out.returncode == 0 and not ours, out.stdout + out.stderr
    # And its sandbox is tight: systemd's exposure score (0 best, 10 worst) under 2.
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if "--offline" not in security.stderr:  # systemd 250 and later
        assert security.returncode == 0, security.stdout + security.stderr
        assert re.search(
            r"Overall exposure level for nexus-server.service: [01]\.\d", security.stdout
        )
