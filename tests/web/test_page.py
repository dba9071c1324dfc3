"""The web client in a real browser against a real server, next to TCP protocol clients."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.clock import ManualClock
from tests.conftest import PASSWORD
from tests.irc.conftest import IrcServer
from tests.web.browser import expect, needs_browser
from tests.web.conftest import WebRunning

pytestmark = needs_browser()

ROOT = Path(__file__).resolve().parents[2]


async def test_register_then_log_in_through_the_form(web: WebRunning, browser) -> None:
    """The form states its rules, refuses a short password before asking the server,
    registers, logs out and logs in again with the password."""
    tab = await browser.tab()
    page = tab.page
    await page.goto(web.base + "/")
    await expect(page.locator(".rules")).to_contain_text("8 to 1,024 characters")
    await page.click("#switch-mode")
    await page.fill("#username", "ana")
    await page.fill("#password", "short")
    await page.fill("#confirm", "short")
    await page.click("#submit")
    await expect(page.locator("#login-error")).to_have_text("a password has at least 8 characters")
    await page.fill("#password", PASSWORD)
    await page.fill("#confirm", PASSWORD)
    await page.click("#submit")
    await expect(page.locator("#title")).to_have_text("#general")
    await expect(tab.messages()).to_contain_text("welcome, ana")
    await tab.type("/quit")
    await expect(page.locator("#login")).to_be_visible()
    await page.fill("#username", "ana")
    await page.fill("#password", "wrong password")
    await page.click("#submit")
    await expect(page.locator("#login-error")).to_have_text("wrong username or password")
    await page.fill("#password", PASSWORD)
    await page.click("#submit")
    await expect(page.locator("#title")).to_have_text("#general")
    # The token is kept once the login's reply is handled, a moment after the title shows.
    await page.wait_for_function("() => sessionStorage.length + localStorage.length === 1")
    assert await page.evaluate("sessionStorage.length + localStorage.length") == 1


async def test_messages_cross_between_the_page_and_a_tcp_client(web: WebRunning, browser) -> None:
    """A message from a TCP client appears live in the page; one typed in the page
    (Enter sends, Shift-Enter makes a new line) reaches the TCP client."""
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    await bob.ok("say", room="general", text="hello from the terminal")
    await expect(tab.messages().locator(".msg").last).to_contain_text("hello from the terminal")
    await expect(tab.page.locator(".people")).to_contain_text("bob")
    await tab.page.fill("#input", "first line")
    await tab.page.press("#input", "Shift+Enter")
    await tab.page.type("#input", "second line")
    await tab.page.press("#input", "Enter")
    message = await bob.event("message", room="general", **{"from": "ana"})
    assert message["text"] == "first line\nsecond line"
    await expect(tab.page.locator("#input")).to_have_value("")
    await tab.type("third")
    await tab.page.press("#input", "ArrowUp")  # Up and Down walk through what was sent
    await expect(tab.page.locator("#input")).to_have_value("third")
    await tab.page.press("#input", "ArrowUp")
    await expect(tab.page.locator("#input")).to_have_value("first line\nsecond line")
    await tab.page.press("#input", "ArrowDown")
    await expect(tab.page.locator("#input")).to_have_value("third")


async def test_direct_messages_both_ways(web: WebRunning, browser) -> None:
    """A DM from TCP opens its conversation in the page with a count; one sent from
    the page's conversation reaches the TCP client."""
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    bob = await web.running.user("bob")
    await bob.ok("dm", to="ana", text="psst, lunch?")
    conversation = tab.page.locator(".buffer", has_text="bob")
    await expect(conversation.locator(".mention")).to_have_text("@1")
    await tab.buffer("bob")
    await expect(tab.messages()).to_contain_text("psst, lunch?")
    await expect(conversation.locator(".badge")).to_have_count(0)
    await tab.type("sure, 12:30")
    dm = await bob.event("dm", to="bob")
    assert dm["from"] == "ana" and dm["text"] == "sure, 12:30"
    await tab.buffer("#general")
    await tab.type("/msg bob see you")
    assert (await bob.event("dm", to="bob"))["text"] == "see you"


