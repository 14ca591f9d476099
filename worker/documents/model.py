"""The records document extraction produces: limits, pages (or sections) and passages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PageUnit = Literal["page", "section"]


@dataclass(frozen=True)
class DocumentLimits:
    """How much of a document we agree to read, and how finely we cut it."""

    max_pages: int = 500
    max_chars: int = 2_000_000
    passage_chars: int = 1200
    # A docx is a zip: its declared uncompressed size bounds what opening it costs.
    max_docx_uncompressed_bytes: int = 200 * 1024 * 1024
    # Target size of a section when a text has no headings to split it at.
    section_chars: int = 3000

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value < 1:
                raise ValueError(f"DocumentLimits.{name} must be positive, not {value}")


@dataclass(frozen=True)
class Page:
    """One PDF page, or one section of a document without pages, numbered from 1."""

    number: int
    text: str


@dataclass(frozen=True)
class Passage:
    """A piece of one page of about the passage size, with an id like `p3.2` (page 3, 2nd)."""

    id: str
    page: int
    text: str


@dataclass(frozen=True)
class ExtractedDocument:
    """The text of a document, by page or section, and the passages cut from it."""

    format: str
    pages: list[Page]
    passages: list[Passage]

    @property
    def page_unit(self) -> PageUnit:
        """Whether `Page.number` counts printed pages (PDF) or sections (everything else)."""
        return "page" if self.format == "pdf" else "section"

    @property
    def char_count(self) -> int:
        """The number of characters of text over all pages."""
        return sum(len(page.text) for page in self.pages)
