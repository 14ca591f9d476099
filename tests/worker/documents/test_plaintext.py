"""Markdown and plain-text extraction: heading sections, grouped blocks, UTF-8 checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InvalidInput, TooLarge
from worker.documents import DocumentLimits, extract_document

LIMITS = DocumentLimits()

MARKDOWN = """Text before any heading.

# Guide

Some *markdown* text.

```bash
# a shell comment, not a heading

echo hi
```

## Setup
Install it.

Usage
=====

- item one
---

#### Deep heading
Final words.
"""


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_markdown_splits_at_headings_but_not_in_code(tmp_path: Path) -> None:
    """ATX and setext headings of levels 1-3 start sections; `#` in a code fence does not."""
    path = _write(tmp_path, "a.md", MARKDOWN.encode())
    document = extract_document(path, "text/markdown", LIMITS)
    assert document.format == "markdown"
    assert document.page_unit == "section"
    assert [(page.number, page.text) for page in document.pages] == [
        (1, "Text before any heading."),
        (
            2,
            "Guide\n\nSome *markdown* text.\n\n"
            "```bash\n# a shell comment, not a heading\n\necho hi\n```",
        ),
        (3, "Setup\n\nInstall it."),
        (4, "Usage\n\n- item one\n---\n\n#### Deep heading\n\nFinal words."),
    ]


def test_plain_text_blocks_are_grouped_into_sections(tmp_path: Path) -> None:
    """Blank-line-separated blocks are packed into sections of at most section_chars."""
    blocks = [f"Block {i}. " + "lorem ipsum " * 20 for i in range(12)]
    path = _write(tmp_path, "a.txt", "\r\n\r\n".join(blocks).encode())
    document = extract_document(path, "text/plain", DocumentLimits(section_chars=800))
    assert document.format == "text"
    assert [page.number for page in document.pages] == [1, 2, 3, 4]
    assert all(len(page.text) <= 800 for page in document.pages)
    assert document.pages[0].text.startswith("Block 0.")
    assert document.pages[1].text.startswith("Block 3.")
    assert "\r" not in "".join(page.text for page in document.pages)


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    """A UTF-8 byte order mark does not become part of the text."""
    path = _write(tmp_path, "a.txt", b"\xef\xbb\xbfHello")
    assert extract_document(path, "text/plain", LIMITS).pages[0].text == "Hello"


@pytest.mark.parametrize("content_type", ["text/plain", "text/markdown"])
def test_invalid_utf8_is_refused(tmp_path: Path, content_type: str) -> None:
    """Text that is not valid UTF-8 is refused with the offset of the first bad byte."""
    path = _write(tmp_path, "a.txt", b"caf\xe9 au lait")
    with pytest.raises(InvalidInput, match=r"^document is not valid UTF-8 text \(.* offset 3\)$"):
        extract_document(path, content_type, LIMITS)


@pytest.mark.parametrize("data", [b"", b"  \n\n\t\n"])
def test_empty_or_blank_text_has_no_text(tmp_path: Path, data: bytes) -> None:
    """An empty file, or one of only whitespace, has no text."""
    path = _write(tmp_path, "a.txt", data)
    with pytest.raises(InvalidInput, match=r"^document has no text$"):
        extract_document(path, "text/plain", LIMITS)


def test_text_over_the_char_limit_is_refused(tmp_path: Path) -> None:
    """More characters than max_chars is too large, whether the file size alone shows it or not."""
    # 120 bytes: under 4 bytes per allowed char, so the size alone does not show it.
    path = _write(tmp_path, "a.txt", ("é" * 60).encode())
    with pytest.raises(TooLarge, match=r"^document has more than 50 characters of text$"):
        extract_document(path, "text/plain", DocumentLimits(max_chars=50))
    big = _write(tmp_path, "b.txt", b"x" * 201)  # over 4 bytes per allowed char: not even read
    with pytest.raises(TooLarge, match=r"^document has more than 50 characters of text$"):
        extract_document(big, "text/plain", DocumentLimits(max_chars=50))
