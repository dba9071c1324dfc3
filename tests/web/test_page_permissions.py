"""The web page's permission table is the server's, in one place: the server
serves /permissions.json, made from nexus.server.permissions when it starts,
and the page decides from it. A change to the Python table reaches the page."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nexus.server import permissions
from nexus.server.frontends.http import SECURITY_HEADERS
from nexus.server.permissions import OVER, RULES, Role, Target
from tests.conftest import PASSWORD
from tests.web.browser import Tab, expect, needs_browser
from tests.web.conftest import WebRunning

pytestmark = needs_browser()


def _table() -> dict[str, Any]:
    """The table as the page should get it, read from the Python one, in its orders."""
    return {
        "roles": [role.value for role in Role],
        "targets": [target.value for target in Target],
        "rules": {
            action: [role.value for role in Role if role in held] for action, held in RULES.items()
        },
        "over": {
            action: {
                role.value: [target.value for target in Target if target in targets[role]]
                for role in Role
                if role in targets
            }
            for action, targets in OVER.items()
        },
    }


async def test_the_table_is_served_from_python_with_the_security_headers(web: WebRunning) -> None:
    """/permissions.json is permissions.RULES and OVER, as JSON, with every
    response's security headers."""
    status, headers, body = await web.get("/permissions.json")
    assert status == 200
    assert headers["content-type"] == "application/json; charset=utf-8"
    for name, value in SECURITY_HEADERS:
        assert headers[name.lower()] == value
    assert json.loads(body) == _table()


def _person(tab: Tab, name: str) -> Any:
    return tab.page.locator(f'.people li[data-name="{name}"]')


async def test_a_change_to_the_python_table_reaches_the_page(
    start_web, browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With members allowed to kick other members in the Python table, the page
    offers a plain member Kick on another, and the kick goes through."""
    monkeypatch.setitem(RULES, "kick", frozenset(Role))
    kick = {**OVER["kick"], Role.MEMBER: frozenset({Target.USER})}
    monkeypatch.setitem(OVER, "kick", kick)
    assert permissions.allowed("kick", {Role.MEMBER}, Target.USER)
    web = await start_web()
    await web.running.user("root")  # the first account is the admin
    bob = await web.running.user("bob")
    await bob.ok("create", room="den")
    carol = await web.running.user("carol")
    await carol.ok("join", room="den")
    tab = await browser.tab(1280, 800)
    await tab.register(web.base, "ana", PASSWORD)
    await tab.type("/join den")
    await expect(tab.page.locator("#title")).to_have_text("#den")
    served = await tab.page.evaluate("fetch('/permissions.json').then((r) => r.json())")
    assert served == _table()
    assert served["rules"]["kick"] == ["admin", "owner", "moderator", "member"]
    await _person(tab, "carol").locator(".person").click()
    menu = _person(tab, "carol").locator(".member-menu")
    await expect(menu.locator(".entry")).to_have_count(3)
    await menu.locator(".entry.kick").click()
    await tab.page.click("#ask-ok")
    kicked = await carol.event("kicked", room="den")
    assert (kicked["user"], kicked["by"]) == ("carol", "ana")
