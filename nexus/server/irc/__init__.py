"""IRC, sans I/O: lines parsed and built (`lines`), names and numerics
(`numerics`), message ids and history windows (`history`), and a connection's
translation between IRC and the server's requests and events (`translator`,
built on `state`, `registration`, `commands` and `events`).

The asyncio glue is nexus/server/frontends/irc.py; nothing here touches a socket.
"""
