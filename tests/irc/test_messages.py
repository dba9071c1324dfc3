"""Messages over real sockets: channel text and DMs crossing between IRC and native
clients both ways, splitting, line safety, and the IRCv3 capabilities that shape them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from nexus.server.irc.history import irc_time
from tests.irc.conftest import IrcServer
from tests.wire import Peer


async def native_user(irc: IrcServer, name: str) -> Peer:
    return await irc.running.user(name)


async def test_channel_message_crosses_both_ways(irc: IrcServer) -> None:
    """PRIVMSG #general reaches a native client; a native say reaches the IRC client."""
    ana = await irc.irc_user("ana")
    bob = await native_user(irc, "bob")
    await ana.send("PRIVMSG #general :hello from \x02irssi\x02 \x0304red\x03")
    event = await bob.event("message", room="general")
    assert event["from"] == "ana" and event["text"] == "hello from **irssi** red"
    await bob.ok("say", room="general", text="hello from nexus-chat")
    await ana.expect(r"^:bob!~bob@nexus PRIVMSG #general :hello from nexus-chat$")


async def test_action_maps_to_ctcp_action_both_ways(irc: IrcServer) -> None:
    """/me over IRC is an action message; a native action arrives as CTCP ACTION."""
    ana = await irc.irc_user("ana")
    bob = await native_user(irc, "bob")
    await ana.send("PRIVMSG #general :\x01ACTION waves\x01")
    event = await bob.event("message", room="general")
    assert event["text"] == "waves" and event["action"] is True
    await bob.ok("say", room="general", text="bows", action=True)
    await ana.expect(r"^:bob!~bob@nexus PRIVMSG #general :\x01ACTION bows\x01$")


async def test_dm_crosses_both_ways(irc: IrcServer) -> None:
    """PRIVMSG nick is a DM to a native user, and a native DM reaches the IRC nick."""
    ana = await irc.irc_user("ana")
    bob = await native_user(irc, "bob")
    await ana.send("PRIVMSG bob :psst")
    event = await bob.event("dm")
    assert event["from"] == "ana" and event["to"] == "bob" and event["text"] == "psst"
    await bob.ok("dm", to="ana", text="what?")
    await ana.expect(r"^:bob!~bob@nexus PRIVMSG ana :what\?$")


async def test_dms_sent_while_offline_arrive_at_login(irc: IrcServer) -> None:
    """DMs sent to an account while it was offline are delivered when it logs in over IRC."""
    await irc.account("ana")
    bob = await native_user(irc, "bob")
    await bob.ok("dm", to="ana", text="first while you were out")
    await bob.ok("dm", to="ana", text="second")
    ana = await irc.peer()
    await ana.register("ana", caps="server-time")
    first = await ana.expect(r"^@time=(\S+) :bob!~bob@nexus PRIVMSG ana :first while you were out$")
    assert first.group(1).endswith("Z")
    await ana.expect(r":bob!~bob@nexus PRIVMSG ana :second$")


async def test_long_and_multiline_messages_split_into_lines_that_fit(irc: IrcServer) -> None:
    """A 4,000-character message and a three-line one arrive as PRIVMSG lines of at
    most 512 bytes each; no CR, LF or NUL arrives raw and nothing is lost."""
    ana = await irc.irc_user("ana")
    bob = await native_user(irc, "bob")
    long_text = " ".join(["word" + str(i) for i in range(700)])[:4000]
    await bob.ok("say", room="general", text=long_text)
    await bob.ok("say", room="general", text="one\ntwo\n\nfour")
    got = []
    while True:
        line = await ana.line()
        if "PRIVMSG" not in line:
            continue
        assert len(line.encode()) + 2 <= 512
        body = line.split(" :", 1)[1]
        got.append(body)
        if body == "four":
            break
    assert "".join(got[:-4]) == long_text
    assert got[-4:] == ["one", "two", " ", "four"]


