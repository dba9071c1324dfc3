"""The wire protocol, sans I/O, shared by the server, the client, the tests and the bench.

- `framing`: bytes <-> newline-ended frames <-> JSON objects, with the size limits;
- `requests`: one typed, validated dataclass a command, built only by `parse()`;
- `frames`: typed objects, events and replies, checked on the receiving side.

The rules follow docs/protocol.md. Everything is re-exported here, so callers
write `from nexus import protocol as p` and `p.parse(...)`.
"""

from nexus.protocol.frames import *  # noqa: F403
from nexus.protocol.framing import *  # noqa: F403
from nexus.protocol.requests import *  # noqa: F403
