"""Document text for `document.qa`: extract pages or sections, cut passages, rank them by BM25.

A plain library: no Celery, database or storage imports, so pipelines can call it directly.
"""

from .extract import extract_document
from .model import DocumentLimits, ExtractedDocument, Page, PageUnit, Passage
from .passages import split_passages
from .retrieval import PassageIndex

__all__ = [
    "DocumentLimits",
    "ExtractedDocument",
    "Page",
    "PageUnit",
    "Passage",
    "PassageIndex",
    "extract_document",
    "split_passages",
]
