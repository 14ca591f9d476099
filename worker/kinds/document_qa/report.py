"""The `answers.md` artifact: each question, its answer and its citations, readable as text."""

from __future__ import annotations

from typing import Any

from worker.kinds.untrusted import inert_markdown


def answers_markdown(
    result: dict[str, Any], filename: str | None, *, warning: str | None = None
) -> str:
    """Render a document.qa result as Markdown, with `warning` (if any) under the title."""
    doc = result["document"]
    unit = "page" if doc.get("page_unit") == "page" else "section"
    lines = [f"# Answers about {filename or 'the document'}", ""]
    if warning:
        lines += [f"> **Warning:** {warning}", ""]
    lines += [
        f"{doc['pages']} {unit}s, {doc['passages']} passages, read as: {doc['mode']}.",
        "",
    ]
    for number, item in enumerate(result["answers"], 1):
        answer = inert_markdown(item["answer"]) if item["answer"] else "_(no answer)_"
        lines += [f"## {number}. {inert_markdown(item['question'])}", "", answer, ""]
        for c in item["citations"]:
            quote = inert_markdown(c["quote"])
            lines.append(f"- {unit} {c['page']} ({c['passage_id']}): \u201c{quote}\u201d")
        lines.append("")
    return "\n".join(lines)
