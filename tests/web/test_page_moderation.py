"""Moderation in the web client, in a real browser against a real server, next to
TCP protocol clients: the member list's menu, the confirm dialog, roles, kicks,
bans, mutes, invitations to private rooms and suspensions.

The first account registered on a test's fresh store is a server admin, so each
test registers `root` over TCP first and the others hold only the roles given."""

from __future__ import annotations

import itertools
from typing import Any

from nexus.server.permissions import OVER, RULES, Role, Target, allowed
from tests.conftest import PASSWORD
from tests.web.browser import Tab, expect, needs_browser
from tests.web.conftest import WebRunning
from tests.wire import Peer

pytestmark = needs_browser()

# Rights the page never offers: joining and reading are answered by the server.
SERVER_ONLY = {"join_private", "read_private"}


async def _admin_first(web: WebRunning) -> Peer:
    """`root`, registered first so that it, and nobody after, is an admin."""
    return await web.running.user("root")


def _person(tab: Tab, name: str) -> Any:
    return tab.page.locator(f'.people li[data-name="{name}"]')


async def _menu(tab: Tab, name: str) -> list[str]:
    """Opens `name`'s menu in the member list; the actions it offers."""
    await tab.page.keyboard.press("Escape")  # closes the menu open, if any
    person = _person(tab, name)
    await person.locator(".person").click()
    menu = person.locator(".member-menu")
    await expect(menu).to_be_visible()
    return await menu.locator(".entry").evaluate_all("nodes => nodes.map(n => n.dataset.action)")


async def test_an_owner_mutes_and_kicks_from_the_member_list(web: WebRunning, browser) -> None:
    """The owner of a room opens a member's menu, mutes them and kicks them with a
    reason through the confirm dialog; a TCP client sees both, the page marks the
    member muted, then drops them from the list, with a line for each. /ban of
    the kicked user keeps them out until the unban button of /bans."""
    await _admin_first(web)
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/create den")
    await expect(tab.page.locator("#title")).to_have_text("#den")
    bob = await web.running.user("bob")
    await bob.ok("join", room="den")
    await expect(_person(tab, "ana").locator(".role.owner")).to_have_text("owner")
    assert await _menu(tab, "bob") == ["query", "whois", "op", "mute", "kick", "ban"]
    await _person(tab, "bob").locator(".entry.mute").click()
    muted = await bob.event("muted", room="den")
    assert (muted["user"], muted["by"], muted["on"]) == ("bob", "ana", True)
    await expect(_person(tab, "bob").locator(".role.muted")).to_have_text("muted")
    await expect(tab.messages()).to_contain_text("ana muted bob in #den")
    await bob.fails("muted", "say", room="den", text="let me speak")

    assert "unmute" in await _menu(tab, "bob")
    await _person(tab, "bob").locator(".entry.kick").click()
    dialog = tab.page.locator("#ask")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("Kick bob from #den?")
    await tab.page.fill("#reason", "flooding the room")
    await tab.page.click("#ask-ok")
    kicked = await bob.event("kicked", room="den")
    assert (kicked["user"], kicked["by"], kicked["reason"], kicked["banned"]) == (
        "bob",
        "ana",
        "flooding the room",
        False,
    )
    await expect(dialog).to_be_hidden()
    kicked_line = "bob was kicked from #den by ana: flooding the room"
    await expect(tab.messages()).to_contain_text(kicked_line)
    await expect(_person(tab, "bob")).to_have_count(0)

    await tab.type("/ban bob no more")  # no longer a member: banned without an event
    await expect(tab.messages().locator(".note .text").last).to_have_text(
        "bob is banned from #den: no more"
    )
    await bob.fails("banned", "join", room="den")
    await tab.type("/bans")
    listed = tab.messages().locator(".note", has_text="bob, by ana")
    await expect(listed).to_contain_text(": no more")
    await listed.locator(".note-action").click()  # unban
    await expect(tab.messages().locator(".note .text").last).to_have_text(
        "bob is no longer banned from #den"
    )
    await bob.ok("join", room="den")