async def test_invalid_utf8_is_refused_and_formatting_cleaned_not_fatal(irc: IrcServer) -> None:
    """UTF8ONLY: a message that is not UTF-8 is refused (FAIL INVALID_UTF8; a NOTICE
    silently), never relayed mangled; colour codes are stripped; the connection stays."""
    ana = await irc.irc_user("ana")
    bob = await native_user(irc, "bob")
    await ana.send_raw(b"PRIVMSG #general :caf\xe9 ok\r\nNOTICE #general :caf\xe9\r\n")
    await ana.expect(r"^:nexus FAIL PRIVMSG INVALID_UTF8 :")
    await ana.send_raw(b"PRIVMSG #general :caf\xc3\xa9 \x0304red\x03 ok\r\n")
    event = await bob.event("message", room="general")
    assert event["text"] == "caf\u00e9 red ok"  # the first one to arrive
    await ana.send("PING :still-here")
    lines = await ana.until("PONG nexus still-here")
    assert not any("FAIL" in line for line in lines)  # the NOTICE got no answer


async def test_message_errors_are_numerics(irc: IrcServer) -> None:
    """No text is 412, an unknown nick 401, a missing channel 403, a channel not joined 404."""
    ana = await irc.irc_user("ana")
    await ana.send("PRIVMSG #general :", "PRIVMSG nobody :hi", "PRIVMSG #nowhere :hi")
    await ana.expect(r" 412 ana :No text to send")
    await ana.expect(r" 401 ana nobody :")
    await ana.expect(r" 403 ana #nowhere :")
    await ana.send("PRIVMSG #tech :hi")
    await ana.expect(r" 404 ana #tech :Cannot send to channel")


async def test_notice_is_delivered_and_never_answered_with_errors(irc: IrcServer) -> None:
    """NOTICE reaches members like a message; a failing NOTICE gets no error reply."""
    ana = await irc.irc_user("ana")
    bob = await native_user(irc, "bob")
    await ana.send("NOTICE #general :bot says hi", "NOTICE #tech :nobody hears")
    assert (await bob.event("message", room="general"))["text"] == "bot says hi"
    await ana.send("PING :done")
    lines = await ana.until("PONG")
    assert not any(" 404 " in line or " 442 " in line for line in lines)


async def test_without_echo_message_own_messages_do_not_come_back(irc: IrcServer) -> None:
    """Without echo-message a client's own PRIVMSG is not sent back to it."""
    ana = await irc.irc_user("ana")
    await ana.send("PRIVMSG #general :mine", "PING :after")
    lines = await ana.until("PONG")
    assert not any("PRIVMSG" in line for line in lines)


async def test_echo_message_with_labeled_response_labels_the_echo(irc: IrcServer) -> None:
    """With echo-message the PRIVMSG comes back, carrying the request's label."""
    ana = await irc.irc_user("ana", caps="echo-message labeled-response batch message-tags")
    await ana.send("@label=abc PRIVMSG #general :echo me")
    await ana.expect(r"^@label=abc;msgid=general\.\d+ :ana!~ana@nexus PRIVMSG #general :echo me$")


async def test_another_sessions_messages_show_as_ones_own(irc: IrcServer) -> None:
    """A message the account says from nexus-chat shows in its IRC session as from its nick."""
    ana = await irc.irc_user("ana")
    native = await irc.running.user("ana", register=False)
    await native.ok("say", room="general", text="said elsewhere")
    await ana.expect(r"^:ana!~ana@nexus PRIVMSG #general :said elsewhere$")


async def test_server_time_message_tags_and_account_tag(irc: IrcServer) -> None:
    """Acknowledged tags appear (time, msgid, account); unrequested ones do not."""
    tagged = await irc.irc_user("ana", caps="server-time message-tags account-tag")
    plain = await irc.irc_user("cyd")
    bob = await native_user(irc, "bob")
    await bob.ok("say", room="general", text="tagged?")
    found = await tagged.expect(r"^@(\S+) :bob!~bob@nexus PRIVMSG #general :tagged\?$")
    tags = dict(item.split("=", 1) for item in found.group(1).split(";"))
    assert set(tags) == {"time", "msgid", "account"} and tags["account"] == "bob"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", tags["time"])
    await plain.expect(r"^:bob!~bob@nexus PRIVMSG #general :tagged\?$")


async def test_extended_join_and_away_notify(irc: IrcServer) -> None:
    """extended-join adds account and realname to JOIN; away-notify sends AWAY changes."""
    ana = await irc.irc_user("ana", caps="extended-join away-notify")
    bob = await irc.irc_user("bob")
    await ana.expect(r"^:bob!~bob@nexus JOIN #general bob :?bob$")
    await bob.send("AWAY :brb")
    await ana.expect(r"^:bob!~bob@nexus AWAY :brb$")
    await bob.send("AWAY")
    await ana.expect(r"^:bob!~bob@nexus AWAY$")


