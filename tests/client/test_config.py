"""The client's settings: flags > NEXUS_CHAT_* > client.toml > defaults, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexus.client.config import ClientConfig, ConfigError, Notifications, resolve
from tests.client.test_script import at, chat, environment

FULL = """
server = "chat.example.org"
port = 7000
user = "ana"
tls = true
timestamp_format = "%H:%M:%S"
highlight = ["ana", "deploy"]
typing = false

[notifications]
bell = false
desktop = true
command = ["notify-send", "Nexus"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "client.toml"
    path.write_text(text)
    return path


def test_every_key_of_the_file_is_read(tmp_path):
    """All documented keys load into the config object with their types."""
    config = resolve({}, {}, write(tmp_path, FULL))
    assert (config.server, config.port, config.user, config.tls) == (
        "chat.example.org", 7000, "ana", True,
    )  # fmt: skip
    assert config.timestamp_format == "%H:%M:%S"
    assert config.highlight == ("ana", "deploy")
    assert config.typing is False
    assert config.notifications == Notifications(False, True, ("notify-send", "Nexus"))


def test_flags_beat_environment_beat_file_beat_defaults(tmp_path):
    """Each layer overrides the one below it, key by key."""
    path = write(tmp_path, 'server = "file-host"\nport = 7000\nuser = "file-user"\n')
    env = {"NEXUS_CHAT_PORT": "7001", "NEXUS_CHAT_USER": "env-user"}
    config = resolve({"user": "flag-user", "server": None}, env, path)
    assert (config.server, config.port, config.user) == ("file-host", 7001, "flag-user")
    assert resolve({}, {}, tmp_path / "absent.toml") == ClientConfig()


def test_no_tls_flag_turns_off_tls_from_the_file(tmp_path):
    """--no-tls beats `tls = true` and a CA bundle in the file."""
    path = write(tmp_path, 'tls = true\ntls_ca = "/etc/ca.pem"\n')
    config = resolve({"tls": False}, {}, path)
    assert (config.tls, config.tls_ca, config.tls_settings()) == (False, None, None)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('sever = "x"\n', "'sever'"),
        ('port = "http"\n', "'port'"),
        ("port = 70000\n", "'port'"),
        ("tls = 3\n", "'tls'"),
        ('highlight = "ana"\n', "'highlight'"),
        ('timestamp_format = ""\n', "'timestamp_format'"),
        ("[notifications]\nbeep = true\n", "'beep'"),
        ("[notifications]\ncommand = [1]\n", "'notifications.command'"),
        ("server = \n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_naming_the_key(tmp_path, text, named):
    """Unknown keys, wrong types and broken TOML: an error naming the file and key."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        resolve({}, {}, path)
    assert named in str(caught.value) and str(path) in str(caught.value)


def test_a_bad_environment_variable_is_named(tmp_path):
    """NEXUS_CHAT_PORT=abc is refused naming the variable."""
    with pytest.raises(ConfigError, match=r"\$NEXUS_CHAT_PORT"):
        resolve({}, {"NEXUS_CHAT_PORT": "abc"}, tmp_path / "absent.toml")


async def test_send_uses_server_port_and_user_from_client_toml(server, tmp_path):
    """With client.toml naming the server and user, `send TEXT` needs nothing else."""
    await server.user("ana")
    watcher = await server.user("bob")
    config_dir = tmp_path / "config" / "nexus"
    config_dir.mkdir(parents=True)
    host, port = at(server)
    (config_dir / "client.toml").write_text(f'server = "{host}"\nport = {port}\nuser = "ana"\n')
    code, _, err = await chat("send", "--room", "general", "configured")
    assert (code, err) == (0, "")
    assert (await watcher.event("message"))["text"] == "configured"


async def test_a_bad_client_toml_exits_2_naming_the_key_in_every_mode(tmp_path):
    """The full-screen client and the script modes refuse a bad file with exit 2."""
    config_dir = tmp_path / "config" / "nexus"
    config_dir.mkdir(parents=True)
    (config_dir / "client.toml").write_text("port = 0\n")
    for args in (["ping"], ["send", "--user", "a", "--room", "r", "x"], ["--user", "a"]):
        code, _, err = await chat(*args, env=environment())
        assert code == 2 and "'port'" in err and "client.toml" in err, (args, err)


async def test_help_shows_where_settings_come_from():
    """`nexus-chat --help` states the precedence and names the file."""
    code, out, _ = await chat("--help")
    flat = " ".join(out.split())
    assert code == 0 and "flags, then NEXUS_CHAT_SERVER" in flat and "client.toml" in flat
