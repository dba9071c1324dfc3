"""A TLS client whose ClientHello is already waiting when the server accepts is served.

A busy server accepts late; by then the client has sent its ClientHello.
The real binary (on uvloop) read those bytes before the TLS layer was in
place, dropped them, and the handshake stalled until the client gave up:
TLS connections hung at random under load.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import threading

from tests.procs import ServerProcess


def test_a_client_hello_sent_before_the_server_accepts_is_answered(tmp_path):
    """Server paused (SIGSTOP) while a client connects and sends its ClientHello: once it
    runs again, the handshake completes and the hello arrives."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with ServerProcess(tmp_path / "nexus_data.json", "--tls") as server:
        for _ in range(3):
            os.kill(server.proc.pid, signal.SIGSTOP)
            resume = threading.Timer(0.3, os.kill, (server.proc.pid, signal.SIGCONT))
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            resume.start()  # the kernel completed the TCP handshake; the server has not run
            try:
                with context.wrap_socket(raw) as tls:  # sends the ClientHello at once
                    hello = json.loads(tls.makefile("rb").readline())
            finally:
                resume.join()
                raw.close()
            assert hello["event"] == "hello"
