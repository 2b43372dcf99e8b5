"""tools/md_html.py: the Markdown the docs use becomes HTML; every other character stays text."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools import md_html

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("md", "want"),
    [
        ("# Title", '<h1 id="title">Title</h1>'),
        ("## Cache bytes (kvcalc)", '<h2 id="cache-bytes-kvcalc">Cache bytes (kvcalc)</h2>'),
        ("a `b<c>` **d** *e*", "<p>a <code>b&lt;c&gt;</code> <strong>d</strong> <em>e</em></p>"),
        ("see [table](validation.html#x)", '<p>see <a href="validation.html#x">table</a></p>'),
        ("[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>"),
        ("<!-- hidden -->\ntext", "<p>text</p>"),
        ("- one\n- two", "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"),
        ("<img src=x onerror=alert(1)>", "<p>&lt;img src=x onerror=alert(1)&gt;</p>"),
        ("line one\nline two", "<p>line one line two</p>"),
    ],
)
def test_blocks_and_inline(md: str, want: str) -> None:
    assert md_html.to_html(md).strip() == want


def test_table_with_alignment() -> None:
    md = "| model | 1 token |\n|---|---:|\n| Llama | 131,072 |\n| ✔ x | 2 |"
    out = md_html.to_html(md)
    assert '<th scope="col" style="text-align: right">1 token</th>' in out
    assert '<td style="text-align: right">131,072</td>' in out
    assert out.count("<tr>") == 3 and "<td>✔ x</td>" in out


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_validation_doc_renders_every_row() -> None:
    md = (ROOT / "docs" / "validation.md").read_text(encoding="utf-8")
    page = md_html.page(md, title="t")
    assert page.startswith("<!doctype html>") and '<meta charset="utf-8">' in page
    parser = _Tags()
    parser.feed(page)
    table_lines = [line for line in md.splitlines() if line.startswith("|")]
    delimiters = sum(1 for line in table_lines if set(line) <= set("|-: "))
    assert parser.tags.count("tr") == len(table_lines) - delimiters
    assert parser.tags.count("table") == delimiters
    assert "script" not in parser.tags
    assert "✔ measured exact" in "".join(parser.text)


@given(st.text(max_size=200))
def test_any_text_makes_no_markup_of_its_own(text: str) -> None:
    """Whatever the source, the only tags are the renderer's (no <script>, no attributes from the text)."""
    parser = _Tags()
    parser.feed(md_html.to_html(text))
    allowed = {f"h{n}" for n in range(1, 7)} | {"p", "ul", "li", "table", "thead", "tbody", "tr", "th", "td"}
    assert set(parser.tags) <= allowed | {"code", "strong", "em", "a"}
