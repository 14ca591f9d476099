"""The `answers.md` artifact: each question, its answer and its citations, readable as text."""

from __future__ import annotations

from typing import Any


def answers_markdown(result: dict[str, Any], filename: str | None) -> str:
    """Render a document.qa result as Markdown."""
    doc = result["document"]
    unit = "page" if doc.get("page_unit") == "page" else "section"
    lines = [f"# Answers about {filename or 'the document'}", ""]
    if result.get("warning"):
        lines += [f"> **Warning:** {result['warning']}", ""]
    lines += [
        f"{doc['pages']} {unit}s, {doc['passages']} passages, read as: {doc['mode']}.",
        "",
    ]
    for number, item in enumerate(result["answers"], 1):
        lines += [f"## {number}. {item['question']}", "", item["answer"] or "_(no answer)_", ""]
        for c in item["citations"]:
            lines.append(f"- {unit} {c['page']} ({c['passage_id']}): \u201c{c['quote']}\u201d")
        lines.append("")
    return "\n".join(lines)
