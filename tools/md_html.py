"""A small Markdown → HTML renderer for the docs the site ships (stdlib only, used by build.py).

Covers what docs/validation.md (scripts/gen_validation.py) writes: ATX headings, paragraphs, GitHub
tables with column alignment, ``-``/``*`` lists, HTML comments (dropped), and inline ``code``,
``**bold**``, ``*emphasis*`` and ``[links](url)``. Everything else is text: every character is escaped,
so the output holds no markup the source did not ask for.
"""

from __future__ import annotations

import html
import re

_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST = re.compile(r"^\s*[-*]\s+(.*)$")
_DELIM = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_INLINE = re.compile(r"`([^`]+)`|\*\*(.+?)\*\*|\*(?!\s)(.+?)\*|\[([^\]]+)\]\(([^)\s]+)\)")
_SAFE_URL = re.compile(r"^(https?://|#|\.{0,2}/|[\w.-]+(\.html?|\.md|\.json|/)?(#[\w.-]*)?$)")


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-")


def inline(text: str) -> str:
    """Escape ``text`` and render its inline code, bold, emphasis and links."""
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[pos : m.start()]))
        code, bold, em, label, url = m.groups()
        if code is not None:
            out.append(f"<code>{html.escape(code)}</code>")
        elif bold is not None:
            out.append(f"<strong>{inline(bold)}</strong>")
        elif em is not None:
            out.append(f"<em>{inline(em)}</em>")
        elif _SAFE_URL.match(url):
            out.append(f'<a href="{html.escape(url)}">{inline(label)}</a>')
        else:
            out.append(html.escape(m.group(0)))
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _cells(row: str) -> list[str]:
    row = row.strip()
    row = row.removeprefix("|").removesuffix("|")
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)]


def _align(spec: str) -> str:
    spec = spec.strip()
    if spec.startswith(":") and spec.endswith(":"):
        return "center"
    return "right" if spec.endswith(":") else "left" if spec.startswith(":") else ""


def _table(lines: list[str]) -> str:
    head, aligns = _cells(lines[0]), [_align(s) for s in _cells(lines[1])]

    def cell(tag: str, i: int, text: str) -> str:
        a = aligns[i] if i < len(aligns) else ""
        style = f' style="text-align: {a}"' if a else ""
        scope = ' scope="col"' if tag == "th" else ""
        return f"<{tag}{scope}{style}>{inline(text)}</{tag}>"

    out = ["<table>", "<thead><tr>" + "".join(cell("th", i, c) for i, c in enumerate(head)) + "</tr></thead>"]
    out.append("<tbody>")
    for line in lines[2:]:
        out.append("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(_cells(line))) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def to_html(markdown: str) -> str:
    """The body HTML of ``markdown`` (block by block)."""
    lines = _COMMENT.sub("", markdown).splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if h := _HEADING.match(line):
            n, text = len(h.group(1)), h.group(2)
            out.append(f'<h{n} id="{_slug(text)}">{inline(text)}</h{n}>')
            i += 1
            continue
        if "|" in line and i + 1 < len(lines) and _DELIM.match(lines[i + 1]):
            j = i + 2
            while j < len(lines) and lines[j].strip().startswith("|"):
                j += 1
            out.append(_table(lines[i:j]))
            i = j
            continue
        if _LIST.match(line):
            items = []
            while i < len(lines) and (m := _LIST.match(lines[i])):
                items.append(f"<li>{inline(m.group(1))}</li>")
                i += 1
            out.append("<ul>\n" + "\n".join(items) + "\n</ul>")
            continue
        para = []
        while (
            i < len(lines) and lines[i].strip() and not _HEADING.match(lines[i]) and not _LIST.match(lines[i])
        ):
            if "|" in lines[i] and i + 1 < len(lines) and _DELIM.match(lines[i + 1]):
                break
            para.append(lines[i].strip())
            i += 1
        out.append(f"<p>{inline(' '.join(para))}</p>")
    return "\n".join(out) + "\n"


def page(markdown: str, *, title: str, stylesheets: tuple[str, ...] = (), back: str | None = None) -> str:
    """A whole UTF-8 HTML page around :func:`to_html` (its own ``<meta charset>``: no mojibake when a
    server sends no charset)."""
    links = "".join(f'\n  <link rel="stylesheet" href="{html.escape(s)}">' for s in stylesheets)
    nav = f'\n  <p><a href="{html.escape(back)}">← back to kvcalc</a></p>' if back else ""
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n  <meta charset="utf-8">\n'
        '  <meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "  <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'self'; style-src 'self' "
        "'unsafe-inline'; script-src 'none'; object-src 'none'; base-uri 'none'\">\n"
        f"  <title>{html.escape(title)}</title>{links}\n</head>\n"
        f'<body>\n<main class="doc">{nav}\n{to_html(markdown)}</main>\n</body>\n</html>\n'
    )
