"""What the IRC side announces and answers with: names, limits, capabilities,
ISUPPORT tokens, and which numeric each of the server's refusals becomes."""

from __future__ import annotations

from nexus.protocol import PAGE_MAX
from nexus.server.irc.directory import USERLEN

SERVER = "nexus"  # the server's name in every line it sends
HOST = "nexus"  # every user's host part: nick!~user@nexus
NICKLEN = 24
CHANNELLEN = 33  # '#' and a room name of at most 32
TOPICLEN = 200
HISTORY_MAX = PAGE_MAX  # messages one CHATHISTORY request may ask for

# Capabilities offered, with their CAP LS 302 values.
CAPS: dict[str, str] = {
    "account-tag": "",
    "away-notify": "",
    "batch": "",
    "cap-notify": "",
    "draft/chathistory": "",
    "draft/message-redaction": "",
    "draft/read-marker": "",
    "echo-message": "",
    "extended-join": "",
    "labeled-response": "",
    "message-tags": "",
    "multi-prefix": "",
    "sasl": "PLAIN",
    "server-time": "",
    "userhost-in-names": "",
}


def isupport_value(value: str) -> str:
    r"""An ISUPPORT token's value with what may not appear there escaped
    (modern IRC: \x20 for a space, \x3D for "=", \x5C for a backslash)."""
    return value.replace("\\", "\\x5C").replace(" ", "\\x20").replace("=", "\\x3D")


ISUPPORT = (
    "AWAYLEN=200",
    "CASEMAPPING=ascii",
    f"CHANNELLEN={CHANNELLEN}",
    "CHANMODES=bq,,,int",
    "CHANTYPES=#",
    f"CHATHISTORY={HISTORY_MAX}",
    "MSGREFTYPES=msgid,timestamp",
    "NETWORK=Nexus",
    f"NICKLEN={NICKLEN}",
    "PREFIX=(o)@",
    "TARGMAX=PRIVMSG:4,NOTICE:4,JOIN:10,PART:10,KICK:4,NAMES:1,WHOIS:1",
    f"USERLEN={USERLEN}",
    f"TOPICLEN={TOPICLEN}",
    "UTF8ONLY",
    "WHOX",
)

# Nexus error codes -> IRC numerics, for requests about a channel or a nick.
NUMERICS = {
    "no_such_room": ("403", "No such channel"),
    "not_member": ("442", "You're not on that channel"),
    "not_owner": ("482", "You're not channel operator"),
    "not_allowed": ("482", "You're not channel operator"),
    "banned": ("474", "Cannot join channel (+b)"),
    "invite_only": ("473", "Cannot join channel (+i)"),
    "protected_room": ("482", "A default room cannot be changed that way"),
    "no_such_user": ("401", "No such nick/channel"),
}
