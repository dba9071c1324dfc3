"""Flood control and login throttling: who may act how often, decided in one place.

Sans I/O: the clock is read here, nothing is sent. Handlers ask before they
act and report failed logins; a refusal is a `rate_limited` error carrying
`retry_after`.
"""

from __future__ import annotations

import time

from nexus.errors import NexusError
from nexus.server.config import ServerConfig
from nexus.server.ratelimit import Limiter

LOOKUPS = 30  # names an address may look up at once before the rate of one a second


class Policy:
    """The server's rate rules.

    - Flood control: `say`, `dm` and every change whose events reach many
      sessions share one budget per user (burst, then a rate).
    - Logins: only failures count, per address and per account, so a user
      with many terminals is never locked out by logging in; once either
      budget is spent, even a right password is refused until it refills.
    - Registrations: each attempt may cost a password hash and makes an
      account for good, so an address may make `registrations_per_hour`
      of them (a new connection does not start a new budget).
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.flood = Limiter(config.message_burst, config.message_rate)
        per_minute = config.login_attempts_per_minute
        self.failures_by_address = Limiter(per_minute, per_minute / 60)
        self.failures_by_account = Limiter(per_minute, per_minute / 60)
        per_hour = config.registrations_per_hour
        self.registrations = Limiter(per_hour, per_hour / 3600) if per_hour else None
        # Names looked up before registering: a person types a few, a script
        # listing accounts many (LOOKUPS at once, then one a second).
        self.lookups = Limiter(LOOKUPS, 1.0)

    def check_flood(self, key: str) -> None:
        if not self.config.rate_limit:
            return
        wait = self.flood.take(key, time.monotonic())
        if wait:
            raise NexusError("rate_limited", "slow down", retry_after=round(wait, 3))

    def check_login(self, ip: str, account: str | None) -> None:
        """Refuses a login from `ip` (to `account`, if it could be one) while
        either has used up its budget of failures."""
        now = time.monotonic()
        wait = self.failures_by_address.wait(ip, now)
        if account is not None:
            wait = max(wait, self.failures_by_account.wait(account, now))
        if wait:
            raise NexusError("rate_limited", "too many login attempts", retry_after=round(wait, 3))

    def login_failed(self, ip: str, account: str | None) -> None:
        now = time.monotonic()
        self.failures_by_address.take(ip, now)
        if account is not None:
            self.failures_by_account.take(account, now)

    def check_password(self, password: str) -> None:
        """Refuses a new password shorter than --password-min-length."""
        shortest = self.config.password_min_length
        if len(password) < shortest:
            raise NexusError("weak_password", f"a password needs at least {shortest} characters")

    def check_lookup(self, ip: str) -> None:
        """Spends one of `ip`'s name look-ups (`available`), or refuses."""
        wait = self.lookups.take(ip, time.monotonic())
        if wait:
            raise NexusError("rate_limited", "too many names looked up", retry_after=round(wait, 3))

    def check_registration(self, ip: str) -> None:
        """Spends one of `ip`'s registrations, or refuses when it has none left."""
        if self.registrations is None:
            return
        wait = self.registrations.take(ip, time.monotonic())
        if wait:
            raise NexusError(
                "rate_limited", "too many registrations from your address", retry_after=round(wait)
            )
