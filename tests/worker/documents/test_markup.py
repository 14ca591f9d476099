"""HTML extraction: visible text only, sections at h1-h3, rows of tables, declared charsets."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InvalidInput
from worker.documents import DocumentLimits, extract_document

LIMITS = DocumentLimits()

PAGE = """<!DOCTYPE html>
<html><head><title>Page title</title><style>p { color: red }</style>
<script>var hidden = "script text";</script></head>
<body>
<nav><a href="/">Home</a> <a href="/about">About</a></nav>
<p>Intro with <b>bold</b> and <a href="#">a link</a>.</p>
<!-- a comment nobody sees -->
<h1>First   heading</h1>
<h2>Sub heading</h2>
<p>First
   paragraph.</p>
<table><tr><th>Name</th><th>Age</th></tr><tr><td>Ada</td><td>36</td></tr></table>
<h3>Third level</h3>
<ul><li>one</li><li>two</li></ul>
<h4>Fourth level stays inside</h4>
<p>Last line<br>after a break.</p>
<script>document.write("more script text")</script>
</body></html>
"""


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "page.html"
    path.write_bytes(data)
    return path


def test_visible_text_is_split_at_headings(tmp_path: Path) -> None:
    """Script, style, nav, head and comments are dropped; h1-h3 start sections, h4 does not."""
    document = extract_document(_write(tmp_path, PAGE.encode()), "text/html", LIMITS)
    assert document.format == "html"
    assert document.page_unit == "section"
    assert [(page.number, page.text) for page in document.pages] == [
        (1, "Intro with bold and a link."),
        (2, "First heading\n\nSub heading\n\nFirst paragraph.\n\nName | Age\n\nAda | 36"),
        (
            3,
            "Third level\n\none\n\ntwo\n\nFourth level stays inside\n\nLast line\n\nafter a break.",
        ),
    ]
    full_text = " ".join(page.text for page in document.pages)
    for hidden in ("script text", "color", "Home", "Page title", "comment"):
        assert hidden not in full_text


def test_declared_charset_is_used_when_not_utf8(tmp_path: Path) -> None:
    """A Latin-1 page that declares its charset is decoded with it."""
    html = '<html><head><meta charset="iso-8859-1"></head><body><p>Café crème</p></body></html>'
    document = extract_document(_write(tmp_path, html.encode("latin-1")), "text/html", LIMITS)
    assert document.pages[0].text == "Café crème"


def test_content_type_parameters_are_ignored(tmp_path: Path) -> None:
    """A content type with a charset parameter and odd case still selects the HTML reader."""
    path = _write(tmp_path, b"<html><body><p>Hello</p></body></html>")
    document = extract_document(path, "Text/HTML; charset=utf-8", LIMITS)
    assert document.pages[0].text == "Hello"


def test_deeply_nested_html_does_not_recurse(tmp_path: Path) -> None:
    """Thousands of nested elements are walked without hitting the recursion limit."""
    depth = 5000
    html = "<div>" * depth + "<p>deep text</p>" + "</div>" * depth
    document = extract_document(_write(tmp_path, html.encode()), "text/html", LIMITS)
    assert document.pages[0].text == "deep text"


def test_page_of_only_scripts_has_no_text(tmp_path: Path) -> None:
    """An HTML page whose only content is script has no text."""
    path = _write(tmp_path, b"<html><body><script>alert(1)</script></body></html>")
    with pytest.raises(InvalidInput, match=r"^document has no text$"):
        extract_document(path, "text/html", LIMITS)
