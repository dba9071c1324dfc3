"""Registration over real sockets: CAP negotiation, SASL PLAIN, PASS, refusals, TLS."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from nexus.server.config import ServerConfig
from tests.conftest import PASSWORD
from tests.irc.conftest import IrcPeer, IrcServer


async def test_sasl_plain_logs_in_and_sends_the_welcome_burst(irc: IrcServer) -> None:
    """SASL PLAIN logs in; 001-005 with ISUPPORT, the MOTD and the member rooms follow."""
    await irc.account("ana")
    peer = await irc.peer()
    await peer.register("ana")
    lines = await peer.until(r" 366 ana #general ")
    burst = "\n".join(peer.lines)
    for numeric in ("001", "002", "003", "004", "005", "375", "372", "376", "900", "903"):
        assert f" {numeric} " in burst, numeric
    for token in (
        "CHANTYPES=#",
        "PREFIX=(o)@",
        "NICKLEN=24",
        "CHANNELLEN=33",
        "TOPICLEN=200",
        "CASEMAPPING=ascii",
    ):
        assert token in burst, token
    assert ":nexus 372 ana :- test server" in peer.lines
    assert ":ana!~ana@nexus JOIN #general" in lines
    assert any(line.startswith(":nexus 353 ana = #general :") and "ana" in line for line in lines)


async def test_cap_ls_302_lists_values_and_req_is_all_or_nothing(irc: IrcServer) -> None:
    """CAP LS 302 shows sasl=PLAIN; a REQ naming an unknown capability is NAKed whole."""
    peer = await irc.peer()
    await peer.send("CAP LS 302")
    listed = (await peer.expect(r"CAP \* LS :(.*)$")).group(1).split()
    assert "sasl=PLAIN" in listed and "draft/chathistory" in listed and "batch" in listed
    await peer.send("CAP REQ :server-time bogus-cap")
    await peer.expect(r"CAP \* NAK :server-time bogus-cap$")
    await peer.send("CAP REQ :server-time echo-message")
    await peer.expect(r"CAP \* ACK :server-time echo-message$")
    await peer.send("CAP LIST")
    await peer.expect(r"CAP \* LIST :.*echo-message.*server-time")
    await peer.send("CAP REQ :-echo-message", "CAP LIST")
    assert "echo-message" not in (await peer.expect(r"CAP \* LIST :(.*)$")).group(1)


async def test_registration_waits_for_cap_end(irc: IrcServer) -> None:
    """NICK and USER during CAP negotiation do not register until CAP END."""
    await irc.account("ana")
    peer = await irc.peer()
    creds = base64.b64encode(f"\0ana\0{PASSWORD}".encode()).decode()
    await peer.send("CAP LS 302", "NICK ana", "USER ana 0 * :A", "CAP REQ :sasl")
    await peer.expect(" ACK ")
    assert not any(" 001 " in line or " 464 " in line for line in await peer.quiet())
    await peer.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {creds}", "CAP END")
    await peer.expect(" 903 ")
    await peer.expect(" 001 ana ")


async def test_sasl_with_a_wrong_password_fails_with_904(irc: IrcServer) -> None:
    """A wrong SASL password answers 904 and leaves the client unregistered."""
    await irc.account("ana")
    peer = await irc.peer()
    creds = base64.b64encode(b"ana\0ana\0wrong password").decode()
    await peer.send("CAP LS 302", "CAP REQ :sasl", "AUTHENTICATE PLAIN", f"AUTHENTICATE {creds}")
    await peer.expect(r" 904 \* :SASL authentication failed")
    await peer.send("AUTHENTICATE EXTERNAL")
    await peer.expect(r" 908 \* PLAIN ")


async def test_pass_account_colon_password_logs_in(irc: IrcServer) -> None:
    """A client without SASL logs in with PASS account:password."""
    await irc.account("bob")
    peer = await irc.peer()
    await peer.register("bob", sasl=False)
    await peer.expect(r":bob!~bob@nexus JOIN #general")


async def test_pass_with_the_password_alone_uses_the_nick(irc: IrcServer) -> None:
    """PASS password with NICK account logs in as the nick's account."""
    await irc.account("bob")
    peer = await irc.peer()
    await peer.send(f"PASS :{PASSWORD}", "NICK bob", "USER bob 0 * :B")
    await peer.expect(" 001 bob ")


