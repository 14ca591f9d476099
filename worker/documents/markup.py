"""Read an HTML page as sections: visible text in block-level paragraphs, split at h1-h3.

Scripts, styles, navigation and the head are dropped. Table rows become paragraphs with their
cells joined by ` | `. The tree is walked with an explicit stack, so deep nesting cannot exhaust
Python's recursion limit.
"""

from __future__ import annotations

import re
from enum import Enum

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PageElement, PreformattedString, Tag

from .model import Page
from .sections import SectionBuilder

_SKIPPED = frozenset(
    {"script", "style", "nav", "noscript", "template", "head", "title", "svg", "iframe", "object"}
)
_HEADINGS = frozenset({"h1", "h2", "h3"})
_CELLS = frozenset({"td", "th"})
_BLOCKS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div"),
        *("dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h4", "h5", "h6"),
        *("header", "hr", "li", "main", "ol", "p", "section", "summary", "table", "tbody"),
        *("tfoot", "thead", "tr", "ul"),
    }
)
_WHITESPACE = re.compile(r"\s+")


class _Close(Enum):
    """What to do when the walk leaves an element."""

    BLOCK = "block"
    HEADING = "heading"


def read_html_sections(data: bytes, section_chars: int) -> list[Page]:
    """Return the sections of an HTML page given as bytes in UTF-8 or its declared encoding."""
    try:
        markup: str | bytes = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        markup = data  # let BeautifulSoup follow the page's declared charset instead
    soup = BeautifulSoup(markup, "html.parser")
    builder = SectionBuilder(section_chars)
    _walk(soup, builder)
    return builder.pages()


def _walk(root: Tag, builder: SectionBuilder) -> None:
    """Feed the text under root to the builder as headings and paragraphs, in document order."""
    parts: list[str] = []
    stack: list[PageElement | _Close] = [root]

    def take() -> str:
        text = _WHITESPACE.sub(" ", "".join(parts)).strip()
        parts.clear()
        return text

    while stack:
        node = stack.pop()
        if node is _Close.BLOCK:
            builder.paragraph(take())
        elif node is _Close.HEADING:
            builder.heading(take())
        elif isinstance(node, NavigableString):
            # Comments, doctypes and CDATA are strings too, but not text a reader sees.
            if not isinstance(node, PreformattedString):
                parts.append(str(node))
        elif isinstance(node, Tag) and node.name not in _SKIPPED:
            if node.name in _HEADINGS or node.name in _BLOCKS:
                builder.paragraph(take())
                stack.append(_Close.HEADING if node.name in _HEADINGS else _Close.BLOCK)
            elif node.name in _CELLS and "".join(parts).strip():
                parts.append(" | ")
            stack.extend(reversed(node.contents))
    builder.paragraph(take())