async def test_labeled_response_ack_single_and_batch(irc: IrcServer) -> None:
    """A labeled command with no answer gets ACK, one line gets the label, several a batch."""
    ana = await irc.irc_user("ana", caps="labeled-response batch")
    await ana.send("@label=p1 PING :x")
    await ana.expect(r"^@label=p1 :nexus PONG nexus x$")
    await ana.send("@label=n1 PONG :x")
    await ana.expect(r"^@label=n1 :nexus ACK$")
    await ana.send("@label=w1 WHOIS ana")
    ref = (await ana.expect(r"^@label=w1 :nexus BATCH \+(\S+) labeled-response$")).group(1)
    lines = await ana.until(rf"^:nexus BATCH -{ref}$")
    assert all(line.startswith(f"@batch={ref} ") for line in lines[:-1])
    assert any(" 318 ana ana " in line for line in lines)


async def test_a_label_comes_back_escaped_as_it_was_sent(irc: IrcServer) -> None:
    """A label holding escaped characters (IRCv3 message-tags: \\: \\s \\\\ \\r
    \\n) comes back escaped the same way, on the one line that answers it, on the
    start of its labeled-response batch and on an ACK: a CR, LF, space or ';' in
    a label never cuts a line or starts another."""
    ana = await irc.irc_user("ana", caps="labeled-response batch")
    label = r"a\r\nPRIVMSG\s#general\s:x\:y\\z"
    await ana.send(f"@label={label} PING :one", "PING :two")
    assert (await ana.line()) == f"@label={label} :nexus PONG nexus one"
    assert (await ana.line()) == ":nexus PONG nexus two"
    await ana.send(f"@label={label} WHOIS ana")
    start = await ana.line()
    assert re.fullmatch(rf"@label={re.escape(label)} :nexus BATCH \+\S+ labeled-response", start)
    await ana.expect(r"^:nexus BATCH -")
    await ana.send(f"@label={label} PONG :x")
    assert (await ana.line()) == f"@label={label} :nexus ACK"


async def test_chathistory_latest_before_and_after_in_a_batch(irc: IrcServer) -> None:
    """CHATHISTORY LATEST, BEFORE and AFTER page the room's stored history in a batch."""
    bob = await native_user(irc, "bob")
    for i in range(1, 8):
        await bob.ok("say", room="general", text=f"m{i}")
    ana = await irc.irc_user("ana", caps="batch server-time message-tags draft/chathistory")

    async def page(command: str) -> list[str]:
        await ana.send(command)
        ref = (await ana.expect(r":nexus BATCH \+(\S+) chathistory #general$")).group(1)
        lines = await ana.until(rf"^:nexus BATCH -{ref}$")
        return [line.rsplit(" :", 1)[1] for line in lines[:-1]]

    assert await page("CHATHISTORY LATEST #general * 3") == ["m5", "m6", "m7"]
    assert await page("CHATHISTORY BEFORE #general msgid=general.5 2") == ["m3", "m4"]
    assert await page("CHATHISTORY AFTER #general msgid=general.2 2") == ["m3", "m4"]
    assert await page("CHATHISTORY BETWEEN #general msgid=general.1 msgid=general.4 10") == [
        "m2",
        "m3",
    ]
    await ana.send("CHATHISTORY LATEST #general * 1")
    line = await ana.expect(r"PRIVMSG #general :m7$")
    assert "msgid=general.7" in line.string and "time=" in line.string
    await ana.send("CHATHISTORY SIDEWAYS #general * 1")
    await ana.expect(r"FAIL CHATHISTORY INVALID_PARAMS")