async def test_cancelling_the_dialog_kicks_nobody(web: WebRunning, browser) -> None:
    """Cancel (or Escape) in the confirm dialog sends nothing: the member stays."""
    await _admin_first(web)
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/create den")
    bob = await web.running.user("bob")
    await bob.ok("join", room="den")
    await _menu(tab, "bob")
    await _person(tab, "bob").locator(".entry.ban").click()
    await tab.page.click("#ask-cancel")
    await _menu(tab, "bob")
    await _person(tab, "bob").locator(".entry.kick").click()
    await tab.page.keyboard.press("Escape")
    await expect(tab.page.locator("#ask")).to_be_hidden()
    await tab.type("/ping")  # a request after the dialogs: its answer means they sent nothing
    await expect(tab.messages()).to_contain_text("pong in")
    await bob.no_event("kicked", wait=0.3)
    await bob.ok("say", room="den", text="still here")
    await expect(tab.messages()).to_contain_text("still here")


async def test_a_member_without_the_role_is_offered_no_moderation(web: WebRunning, browser) -> None:
    """A plain member's menus hold no moderation; a typed /kick gets one readable
    error line. Made a moderator over TCP, the page says so and offers mute, kick
    and ban on a member, but nothing on the owner; muted, its input says so."""
    await _admin_first(web)
    bob = await web.running.user("bob")
    await bob.ok("create", room="den")
    carol = await web.running.user("carol")
    await carol.ok("join", room="den")
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/join den")
    await expect(tab.page.locator("#title")).to_have_text("#den")
    assert await _menu(tab, "carol") == ["query", "whois"]
    assert await _menu(tab, "bob") == ["query", "whois"]
    await tab.type("/kick carol")
    error = tab.messages().locator(".note.error .text").last
    await expect(error).to_have_text("you may not kick here (not_allowed)")
    await tab.type("/op carol now")
    await expect(error).to_have_text("usage: /op [#room] <user>")
    await tab.type("/help kick")
    await expect(tab.messages().locator(".note .text").last).to_have_text(
        "/kick [#room] <user> [reason...]: remove a member (they may join again)"
        " (in the current room, or the #room named first)"
    )

    await bob.ok("op", room="den", username="ana")
    await expect(tab.messages()).to_contain_text("bob made ana a moderator of #den")
    await expect(_person(tab, "ana").locator(".role.moderator")).to_have_text("mod")
    assert await _menu(tab, "carol") == ["query", "whois", "mute", "kick", "ban"]
    assert await _menu(tab, "bob") == ["query", "whois"]
    await bob.ok("deop", room="den", username="ana")
    await expect(tab.messages()).to_contain_text("bob took the moderator role of ana in #den")
    assert await _menu(tab, "carol") == ["query", "whois"]
    await bob.ok("mute", room="den", username="ana")
    await expect(tab.messages()).to_contain_text("bob muted you in #den")
    await expect(tab.page.locator("#input")).to_have_attribute(
        "placeholder", "you are muted in #den"
    )
    await tab.type("may I?")
    await expect(error).to_have_text(
        "not sent to #den: you are muted in #den (muted); the text is back in the input"
    )


async def test_a_member_made_admin_meanwhile_is_offered_no_restriction(
    web: WebRunning, browser
) -> None:
    """Making someone an admin sends no event: opening their menu asks the server,
    so the owner is then offered no kick, ban, mute or op on them, and the list
    badges them."""
    root = await _admin_first(web)
    bob = await web.running.user("bob")  # online before the page: no arrival to ask about
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/create den")
    await expect(tab.page.locator("#title")).to_have_text("#den")
    await bob.ok("join", room="den")
    await expect(_person(tab, "bob")).to_have_count(1)
    await expect(_person(tab, "bob").locator(".role")).to_have_count(0)
    await root.ok("admin", username="bob", on=True)
    await _menu(tab, "bob")
    await expect(_person(tab, "bob").locator(".role.admin")).to_have_text("admin")
    entries = _person(tab, "bob").locator(".member-menu .entry")
    await expect(entries).to_have_count(2)
    assert await _menu(tab, "bob") == ["query", "whois"]