async def test_html_in_a_message_is_shown_as_text(web: WebRunning, browser) -> None:
    """Markup from the network is text: no element is created and no script runs."""
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    evil = (
        '<img src=x onerror="window.owned=1"><b>bold</b>'
        "<script>window.owned=2</script><a href=javascript:alert(1)>x</a>"
    )
    await bob.ok("say", room="general", text=evil)
    await bob.ok("bio", text='<img src=x onerror="window.owned=3">')
    last = tab.messages().locator(".msg").last
    await expect(last.locator(".text")).to_have_text(evil)
    assert await last.locator("img, b, script, a").count() == 0
    await tab.type("/whois bob")
    await expect(tab.messages()).to_contain_text('<img src=x onerror="window.owned=3">')
    assert await tab.page.locator("#messages img").count() == 0
    assert await tab.page.evaluate("window.owned") is None


async def test_commands_topic_rooms_and_presence(web: WebRunning, browser) -> None:
    """Slash commands work as in the terminal: /create, /topic shows in the header,
    /join, unknown commands explain themselves; presence shows who is online."""
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    page = tab.page
    await tab.type("/create plans")
    await expect(page.locator("#title")).to_have_text("#plans")
    await tab.type("/topic release on friday")
    await expect(page.locator("#topic")).to_have_text("release on friday")
    await tab.type("/frobnicate")
    await expect(tab.messages()).to_contain_text("unknown command /frobnicate")
    bob = await web.running.user("bob")
    await bob.ok("join", room="plans")
    people = page.locator(".people")
    await expect(people.locator("li", has_text="bob").locator(".dot.on")).to_have_count(1)
    await bob.close()
    await expect(people.locator("li", has_text="bob").locator(".dot.on")).to_have_count(0)
    await tab.type("/join tech")
    await expect(page.locator("#title")).to_have_text("#tech")
    await expect(page.locator("#rooms")).to_contain_text("#plans")


async def test_the_people_list_shows_an_offline_member_who_never_spoke(
    web: WebRunning, browser
) -> None:
    """A member of the room who never wrote and is offline is listed, offline,
    with their role; /names lists every member, and a room not joined too."""
    dora = await web.running.user("dora")
    await dora.ok("create", room="den")
    carl = await web.running.user("carl")
    await carl.ok("join", room="den")
    await carl.ok("quit")
    await dora.ok("quit")
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    page = tab.page
    people = page.locator(".people")
    await expect(people.locator("li.offline", has_text="carl")).to_have_count(1)
    await expect(page.locator("#people-title")).to_have_text("People (1/3)")
    await tab.type("/names #den")
    await expect(tab.messages()).to_contain_text("#den (0 online, 2 members): (carl) (dora)")
    await tab.type("/join den")
    await expect(page.locator("#title")).to_have_text("#den")
    await expect(people.locator("li", has_text="dora")).to_contain_text("owner")
    await expect(people.locator("li.offline", has_text="carl")).to_have_count(1)
    await expect(page.locator("#people-title")).to_have_text("People (1/3)")


async def test_history_pages_in_on_scroll_up(web: WebRunning, browser) -> None:
    """Older messages are fetched when the reader scrolls to the top."""
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    await bob.burst([{"cmd": "say", "room": "general", "text": f"line {i}"} for i in range(1, 171)])
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    pane = tab.messages()
    texts = pane.locator(".msg .text")
    await expect(texts.last).to_have_text("line 170")
    assert await texts.count() < 170
    for _ in range(20):
        await pane.evaluate("pane => pane.scrollTop = 0")
        if await texts.first.text_content() == "line 1":
            break
        await asyncio.sleep(0.2)
    await expect(texts.first).to_have_text("line 1")
    assert await pane.locator(".msg").count() == 170


async def test_reconnects_after_a_server_restart_and_fills_the_gap(
    start_web, browser, tmp_path
) -> None:
    """When the server restarts, the page logs in again with its token by itself,
    shows what was said while it was away, and sends what was typed meanwhile."""
    web = await start_web()
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD, remember=True)
    # Attempts made while the server is down fail, and chromium says so.
    browser.expected.append(r"WebSocket connection to .* failed")
    running = web.running
    config = running.server.config
    await running.close()
    await expect(tab.page.locator("#status")).to_contain_text("reconnecting")
    await tab.type("into the void")
    await expect(tab.messages()).to_contain_text(
        "offline: queued for #general, sent once reconnected"
    )
    again = await start_web_at(start_web, config, web)
    bob = await again.running.user("bob")
    await bob.ok("join", room="general")
    await bob.ok("say", room="general", text="said while you were away")
    await expect(tab.page.locator("#status")).to_have_text("online", timeout=20000)
    await expect(tab.messages()).to_contain_text("said while you were away")
    await expect(tab.messages().locator(".msg .text", has_text="into the void")).to_have_count(1)
    await tab.type("back again")
    await bob.event("message", text="back again", **{"from": "ana"})