async def test_answers_come_in_the_order_of_their_lines(irc: IrcServer) -> None:
    """An answer that takes the server several reads (CHATHISTORY by time, a JOIN
    that creates its channel, MARKREAD) is told before the answers to the lines
    sent after it, labeled or not."""
    bob = await native_user(irc, "bob")
    sent = []
    for i in range(1, 6):
        await asyncio.sleep(0.002)  # a millisecond of its own: IRC times have no finer grain
        sent.append(await bob.ok("say", room="general", text=f"m{i}"))
    ana = await irc.irc_user(
        "ana", caps="batch server-time draft/chathistory draft/read-marker labeled-response"
    )
    stamp = "timestamp=" + irc_time(sent[3]["ts"] + 0.001)
    start = len(ana.lines)
    await ana.send(
        f"CHATHISTORY BEFORE #general {stamp} 2",
        "PING :one",
        "JOIN #fresh",
        "PING :two",
        f"MARKREAD #general {stamp}",
        "@label=x PING :three",
    )
    await ana.expect(r"PONG nexus three$")
    await ana.quiet(0.5)  # whatever came after it
    lines = ana.lines[start:]
    order = [
        next((i for i, line in enumerate(lines) if re.search(pattern, line)), -1)
        for pattern in (
            r"PRIVMSG #general :m4$",
            r":nexus BATCH -",
            r"PONG nexus one$",
            r" 366 ana #fresh ",
            r"PONG nexus two$",
            r"MARKREAD #general timestamp=",
            r"PONG nexus three$",
        )
    ]
    assert order == sorted(order), lines


async def test_chathistory_of_a_dm_conversation(irc: IrcServer) -> None:
    """CHATHISTORY LATEST nick pages the DM conversation."""
    ana = await irc.irc_user("ana", caps="batch draft/chathistory")
    bob = await native_user(irc, "bob")
    await bob.ok("dm", to="ana", text="dm one")
    await ana.send("PRIVMSG bob :dm two")
    await bob.event("dm", text="dm two")
    await ana.send("CHATHISTORY LATEST bob * 10")
    ref = (await ana.expect(r":nexus BATCH \+(\S+) chathistory bob$")).group(1)
    lines = await ana.until(rf"BATCH -{ref}")
    assert any(line.endswith(":bob!~bob@nexus PRIVMSG ana :dm one") for line in lines)
    assert any(line.endswith(":ana!~ana@nexus PRIVMSG bob :dm two") for line in lines)


async def test_redaction_both_ways(irc: IrcServer) -> None:
    """REDACT erases one's message (native sees `erased`); an erasure reaches clients
    with draft/message-redaction as REDACT and others as a readable notice."""
    ana = await irc.irc_user("ana", caps="draft/message-redaction message-tags echo-message")
    plain = await irc.irc_user("cyd")
    bob = await native_user(irc, "bob")
    await ana.send("PRIVMSG #general :oops")
    mid = (await ana.expect(r"msgid=(\S+) :ana!~ana@nexus PRIVMSG #general :oops")).group(1)
    await ana.send(f"REDACT #general {mid}")
    erased = await bob.event("erased")
    assert erased["message"]["seq"] == int(mid.split(".")[1])
    await ana.expect(rf"^:ana!~ana@nexus REDACT #general {re.escape(mid)}$")
    await plain.expect(r"NOTICE #general :a message from ana was erased")
    await ana.send("REDACT #general general.999")
    await ana.expect(r"FAIL REDACT UNKNOWN_MSGID #general general\.999")


async def test_reactions_both_ways(irc: IrcServer) -> None:
    """TAGMSG +draft/react reacts; a reaction reaches message-tags clients as TAGMSG
    and plain clients as a readable notice; an edit arrives as a notice."""
    ana = await irc.irc_user("ana", caps="message-tags")
    plain = await irc.irc_user("cyd")
    bob = await native_user(irc, "bob")
    sent = await bob.ok("say", room="general", text="lunch?")
    mid = f"general.{sent['seq']}"
    await ana.send(f"@+draft/react=👍;+draft/reply={mid} TAGMSG #general")
    reaction = await bob.event("reaction")
    assert reaction["emoji"] == "👍" and reaction["user"] == "ana" and reaction["on"] is True
    await bob.ok("react", room="general", seq=sent["seq"], emoji="🎉")
    await ana.expect(rf"^@\+draft/react=🎉;\+draft/reply={mid} :bob!~bob@nexus TAGMSG #general$")
    await plain.expect(r":bob!~bob@nexus NOTICE #general :reacted 🎉 to bob: lunch\?$")
    await bob.ok("edit", room="general", seq=sent["seq"], text="lunch at 1?")
    await plain.expect(r":bob!~bob@nexus NOTICE #general :\(edited\) lunch at 1\?$")


