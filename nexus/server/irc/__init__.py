"""IRC, sans I/O: lines parsed and built (`lines`), and a connection's translation
between IRC and the server's typed requests and events (`translator`).

The asyncio glue is nexus/server/frontends/irc.py; nothing here touches a socket.
"""