async def start_web_at(start_web, config, old: WebRunning) -> WebRunning:
    """The same server again, on the ports it had."""
    return await start_web(data=config.data, port=old.running.port, web_port=old.web_port)


async def test_remember_me_chooses_the_storage(web: WebRunning, browser) -> None:
    """The token is kept in localStorage with "remember me", else in sessionStorage,
    and a new tab of a remembered login goes straight to the chat."""
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    assert await tab.page.evaluate("localStorage.length") == 0
    assert "token" in await tab.page.evaluate("sessionStorage.getItem('nexus.login')")
    other = await browser.tab()
    await other.register(web.base, "bob", PASSWORD, remember=True)
    assert "token" in await other.page.evaluate("localStorage.getItem('nexus.login')")
    await other.page.reload()
    await expect(other.page.locator("#title")).to_have_text("#general")


async def test_phone_sized_screen_and_screenshot(web: WebRunning, browser, tmp_path) -> None:
    """On a phone the side panel folds behind a menu button; a desktop screenshot of
    a conversation is taken (written to docs/web.png with NEXUS_WRITE_SCREENSHOT=1)."""
    ana = await web.running.user("ana")
    await ana.ok("join", room="tech")
    phone = await browser.tab(width=390, height=760)
    await phone.register(web.base, "carol", PASSWORD)
    await expect(phone.page.locator("#menu")).to_be_visible()
    await expect(phone.page.locator("#sidebar")).not_to_be_in_viewport()
    await phone.page.click("#menu")
    await expect(phone.page.locator("#sidebar")).to_be_in_viewport()
    await phone.buffer("#general")
    await expect(phone.page.locator("#sidebar")).not_to_be_in_viewport()
    width = await phone.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390

    desk = await browser.tab(width=1000, height=560)
    await desk.register(web.base, "bob", PASSWORD)
    await ana.ok("join", room="general")
    lines = [
        (ana, "morning all, standup in 5?"),
        (ana, "deploy moved to 16:00, @bob please check the migration first"),
        (ana, "same time tomorrow as #general/1"),
    ]
    for peer, text in lines:
        await peer.ok("say", room="general", text=text)
    await desk.type("on it: https://ci.example.org/runs/4211")
    link = await ana.event("message", room="general", **{"from": "bob"})
    await ana.ok("react", room="general", seq=link["seq"], emoji="👍")
    await ana.ok("say", room="general", text="great, thanks", reply_to=link["seq"])
    await phone.type("thanks both, notes are in the wiki")
    await ana.ok("dm", to="bob", text="lunch after?")
    await expect(desk.messages()).to_contain_text("notes are in the wiki")
    await expect(desk.messages().locator(".reaction")).to_have_text("👍 1")
    await expect(desk.messages().locator("a.msglink")).to_have_text("#general/1")
    await expect(desk.page.locator(".buffer", has_text="ana")).to_be_visible()
    shot = tmp_path / "web.png"
    await desk.page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("NEXUS_WRITE_SCREENSHOT"):
        (ROOT / "docs" / "web.png").write_bytes(shot.read_bytes())


# -- protocol 2: conversations ---------------------------------------------------