async def test_a_ban_takes_the_room_from_the_banned_users_page(web: WebRunning, browser) -> None:
    """Banned over TCP, the page leaves the room at once and says who and why; a
    /join is refused with a readable line, and the owner's /bans lists it."""
    await _admin_first(web)
    bob = await web.running.user("bob")
    await bob.ok("create", room="den")
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/join den")
    await expect(tab.page.locator("#title")).to_have_text("#den")
    await bob.ok("ban", room="den", username="ana", reason="spam")
    await expect(tab.page.locator("#title")).to_have_text("#general")
    await expect(tab.page.locator("#rooms")).not_to_contain_text("#den")
    await expect(tab.messages()).to_contain_text("you were banned from #den by bob: spam")
    await tab.type("/join den")
    error = tab.messages().locator(".note.error .text").last
    await expect(error).to_have_text("you are banned from #den (banned)")
    await expect(tab.page.locator("#title")).to_have_text("#general")
    listed = await bob.ok("bans", room="den")
    assert [entry["user"] for entry in listed["bans"]] == ["ana"]


async def test_an_invitation_made_while_away_is_in_the_room_list_at_login(
    web: WebRunning, browser
) -> None:
    """Invited while no page was open, ana finds #den in the room list marked
    invited when she logs in; a click joins it."""
    await _admin_first(web)
    account = await web.running.user("ana")
    await account.close()
    bob = await web.running.user("bob")
    await bob.ok("create", room="den", private=True)
    await bob.ok("invite", room="den", username="ana")
    tab = await browser.tab()
    await tab.page.goto(web.base + "/")
    await tab.page.fill("#username", "ana")
    await tab.page.fill("#password", PASSWORD)
    await tab.page.click("#submit")
    invite = tab.page.locator(".buffer.invite")
    await expect(invite).to_contain_text("#den")
    await expect(invite).to_have_attribute("title", "you are invited: click to join")
    await invite.click()
    await expect(tab.page.locator("#title")).to_have_text("#den")
    await expect(invite).to_have_count(0)


async def test_an_invitation_to_a_private_room_shows_and_joins(web: WebRunning, browser) -> None:
    """A private room refuses a plain /join; an invitation made over TCP shows as a
    line with a join button and in the room list; a click joins, and the room
    shows as private. The page's /invite then lets a TCP user in."""
    await _admin_first(web)
    bob = await web.running.user("bob")
    await bob.ok("create", room="den", private=True)
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/join den")
    error = tab.messages().locator(".note.error .text").last
    await expect(error).to_have_text("#den is private: it takes an invitation (invite_only)")
    await bob.ok("invite", room="den", username="ana")
    line = tab.messages().locator(".note.invite").last
    await expect(line).to_contain_text("bob invited you to #den (private)")
    await expect(tab.page.locator(".buffer.invite")).to_contain_text("#den")
    await line.locator(".note-action").click()
    await expect(tab.page.locator("#title")).to_have_text("#den")
    await expect(tab.page.locator("#title")).to_have_class("title private")
    assert (await bob.event("joined", room="den"))["user"] == "ana"
    await expect(tab.page.locator(".buffer.invite")).to_have_count(0)
    await expect(_person(tab, "bob").locator(".role.owner")).to_have_text("owner")
    carol = await web.running.user("carol")
    await tab.type("/invite carol")
    invited = await carol.event("invited")
    assert (invited["room"]["name"], invited["room"]["private"], invited["by"]) == (
        "den",
        True,
        "ana",
    )
    await expect(tab.messages().locator(".note .text").last).to_have_text(
        "carol was invited to #den"
    )
    await carol.ok("join", room="den")