async def test_wrong_pass_is_refused_with_464_and_error(irc: IrcServer) -> None:
    """A wrong PASS gets 464 and ERROR, then the connection closes."""
    await irc.account("bob")
    peer = await irc.peer()
    await peer.send("PASS bob:not-the-password", "NICK bob", "USER bob 0 * :B")
    await peer.expect(r" 464 bob :Password incorrect")
    await peer.expect(r"^ERROR :Closing link")
    await peer.closed()


async def test_no_credentials_are_told_how_to_log_in(irc: IrcServer) -> None:
    """A client that sends only NICK and USER is told to use SASL or PASS, then closed."""
    peer = await irc.peer()
    await peer.send("NICK stranger", "USER s 0 * :S")
    notice = await peer.expect(r"NOTICE stranger :(.*)$")
    assert "SASL" in notice.group(1) and "PASS" in notice.group(1)
    await peer.expect(" 464 stranger ")
    await peer.expect("^ERROR ")
    await peer.closed()


async def test_commands_before_registration_get_451(irc: IrcServer) -> None:
    """JOIN before registering answers 451; an erroneous nick 432."""
    peer = await irc.peer()
    await peer.send("JOIN #general")
    await peer.expect(r" 451 \* :You have not registered")
    await peer.send("NICK bad!nick")
    await peer.expect(r" 432 \* bad!nick ")


async def test_nick_is_the_account_name(irc: IrcServer) -> None:
    """SASL as ana after NICK jo (too short for an account) welcomes nick ana; changing
    nick later is refused (447)."""
    await irc.account("ana")
    peer = await irc.peer()
    creds = base64.b64encode(f"\0ana\0{PASSWORD}".encode()).decode()
    await peer.send("CAP LS 302", "NICK jo", "USER a 0 * :A", "CAP REQ :sasl")
    await peer.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {creds}", "CAP END")
    await peer.expect(" 001 ana :")
    await peer.send("NICK other")
    await peer.expect(" 447 ana ")


async def test_ping_pong_and_quit(irc: IrcServer) -> None:
    """PING gets PONG with its token; QUIT gets ERROR and a close."""
    peer = await irc.irc_user("ana")
    await peer.send("PING :token-42")
    await peer.expect(r"^:nexus PONG nexus token-42$")
    await peer.send("QUIT :bye now")
    await peer.expect(r"^ERROR :Closing link: Quit: bye now")
    await peer.closed()


async def test_ircs_speaks_irc_over_tls(start_irc: object, tmp_path: object) -> None:
    """--ircs-port serves IRC inside TLS with the server's (self-signed) certificate."""
    server: IrcServer = await start_irc(irc_port=None, ircs_port=0)  # type: ignore[operator]
    await server.account("ana")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    host, port = server.running.server.irc_address("ircs")
    peer = await IrcPeer.connect(host, port, tls=context)
    server.peers.append(peer)
    await peer.register("ana")
    await peer.expect(r":ana!~ana@nexus JOIN #general")


async def test_user_needs_a_username_and_a_real_name(irc_guests: IrcServer) -> None:
    """USER with an empty real name (or username) is 461, as RFC 2812 and
    modern.ircdocs.horse ask; the client may send USER again."""
    peer = await irc_guests.peer()
    await peer.send("NICK zed", "USER zed 0 * :")
    await peer.expect(r"^:nexus 461 zed USER :Not enough parameters$")
    await peer.send("USER : 0 * :Zed")
    await peer.expect(r"^:nexus 461 zed USER :Not enough parameters$")
    await peer.send("USER zed 0 * :Zed Zedson")
    await peer.expect(r"^:nexus 001 zed :Welcome to the Nexus IRC gateway, zed!~zed@nexus$")