async def test_notice_reaches_irc_clients_as_a_notice(irc: IrcServer) -> None:
    """A NOTICE to a channel or a nick reaches IRC clients as NOTICE (and is
    echoed as one with echo-message); nexus-chat gets it as a message."""
    ana = await irc.irc_user("ana", caps="echo-message")
    cyd = await irc.irc_user("cyd")
    bob = await native_user(irc, "bob")
    await ana.send("NOTICE #general :bot says hi")
    await ana.expect(r"^:ana!~ana@nexus NOTICE #general :bot says hi$")
    await cyd.expect(r"^:ana!~ana@nexus NOTICE #general :bot says hi$")
    assert (await bob.event("message", room="general"))["text"] == "bot says hi"
    await ana.send("NOTICE cyd :psst", "PRIVMSG #general :plain again")
    await cyd.expect(r"^:ana!~ana@nexus NOTICE cyd :psst$")
    await cyd.expect(r"^:ana!~ana@nexus PRIVMSG #general :plain again$")


async def test_client_only_tags_reach_message_tags_clients(irc: IrcServer) -> None:
    """A PRIVMSG's client-only tags (`+name`) reach the clients with message-tags,
    in the echo too; other tags are dropped, and clients without it get none."""
    ana = await irc.irc_user("ana", caps="message-tags echo-message")
    bob = await irc.irc_user("bob", caps="message-tags")
    cyd = await irc.irc_user("cyd")
    await ana.send("@+example=a\\sb;fizz=buzz PRIVMSG #general :tagged")
    for peer in (ana, bob):
        found = await peer.expect(r"^@(\S+) :ana!~ana@nexus PRIVMSG #general :tagged$")
        assert sorted(found.group(1).split(";"))[0] == "+example=a\\sb"
        assert "fizz" not in found.group(1)
    await cyd.expect(r"^:ana!~ana@nexus PRIVMSG #general :tagged$")


async def test_echo_of_a_dm_keeps_its_label_and_client_tags(irc: IrcServer) -> None:
    """echo-message on a DM: the echo carries the line's label and client tags."""
    ana = await irc.irc_user("ana", caps="message-tags echo-message labeled-response batch")
    bob = await irc.irc_user("bob", caps="message-tags")
    await ana.send("@label=xyz;+example-client-tag=example-value PRIVMSG bob :hi there")
    echo = await ana.expect(r"^@(\S+) :ana!~ana@nexus PRIVMSG bob :hi there$")
    tags = dict(item.partition("=")[::2] for item in echo.group(1).split(";"))
    assert tags["label"] == "xyz" and tags["+example-client-tag"] == "example-value"
    got = await bob.expect(r"^@(\S+) :ana!~ana@nexus PRIVMSG bob :hi there$")
    assert "+example-client-tag=example-value" in got.group(1).split(";")
    assert "label" not in got.group(1)


async def test_a_dm_to_oneself_is_received_and_echoed(irc: IrcServer) -> None:
    """A DM to one's own nick arrives once without echo-message; with it, the
    echo (labeled) and the delivery, alike."""
    ana = await irc.irc_user("ana")
    await ana.send("PRIVMSG ana :note to self", "PING :one")
    lines = await ana.until("PONG")
    assert [line for line in lines if "PRIVMSG" in line] == [
        ":ana!~ana@nexus PRIVMSG ana :note to self"
    ]
    await ana.send("CAP REQ :echo-message labeled-response batch", "PING :caps")
    await ana.until("PONG")
    await ana.send("@label=me PRIVMSG ana :another", "PING :two")
    lines = [line for line in await ana.until("PONG") if "PRIVMSG" in line]
    assert sorted(lines) == [
        ":ana!~ana@nexus PRIVMSG ana :another",
        "@label=me :ana!~ana@nexus PRIVMSG ana :another",
    ]