async def test_an_edit_and_a_reaction_made_in_the_page_reach_tcp(web: WebRunning, browser) -> None:
    """Editing one's message and reacting to one from the page are seen by a TCP
    client; the page shows the edit and the reaction it gets back."""
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    await tab.type("helo wrold")
    said = await bob.event("message", room="general", **{"from": "ana"})
    mine = tab.messages().locator(f'.msg[data-seq="{said["seq"]}"]')
    await mine.hover()
    await mine.locator("button[title=edit]").click()
    await expect(tab.page.locator("#context-text")).to_contain_text("editing ana: helo wrold")
    await expect(tab.page.locator("#input")).to_have_value("helo wrold")
    await tab.page.fill("#input", "hello world")
    await tab.page.press("#input", "Enter")
    edited = await bob.event("edited")
    assert edited["message"]["seq"] == said["seq"]
    assert edited["message"]["text"] == "hello world" and "edited" in edited["message"]
    await expect(mine.locator(".text")).to_have_text("hello world")
    await expect(mine.locator(".edited")).to_be_visible()
    await bob.ok("say", room="general", text="shipping it")
    theirs = tab.messages().locator(".msg", has_text="shipping it")
    await theirs.hover()
    await theirs.locator("button[title=react]").click()
    await tab.page.locator(".picker .emoji", has_text="🎉").click()
    reaction = await bob.event("reaction")
    assert (reaction["user"], reaction["emoji"], reaction["on"]) == ("ana", "🎉", True)
    chip = theirs.locator(".reaction")
    await expect(chip).to_have_text("🎉 1")
    await chip.click()  # again: taken back
    assert (await bob.event("reaction"))["on"] is False
    await expect(chip).to_have_count(0)


async def test_reply_erase_away_and_search_from_the_page(web: WebRunning, browser) -> None:
    """A reply carries reply_to, an erase (confirmed) reaches TCP as erased, /away
    is seen in presence, and /search lists what it finds."""
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    asked = await bob.ok("say", room="general", text="lunch at noon?")
    question = tab.messages().locator(".msg", has_text="lunch at noon?")
    await question.hover()
    await question.locator("button[title=reply]").click()
    await tab.type("yes, the usual place")
    answer = await bob.event("message", **{"from": "ana"})
    assert answer["reply_to"] == asked["seq"]
    reply = tab.messages().locator(f'.msg[data-seq="{answer["seq"]}"]')
    await expect(reply.locator(".quote")).to_contain_text("bob: lunch at noon?")
    await reply.hover()
    await reply.locator("button[title=erase]").click()
    await tab.page.click("#ask-ok")
    erased = await bob.event("erased")
    assert erased["message"]["seq"] == answer["seq"] and erased["message"]["erased"] is True
    await expect(reply.locator(".erased")).to_have_text("(message erased)")
    await tab.type("/away at lunch")
    presence = await bob.event("presence", user="ana")
    assert presence["away"] == "at lunch"
    await tab.type("/search noon")
    await expect(tab.messages()).to_contain_text("1 found")
    await expect(tab.messages().locator(".note").last).to_contain_text("bob: lunch at noon?")


async def test_read_markers_are_shared_with_the_users_other_sessions(
    web: WebRunning, browser
) -> None:
    """What the page reads reaches the user's TCP session as a read marker, and what
    the TCP session marks read clears the page's counts."""
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/join tech")
    await expect(tab.page.locator("#title")).to_have_text("#tech")
    terminal = await web.running.peer()
    await terminal.ok("login", username="ana", password=PASSWORD)
    bob = await web.running.user("bob")
    await bob.ok("join", room="tech")
    seen = await bob.ok("say", room="tech", text="read me")
    marker = await terminal.event("read", room="tech")
    assert marker["seq"] == seen["seq"]
    unseen = await bob.ok("say", room="general", text="in general")
    general = tab.page.locator(".buffer", has_text="#general")
    await expect(general.locator(".count")).to_have_text("1")
    await terminal.ok("read", room="general", seq=unseen["seq"])
    await expect(general.locator(".badge")).to_have_count(0)


async def test_a_mention_while_the_tab_is_hidden_raises_a_notification(
    web: WebRunning, browser
) -> None:
    """A message naming the user, or a DM, while the tab is hidden becomes a
    browser notification; a message that names nobody does not."""
    tab = await browser.tab()
    # The test's stand-ins for a hidden tab and the Notification API.
    await tab.page.add_init_script(
        """
        window.shown = [];
        Object.defineProperty(document, "hidden", {get: () => window.away === true});
        window.Notification = class {
          constructor(title, options) { window.shown.push([title, options.body]); }
          addEventListener() {}
        };
        window.Notification.permission = "granted";
        window.Notification.requestPermission = async () => "granted";
        """
    )
    await tab.register(web.base, "ana", PASSWORD)
    await tab.page.evaluate(
        "window.away = true; document.dispatchEvent(new Event('visibilitychange'))"
    )
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    await bob.ok("say", room="general", text="nobody in particular")
    await bob.ok("say", room="general", text="@ana the build is green")
    await bob.ok("dm", to="ana", text="coffee?")
    await expect(tab.page.locator(".buffer", has_text="#general").locator(".mention")).to_have_text(
        "@1"
    )
    await expect(tab.page.locator(".buffer", has_text="bob")).to_be_visible()
    shown = await tab.page.evaluate("window.shown")
    assert shown == [["bob in #general", "@ana the build is green"], ["bob", "coffee?"]]


