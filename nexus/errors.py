"""Errors that travel on the wire: each carries the protocol's stable code."""

from __future__ import annotations

from typing import Any

#: Every code the protocol defines (docs/protocol.md, "Error codes").
ERROR_CODES = frozenset(
    {
        "bad_frame",
        "frame_too_large",
        "unknown_command",
        "bad_args",
        "auth_required",
        "auth_failed",
        "already_authenticated",
        "username_taken",
        "invalid_username",
        "weak_password",
        "invalid_room",
        "no_such_room",
        "room_exists",
        "protected_room",
        "not_owner",
        "not_member",
        "no_such_user",
        "too_long",
        "empty",
        "rate_limited",
        "internal",
        # protocol 2
        "no_such_message",
        "not_allowed",
        "limit_reached",
        "banned",
        "muted",
        "invite_only",
        "suspended",
        # guests (docs/protocol.md, "Guests")
        "not_for_guests",
        "nick_in_use",
        # files (docs/protocol.md, "Files"), over HTTP
        "no_such_file",
        "too_large",
        "quota_exceeded",
    }
)


class NexusError(Exception):
    """A refusal with a wire code, a human message and optional extra reply fields."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        assert code in ERROR_CODES, code
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    def to_wire(self) -> dict[str, Any]:
        """The reply's `error` object."""
        return {"code": self.code, "message": self.message, **self.extra}

    def __repr__(self) -> str:
        return f"NexusError({self.code!r}, {self.message!r})"