async def test_an_admin_suspends_from_the_list_and_the_page_of_the_suspended_logs_out(
    web: WebRunning, browser
) -> None:
    """An admin's menu offers suspension (confirmed, with a reason); the suspended
    user's page goes back to the login form with the reason and does not retry."""
    root = await _admin_first(web)
    await root.ok("join", room="general")
    admin = await browser.tab()
    await admin.page.goto(web.base + "/")
    await admin.page.fill("#username", "root")
    await admin.page.fill("#password", PASSWORD)
    await admin.page.click("#submit")
    await expect(admin.page.locator("#title")).to_have_text("#general")
    tab = await browser.tab()
    await tab.register(web.base, "ana", PASSWORD)
    await expect(_person(admin, "ana")).to_have_count(1)
    await expect(_person(admin, "root").locator(".role.admin")).to_have_text("admin")
    offered = await _menu(admin, "ana")
    assert offered == ["query", "whois", "op", "mute", "kick", "ban", "suspend"]
    await _person(admin, "ana").locator(".entry.suspend").click()
    await admin.page.fill("#reason", "spam")
    await admin.page.click("#ask-ok")
    await expect(admin.messages()).to_contain_text("ana is suspended: spam")
    await expect(tab.page.locator("#login")).to_be_visible()
    await expect(tab.page.locator("#login-error")).to_have_text("suspended by root: spam")
    assert await tab.page.evaluate("sessionStorage.length + localStorage.length") == 0


async def test_the_pages_permission_table_is_the_servers(web: WebRunning, browser) -> None:
    """moderation.js decides as nexus/server/permissions.py does, for every action,
    every set of roles and every kind of target."""
    role_sets = [
        sorted(role.value for role in held)
        for size in range(len(Role) + 1)
        for held in itertools.combinations(Role, size)
    ]
    targets = [None, *(target.value for target in Target)]
    page_actions = [action for action in RULES if action not in SERVER_ONLY]
    cases = [
        (action, held, target)
        for action in page_actions
        for held in role_sets
        for target in targets
    ]
    expected = [
        allowed(
            action,
            {Role(r) for r in held},
            None if target is None else Target(target),
        )
        if target is None or action in OVER
        else None
        for action, held, target in cases
    ]
    tab = await browser.tab()
    await tab.page.goto(web.base + "/")
    found = await tab.page.evaluate(
        """async (cases) => {
          const m = await import("/moderation.js");
          return cases.map(([action, held, target]) =>
            target === null || action in m.OVER ? m.allowed(action, new Set(held), target) : null);
        }""",
        [[action, held, target] for action, held, target in cases],
    )
    wrong = [case for case, want, got in zip(cases, expected, found, strict=True) if want != got]
    assert wrong == []
    assert len(cases) > 1000