async def test_the_pages_modules_parse_commands_and_find_mentions(web: WebRunning, browser) -> None:
    """The page's own modules, run in the browser: command lines parse as in the
    terminal client, and mentions are found at word boundaries only."""
    tab = await browser.tab()
    await tab.page.goto(web.base + "/")
    result = await tab.page.evaluate(
        """async () => {
          const c = await import("/commands.js");
          const s = await import("/state.js");
          const args = (line) => { const p = c.parse(line); return [p[0].name, p[1]]; };
          const error = (line) => {
            try { c.parse(line); return null; } catch (e) { return e.message; }
          };
          return {
            join: args("/join  tech"),
            plain: args("hello /there"),
            slash: args("//etc/hosts is here"),
            create: args("/create plans release on friday"),
            blank: c.parse("   "),
            missing: error("/join"),
            extra: error("/leave a b"),
            unknown: error("/frob"),
            mentions: [
              s.mentions({text: "ping ana: now"}, "ana"),
              s.mentions({text: "@Ana!"}, "ana"),
              s.mentions({text: "banana"}, "ana"),
              s.mentions({text: "ana_b here"}, "ana"),
              s.mentions({text: "ana", mentions: []}, "ana"),
              s.mentions({text: "x", mentions: ["Ana"]}, "ana"),
            ],
          };
        }"""
    )
    assert result["join"] == ["join", {"room": "tech"}]
    assert result["plain"] == ["say", {"text": "hello /there"}]
    assert result["slash"] == ["say", {"text": "/etc/hosts is here"}]
    assert result["create"] == ["create", {"room": "plans", "topic": "release on friday"}]
    assert result["blank"] is None
    assert result["missing"] == "usage: /join <room>"
    assert result["extra"] == "too many arguments; usage: /leave [room]"
    assert result["unknown"] == "unknown command /frob: /help lists them"
    assert result["mentions"] == [True, True, False, False, False, True]


async def test_the_pages_typing_waits_for_what_the_server_would_tell(
    web: WebRunning, browser
) -> None:
    """The page's TypingSender, run in the browser with its clock given: a new
    message's `on` waits a second from the last one told there (the server
    would not pass it on), another buffer counts on its own, and an `on` goes
    again every 3 s while the typing goes on."""
    tab = await browser.tab()
    await tab.page.goto(web.base + "/")
    said = await tab.page.evaluate(
        """async () => {
          const t = await import("/typing.js");
          const said = [];
          const sender = new t.TypingSender(async (cmd, args) => said.push([args.room, args.on]));
          const den = {kind: "room", name: "den"}, tech = {kind: "room", name: "tech"};
          sender.typed(den, "ok", false, 10000);
          sender.sent();
          sender.typed(den, "a", false, 10400);
          sender.typed(tech, "b", false, 10600);
          sender.typed(den, "an", false, 10900);
          sender.typed(den, "and", false, 11000);
          sender.typed(den, "and so", false, 13500);
          sender.typed(den, "and so on", false, 14000);
          return said;
        }"""
    )
    assert said == [
        ["den", True],
        ["tech", True],
        ["tech", False],
        ["den", True],  # 11.0 s: a second after the last
        ["den", True],  # 14.0 s: 3 s on, still typing
    ]


async def test_whois_of_a_guest_says_it_has_no_account(start_web, browser) -> None:
    """With IRC guests let in, /whois of one in the page says there is no account."""
    web = await start_web(irc_port=0, irc_guests=True)
    irc = IrcServer(web.running)
    await irc.guest("gus")
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/whois gus")
    await expect(tab.messages()).to_contain_text("gus (online, a guest: no account)")
    await tab.type("/whois ana")
    await expect(tab.messages()).to_contain_text("ana (online)")
    await irc.close()


