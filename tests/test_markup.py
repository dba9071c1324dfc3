"""Protocol 3's formatting subset (nexus/protocol/markup.py): what each
construct parses to, and what stays as typed."""

from __future__ import annotations

import pytest

from nexus.protocol.markup import Block, Span, code_free, parse

BOLD, ITALIC, STRIKE = frozenset({"bold"}), frozenset({"italic"}), frozenset({"strike"})


def line(text: str) -> list[Span]:
    (block,) = parse(text)
    assert block.kind == "line"
    return list(block.spans)


def test_styles_code_and_their_nesting() -> None:
    assert line("**bold** *it* _it_ ~~gone~~ `co*de*`") == [
        Span("bold", styles=BOLD),
        Span(" "),
        Span("it", styles=ITALIC),
        Span(" "),
        Span("it", styles=ITALIC),
        Span(" "),
        Span("gone", styles=STRIKE),
        Span(" "),
        Span("co*de*", "code"),
    ]
    assert line("**bold *and it* too**") == [
        Span("bold ", styles=BOLD),
        Span("and it", styles=BOLD | ITALIC),
        Span(" too", styles=BOLD),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "snake_case_name",
        "2*3*4",
        "a ** b ** c",
        "* not a list, not italic",
        "\\*escaped\\*",
        "# a heading is text",
        "unclosed **bold",
        "`unclosed code",
        "[label](javascript:alert(1))",
        "[label](ftp://example.org)",
        "<b>html</b>",
    ],
)
def test_what_stays_as_typed(text: str) -> None:
    spans = line(text)
    assert all(span.kind == "text" and not span.styles for span in spans), spans
    shown = "".join(span.text for span in spans)
    assert shown == text.replace("\\*", "*")


def test_links_bare_urls_and_links_to_messages() -> None:
    assert line("see [the docs](https://example.org/a_b) now") == [
        Span("see "),
        Span("the docs", "link", url="https://example.org/a_b"),
        Span(" now"),
    ]
    assert line("at https://example.org/p?q=1. Then mailto:x") == [
        Span("at "),
        Span("https://example.org/p?q=1", "link", url="https://example.org/p?q=1"),
        Span(". Then mailto:x"),
    ]
    assert line("[write](mailto:ana@example.org)")[0].url == "mailto:ana@example.org"
    assert line("as said in #general/12.") == [
        Span("as said in "),
        Span("#general/12", "message", room="general", seq=12),
        Span("."),
    ]
    assert line("not#general/12")[0] == Span("not#general/12")


def test_blocks() -> None:
    text = "> said **this**\n- one\n12. two\n```py\nx = `1`\n**y**\n```\nafter"
    assert parse(text) == [
        Block("quote", (Span("said "), Span("this", styles=BOLD))),
        Block("item", (Span("one"),), marker="-"),
        Block("item", (Span("two"),), marker="12."),
        Block("code", (Span("x = `1`\n**y**", "code"),), lang="py"),
        Block("line", (Span("after"),)),
    ]
    # An unclosed fence runs to the end: nothing after it is formatted.
    assert parse("```\n**not bold**") == [Block("code", (Span("**not bold**", "code"),))]


def test_code_free_leaves_out_code_only() -> None:
    text = "hi @ana `@bob` and\n```\n@carol\n```\n@dan *@erin*"
    kept = code_free(text)
    assert "@ana" in kept and "@dan" in kept and "@erin" in kept
    assert "@bob" not in kept and "@carol" not in kept
