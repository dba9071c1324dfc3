"""Password hashing: argon2id in PHC strings, computed off the event loop.

OWASP's argon2id parameters (m=19 MiB, t=2, p=1) cost ~30 ms a hash here,
against ~0.5 s for scrypt at comparable strength, so logins stay cheap for
the server while brute force stays expensive for an attacker.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# A login token stands in for the password on reconnects, so a restart's
# reconnect storm costs a hash lookup per user, not an argon2 run.
TOKEN_LIFETIME = 30 * 24 * 3600.0

OWASP = {"time_cost": 2, "memory_cost": 19_456, "parallelism": 1}
# Cheap parameters for test suites only: never the server's default.
FAST = {"time_cost": 1, "memory_cost": 64, "parallelism": 1}


class PasswordHashing:
    """Hashes and verifies passwords in a small thread pool.

    Unknown users are verified against a dummy hash so that they cost the
    same as a wrong password; argon2's own comparison is constant-time.
    """

    def __init__(self, params: dict[str, int] | None = None, workers: int = 2) -> None:
        cost = params or OWASP
        self._hasher = PasswordHasher(
            time_cost=cost["time_cost"],
            memory_cost=cost["memory_cost"],
            parallelism=cost["parallelism"],
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nexus-hash")
        self._dummy = self._hasher.hash("nexus: no such user")

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """True when `password` matches `stored`; None (no such user) never matches."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, self._check, stored or self._dummy, password, stored is not None
        )

    def _check(self, stored: str, password: str, real: bool) -> bool:
        try:
            return self._hasher.verify(stored, password) and real
        except (VerificationError, InvalidHashError):
            return False

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def new_token() -> tuple[str, str]:
    """A fresh login token and the digest the server keeps of it."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    """SHA-256 is enough: a token has 256 random bits, nothing to brute-force."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_valid(tokens: dict[str, float], token: str, now: float | None = None) -> bool:
    issued = tokens.get(token_digest(token))
    return issued is not None and (now or time.time()) - issued < TOKEN_LIFETIME