async def test_who_is_typing_shows_under_the_input(start_web, browser) -> None:
    """Typing in the page tells the others (a TCP client gets `typing`); the
    page shows who else types in the buffer shown, until their message comes
    or they stop."""
    clock = ManualClock()  # the server's: an `on` a second apart is told
    web = await start_web(clock=clock)
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    await expect(tab.page.locator(".people")).to_contain_text("bob")
    await tab.page.type("#input", "hel")
    on = await bob.event("typing", room="general")
    assert on == {"event": "typing", "room": "general", "user": "ana", "on": True}
    await tab.page.fill("#input", "")
    await tab.page.dispatch_event("#input", "input")
    assert (await bob.event("typing", room="general"))["on"] is False

    line = tab.page.locator("#typing")
    await expect(line).to_have_text("")
    await bob.ok("typing", room="general")
    await expect(line).to_have_text("bob is typing…")
    await bob.ok("say", room="general", text="here I am")
    await expect(line).to_have_text("")
    clock.advance(1.0)
    await bob.ok("typing", room="general")
    await expect(line).to_have_text("bob is typing…")
    await bob.ok("typing", room="general", on=False)
    await expect(line).to_have_text("")
    # Nobody types in a buffer not shown: a DM's typing waits for its buffer.
    await bob.ok("typing", **{"with": "ana"})
    await expect(line).to_have_text("")


async def test_pins_from_the_page_in_the_header(web: WebRunning, browser) -> None:
    """The owner pins a message from its actions; the header counts the
    pins and lists them (the latest first), each opening its message; a TCP
    member is told."""
    tab = await browser.tab()
    await tab.register(web.base, "olga", PASSWORD)
    bob = await web.running.user("bob")
    await tab.type("/create den")
    await expect(tab.page.locator("#title")).to_have_text("#den")  # made, and shown
    await bob.ok("join", room="den")
    await bob.ok("say", room="den", text="the plan is on the wiki")
    message = tab.messages().locator(".msg", has_text="the plan is on the wiki")
    await message.hover()
    await message.locator("button[title='pin or unpin']").click()
    pinned = await bob.event("pinned", room="den")
    assert pinned["by"] == "olga" and pinned["on"] is True
    header = tab.page.locator("#pins")
    await expect(header).to_have_text("📌 1")
    await header.click()
    await expect(tab.page.locator("#results-title")).to_have_text("1 message pinned in #den")
    result = tab.page.locator("#result-list .result")
    await expect(result).to_contain_text("the plan is on the wiki")
    await expect(result).to_contain_text("pinned by olga")
    await bob.ok("say", room="den", text="later")
    await message.hover()
    await message.locator("button[title='pin or unpin']").click()
    assert (await bob.event("pinned", room="den"))["on"] is False
    await expect(header).to_be_hidden()


async def test_formatting_is_drawn_and_plain_stays_as_typed(web: WebRunning, browser) -> None:
    """Formatting is built as elements (never HTML from the text); a plain
    message shows its asterisks; HTML inside formatting is still text."""
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    bob = await web.running.user("bob")
    await bob.ok("join", room="general")
    text = (
        "**ship** it _now_ ~~never~~ `make <b>test</b>` [docs](https://example.org/d)\n"
        "> quoted\n- one\n```\n<script>alert(1)</script>\n```\n#general/1"
    )
    await bob.ok("say", room="general", text=text)
    body = tab.messages().locator(".msg").last.locator(".text")
    await expect(body.locator("strong")).to_have_text("ship")
    await expect(body.locator("em")).to_have_text("now")
    await expect(body.locator("s")).to_have_text("never")
    await expect(body.locator("code.md-inline")).to_have_text("make <b>test</b>")
    await expect(body.locator("a[href='https://example.org/d']")).to_have_text("docs")
    await expect(body.locator(".md-quote")).to_have_text("quoted")
    await expect(body.locator(".md-item")).to_have_text("• one")
    await expect(body.locator("pre.md-code")).to_have_text("<script>alert(1)</script>")
    await expect(body.locator("a.msglink")).to_have_text("#general/1")
    assert await body.locator("b, script").count() == 0
    await bob.ok("say", room="general", text="**as typed**", plain=True)
    plain = tab.messages().locator(".msg").last.locator(".text")
    await expect(plain).to_have_text("**as typed**")
    assert await plain.locator("strong").count() == 0
