"""Read Markdown and plain text as sections: Markdown splits at level 1-3 headings, text does not.

Headings inside fenced code blocks are code, not headings. A text without headings is left to
`SectionBuilder`, which groups its blank-line-separated blocks into sections of about equal size.
"""

from __future__ import annotations

import re

from core.errors import InvalidInput

from .model import Page
from .sections import SectionBuilder

_BLANK_LINES = re.compile(r"\n[^\S\n]*\n\s*")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_ATX_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_SETEXT_UNDERLINE = re.compile(r" {0,3}(=+|-+)[ \t]*")
# A `---` under one of these is a thematic break or table rule, not a heading underline.
_NOT_SETEXT_TEXT = re.compile(r" {0,3}(?:[-*+>|#]|\d+[.)])")


def decode_text(data: bytes) -> str:
    """Return UTF-8 bytes as text with Unix newlines, or fail with InvalidInput."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInput(
            f"document is not valid UTF-8 text (bad byte at offset {error.start})"
        ) from error
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text_sections(text: str, section_chars: int) -> list[Page]:
    """Return the sections of plain text: its blank-line-separated blocks, grouped by size."""
    builder = SectionBuilder(section_chars)
    for block in _BLANK_LINES.split(text):
        builder.paragraph(block)
    return builder.pages()


def read_markdown_sections(text: str, section_chars: int) -> list[Page]:
    """Return the sections of Markdown, split at its ATX (`#`) and setext level 1-3 headings."""
    builder = SectionBuilder(section_chars)
    lines: list[str] = []  # the paragraph or code block being read
    fence: str | None = None

    def flush() -> None:
        builder.paragraph("\n".join(lines))
        lines.clear()

    for line in text.split("\n"):
        if fence is not None:
            lines.append(line)
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
                flush()  # a code block is a paragraph of its own
        elif opening := _FENCE.match(line):
            flush()
            lines.append(line)
            fence = opening.group(1)
        elif not line.strip():
            flush()
        elif atx := _ATX_HEADING.fullmatch(line):
            flush()
            if len(atx.group(1)) <= 3:
                builder.heading(atx.group(2) or "")
            else:
                builder.paragraph(line)
        elif _is_setext_underline(line, lines):
            builder.heading(" ".join(part.strip() for part in lines))
            lines.clear()
        else:
            lines.append(line)
    flush()
    return builder.pages()


def _is_setext_underline(line: str, paragraph: list[str]) -> bool:
    """Return whether line underlines the plain paragraph above it as a setext heading."""
    if not paragraph or not _SETEXT_UNDERLINE.fullmatch(line):
        return False
    return line.strip().startswith("=") or not _NOT_SETEXT_TEXT.match(paragraph[0])
