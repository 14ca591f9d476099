"""Turn a stream of headings and paragraphs into numbered sections, the pages of pageless formats.

A heading starts a new section, unless the section so far holds only headings (a chapter title
straight above its first subheading stays with it). A document without any heading is cut instead
into runs of whole paragraphs of about `section_chars`, so that its sections stay citable.
"""

from __future__ import annotations

from .model import Page


class SectionBuilder:
    """Collects headings and paragraphs in reading order and numbers the sections they make."""

    def __init__(self, section_chars: int) -> None:
        self._section_chars = section_chars
        self._sections: list[list[str]] = [[]]
        self._body_started = False
        self._has_headings = False

    def heading(self, text: str) -> None:
        """Start a new section at this heading, whose text opens the section."""
        text = text.strip()
        if not text:
            return
        if self._body_started:
            self._sections.append([])
            self._body_started = False
        self._sections[-1].append(text)
        self._has_headings = True

    def paragraph(self, text: str) -> None:
        """Add a paragraph to the current section; blank paragraphs are dropped."""
        text = text.strip()
        if text:
            self._sections[-1].append(text)
            self._body_started = True

    def pages(self) -> list[Page]:
        """Return the non-empty sections as pages numbered from 1."""
        if self._has_headings:
            blocks = [section for section in self._sections if section]
        else:
            blocks = _group_paragraphs(self._sections[0], self._section_chars)
        return [Page(number, "\n\n".join(block)) for number, block in enumerate(blocks, start=1)]


def _group_paragraphs(paragraphs: list[str], target_chars: int) -> list[list[str]]:
    """Pack consecutive paragraphs into groups of at most target_chars, one per oversized one."""
    groups: list[list[str]] = []
    size = 0
    for paragraph in paragraphs:
        joined = size + 2 + len(paragraph)  # 2: the blank line between paragraphs
        if groups and joined <= target_chars:
            groups[-1].append(paragraph)
            size = joined
        else:
            groups.append([paragraph])
            size = len(paragraph)
    return groups