async def test_over_long_tags_are_417_and_not_relayed(irc: IrcServer) -> None:
    """A line whose tags pass 4,094 bytes is refused with 417 and not relayed;
    one at the limit goes through."""
    ana = await irc.irc_user("ana", caps="message-tags")
    bob = await irc.irc_user("bob", caps="message-tags")
    at_limit = "@+big=" + "a" * (4094 - 5)
    await ana.send(at_limit + "a PRIVMSG #general :too much")
    await ana.expect(r"^:nexus 417 ana :Input line was too long$")
    await ana.send(at_limit + " PRIVMSG #general :just fits")
    await bob.expect(r"PRIVMSG #general :just fits$")
    assert not any("too much" in line for line in bob.lines)


async def test_a_dm_to_someone_away_is_answered_301(irc: IrcServer) -> None:
    """PRIVMSG to a nick who is away answers 301 with their away text (offline:
    the DM waits for them); not once they are back, and never to a NOTICE."""
    ana = await irc.irc_user("ana")
    bob = await irc.irc_user("bob", joined="")
    await bob.send("AWAY :not here")
    await bob.expect(" 306 ")
    await ana.send("PRIVMSG bob :you there?", "NOTICE bob :fyi")
    await ana.expect(r"^:nexus 301 ana bob :not here$")
    await bob.send("AWAY")
    await bob.expect(" 305 ")
    await ana.send("PRIVMSG bob :back?", "PING :back")
    assert not any(" 301 " in line for line in await ana.until("PONG"))
    await irc.account("carl")
    await ana.send("PRIVMSG carl :for later")
    await ana.expect(r"^:nexus 301 ana carl :offline$")


async def test_a_reply_tag_of_another_conversation_is_ignored(irc: IrcServer) -> None:
    """A `+draft/reply` naming a message of another channel (or no msgid of
    ours) leaves the message a plain one, not refused."""
    ana = await irc.irc_user("ana", caps="message-tags echo-message")
    await ana.send(
        "@+draft/reply=123 PRIVMSG #general :one", "@+draft/reply=tech.1 PRIVMSG #general :two"
    )
    await ana.expect(r"^@msgid=general\.\d+ :ana!~ana@nexus PRIVMSG #general :one$")
    await ana.expect(r"^@msgid=general\.\d+ :ana!~ana@nexus PRIVMSG #general :two$")


async def test_joining_shows_the_latest_lines_to_a_client_without_history(
    start_irc: Callable[..., Any],
) -> None:
    """A client that does not fetch history itself is shown a channel's last
    --irc-history-lines lines on JOIN (and in its burst), after NAMES: with
    server-time in a chathistory batch, else with the time in front; one with
    draft/chathistory gets none."""
    irc: IrcServer = await start_irc(irc_history_lines=2)
    bob = await native_user(irc, "bob")
    for text in ("one", "two", "three"):
        await bob.ok("say", room="general", text=text)
    await bob.ok("create", room="den")
    await bob.ok("say", room="den", text="in the den")
    plain = await irc.irc_user("ana", joined="")
    lines = await plain.until(r"PRIVMSG #general :\S+ three$")
    assert re.fullmatch(r":bob!~bob@nexus PRIVMSG #general :\[\d\d:\d\d:\d\d\] two", lines[-2])
    await plain.send("JOIN #den")
    await plain.expect(r" 366 ana #den ")
    await plain.expect(r"^:bob!~bob@nexus PRIVMSG #den :\[\d\d:\d\d:\d\d\] in the den$")
    timed = await irc.irc_user("cyd", caps="server-time batch", joined="")
    lines = await timed.until(r"^:nexus BATCH -")
    assert re.fullmatch(r":nexus BATCH \+\S+ chathistory #general", lines[-4])
    assert re.fullmatch(r"@batch=\S+;time=\S+ :bob!~bob@nexus PRIVMSG #general :two", lines[-3])
    fetcher = await irc.irc_user("dan", caps="draft/chathistory batch")
    await fetcher.send("JOIN #den", "PING :den")
    assert not any("PRIVMSG" in line for line in await fetcher.until("PONG"))


async def test_no_lines_on_join_with_the_setting_at_zero(start_irc: Callable[..., Any]) -> None:
    """--irc-history-lines 0 shows nothing of a channel's history on JOIN."""
    irc: IrcServer = await start_irc(irc_history_lines=0)
    bob = await native_user(irc, "bob")
    await bob.ok("say", room="general", text="earlier")
    ana = await irc.irc_user("ana")
    await ana.send("PING :after")
    assert not any("PRIVMSG" in line for line in await ana.until("PONG"))
