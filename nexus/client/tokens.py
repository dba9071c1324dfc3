"""Login tokens saved by `nexus-chat login`, so scripts log in without a password.

One JSON file, `$XDG_CONFIG_HOME/nexus/tokens.json`, mode 0600 in a 0700
directory: `{"host:port": {"username": "token"}}`, user names lower-case.
A token is as good as the password until 30 days pass unused (the server's
rule), so the
file is written whole to a temporary file and renamed, never left readable
by others or half written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from nexus.client.config import config_dir, ensure_private_dir
from nexus.client.tls import host_key

FILE_MODE = 0o600


class TokenStore:
    """The saved tokens, read afresh on each look-up (another process may add some)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / "tokens.json"

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # unreadable: logging in again writes a sound one
        return data if isinstance(data, dict) else {}

    def get(self, host: str, port: int, user: str) -> str | None:
        token = self._read().get(host_key(host, port), {}).get(user.lower())
        return token if isinstance(token, str) else None

    def put(self, host: str, port: int, user: str, token: str | None) -> None:
        """Saves `token` for the user on that server; None forgets it."""
        data = self._read()
        server = data.setdefault(host_key(host, port), {})
        if token is None:
            server.pop(user.lower(), None)
        else:
            server[user.lower()] = token
        ensure_private_dir(self.path.parent)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(fd, FILE_MODE)  # a leftover temporary file keeps its old mode
            json.dump({k: v for k, v in data.items() if v}, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, self.path)
