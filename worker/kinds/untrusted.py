"""Untrusted text (documents, transcripts, model output) kept as data, in prompts and in files.

In prompts, untrusted text sits between our own markers (`<document>`, `<passage>`, `<notes>`)
and anything inside it that looks like one of those markers is neutralised, so a document or a
spoken sentence cannot close the block and talk to the model as the service. The instructions
around each block say the block is data. In the Markdown artifacts we write, model output cannot
make a viewer fetch anything: image syntax and raw HTML are escaped into plain text.
"""

from __future__ import annotations

import re

_MARKER = re.compile(r"</?\s*(document|passage|notes)\b[^>]*>", re.IGNORECASE)
_IMAGE = re.compile(r"!\[")


def neutralise(text: str) -> str:
    """`text` with anything that looks like our delimiters made harmless."""
    return _MARKER.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), text)


def inert_markdown(text: str) -> str:
    """`text` for a Markdown file: no image embeds and no raw HTML (nothing a viewer fetches)."""
    return _IMAGE.sub(r"!\\[", text.replace("<", "&lt;"))