async def test_a_username_and_real_name_not_in_utf8_still_register(irc_guests: IrcServer) -> None:
    """A USER line that is not UTF-8 registers (its real name with U+FFFD, its
    username with what a mask may hold), and WHOIS shows both."""
    peer = await irc_guests.peer()
    await peer.send("NICK zed")
    await peer.send_raw("USER zed😊ok 0 * :".encode() + b"i\xe8rc\xe9 name\r\n")
    await peer.expect(r" 001 zed ")
    await peer.send("WHOIS zed")
    lines = await peer.until(r" 318 zed zed ")
    assert ":nexus 311 zed zed ~zedok nexus * :i\ufffdrc\ufffd name" in lines


async def test_a_nick_change_is_433_for_a_taken_nick_and_447_otherwise(
    irc_guests: IrcServer,
) -> None:
    """A nick is its account's name: NICK to a nick an account or an online guest
    has is 433 (any case), to a free one 447, to one's own in another case 447,
    to one's own as spelt nothing. The client keeps its nick and its DMs."""
    await irc_guests.account("ana")
    zed = await irc_guests.guest("zed")
    bob = await irc_guests.irc_user("bob")
    for nick, numeric in (("ANA", "433 bob ana"), ("Zed", "433 bob zed"), ("robert", "447 bob")):
        await bob.send(f"NICK {nick}")
        await bob.expect(rf"^:nexus {numeric} :")
    await bob.send("NICK Bob")
    await bob.expect(
        r"^:nexus 447 bob :Cannot change nickname: a nick is its account's name, spelt bob$"
    )
    await bob.send("NICK bob", "PING :after")
    assert await bob.until("PONG") == [":nexus PONG nexus after"]
    await zed.send("PRIVMSG bob :still you?")
    await bob.expect(r"^:zed!~zed@nexus PRIVMSG bob :still you\?$")


async def test_authenticate_after_the_welcome_is_462_and_a_long_chunk_905(irc: IrcServer) -> None:
    """A session's account is chosen at login: AUTHENTICATE once registered is
    462. Before it, an AUTHENTICATE parameter over 400 bytes is 905 and ends
    that exchange, and a new one may start."""
    await irc.account("ana")
    peer = await irc.peer()
    await peer.send("CAP LS 302", "CAP REQ :sasl", "AUTHENTICATE PLAIN")
    await peer.expect(r"^AUTHENTICATE \+$")
    await peer.send("AUTHENTICATE " + "A" * 500)
    await peer.expect(r"^:nexus 905 \* :SASL message too long$")
    creds = base64.b64encode(f"\0ana\0{PASSWORD}".encode()).decode()
    await peer.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {creds}", "NICK ana", "USER ana 0 * :A")
    await peer.expect(" 903 ")
    await peer.send("CAP END")
    await peer.expect(" 001 ana ")
    await peer.send("AUTHENTICATE PLAIN")
    await peer.expect(r"^:nexus 462 ana :You may not reregister")


async def test_ping_needs_a_token(irc: IrcServer) -> None:
    """PING without a parameter is 461; PING with an empty one gets it back."""
    peer = await irc.irc_user("ana")
    await peer.send("PING")
    await peer.expect(r"^:nexus 461 ana PING :Not enough parameters$")
    await peer.send("PING :")
    await peer.expect(r"^:nexus PONG nexus :$")


async def test_the_server_name_is_a_setting(start_irc: Callable[..., Any]) -> None:
    """--irc-server-name names the server in its lines: the welcome, 004, PONG,
    numerics and WHOIS 312; a name that could be a nick is refused at start."""
    server: IrcServer = await start_irc(irc_server_name="irc.example.org")
    ana = await server.irc_user("ana")
    assert ":irc.example.org 004 ana irc.example.org nexus-0.1.0 i ont" in ana.lines
    await ana.send("PING :x", "WHOIS ana")
    await ana.expect(r"^:irc\.example\.org PONG irc\.example\.org x$")
    await ana.expect(r"^:irc\.example\.org 312 ana ana irc\.example\.org :Nexus$")
    with pytest.raises(ValueError, match="irc-server-name"):
        ServerConfig(irc_server_name="bob")