async def test_the_pages_modules_offer_moderation_by_role(web: WebRunning, browser) -> None:
    """The page's modules, run in the browser: the member menu offers by role (owner,
    moderator, admin, member, oneself), moderation commands parse `[#room] <user>
    [reason...]`, and kicked, muted and room_updated events change the state."""
    tab = await browser.tab()
    await tab.page.goto(web.base + "/")
    result = await tab.page.evaluate(
        """async () => {
          const m = await import("/moderation.js");
          const s = await import("/state.js");
          const c = await import("/commands.js");
          const state = new s.ChatState("ana");
          const info = {name: "den", topic: "", owner: "Olga", moderators: ["Mo"], muted: ["Bob"]};
          const den = state.addRoom(info, []);
          for (const name of ["Olga", "Mo", "Bob", "Root"]) state.seen("den", name);
          state.learn({username: "Root", admin: true});
          const menus = () => Object.fromEntries(
            ["ana", "olga", "mo", "bob", "root"].map((n) => [n, m.offered(state, den, n)]));
          const asMember = menus();
          state.apply({event: "room_updated", by: "Olga",
                       room: {...info, moderators: ["ana", "Mo"]}});
          const asModerator = menus();
          state.learn({username: "ana", admin: true});
          const asAdmin = menus();
          state.apply({event: "muted", room: "den", user: "Bob", by: "ana", on: false});
          state.apply({event: "kicked", room: "den", user: "Mo", by: "ana", reason: "",
                       banned: false});
          const people = state.people("den").map((p) => [p.name, p.role, p.muted]);
          const notes = den.notes.map((n) => n.text);
          const here = c.moderationTarget(state, "bob", "too loud");
          state.apply({event: "kicked", room: "den", user: "ANA", by: "Olga",
                       reason: "bye", banned: true});
          const parse = (line) => { const p = c.parse(line); return [p[0].name, p[1]]; };
          const error = (line) => {
            try { c.parse(line); return null; } catch (e) { return e.message; }
          };
          return {
            asMember, asModerator, asAdmin, people, notes,
            gone: state.rooms.has("den"),
            told: state.system.notes.map((n) => n.text),
            kick: parse("/kick #den bob too loud"),
            target: c.moderationTarget(state, "#den", "bob too loud"),
            here,
            help: ["op", "deop", "kick", "ban", "unban", "bans", "mute", "unmute", "invite",
                   "admin", "suspend", "unsuspend"].map((n) => {
              const cmd = c.COMMANDS.get(n);
              return [c.synopsis(cmd), cmd.protocol];
            }),
            missing: error("/ban"),
            lonely: (() => { try { c.moderationTarget(state, "#den", null); }
                             catch (e) { return e.message; } })(),
          };
        }"""
    )
    assert result["asMember"] == {"ana": [], "olga": [], "mo": [], "bob": [], "root": []}
    assert result["asModerator"] == {
        "ana": [],
        "olga": [],
        "mo": [],
        "bob": ["unmute", "kick", "ban"],
        "root": [],
    }
    assert result["asAdmin"] == {
        "ana": [],
        "olga": ["suspend"],  # an owner of a room, but no admin
        "mo": ["deop", "mute", "kick", "ban", "suspend"],
        "bob": ["op", "unmute", "kick", "ban", "suspend"],
        "root": [],
    }
    assert result["people"] == [
        ["ana", "admin", False],  # nobody is online in this state: by name
        ["Bob", None, False],
        ["Olga", "owner", False],
        ["Root", "admin", False],
    ]
    assert result["notes"] == [
        "Olga made ana a moderator of #den",
        "ana unmuted Bob in #den",
        "Mo was kicked from #den by ana (no reason given)",
    ]
    assert result["gone"] is False
    assert result["told"] == ["you were banned from #den by Olga: bye"]
    assert result["kick"] == ["kick", {"user": "#den", "rest": "bob too loud"}]
    assert result["target"] == {"room": "den", "user": "bob", "rest": "too loud"}
    assert result["here"] == {"room": "den", "user": "bob", "rest": "too loud"}
    assert result["missing"] == "usage: /ban [#room] <user> [reason...]"
    assert result["help"] == [
        ["/op [#room] <user>", 2],
        ["/deop [#room] <user>", 2],
        ["/kick [#room] <user> [reason...]", 2],
        ["/ban [#room] <user> [reason...]", 2],
        ["/unban [#room] <user> [reason...]", 2],
        ["/bans [room]", 2],
        ["/mute [#room] <user>", 2],
        ["/unmute [#room] <user>", 2],
        ["/invite [#room] <user>", 2],
        ["/admin <user> [on]", 2],
        ["/suspend <user> [reason...]", 2],
        ["/unsuspend <user> [reason...]", 2],
    ]
    assert result["lonely"] == "name the user after the room"
