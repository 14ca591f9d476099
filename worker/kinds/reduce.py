"""Hierarchical reduce over timed notes, shared by the kinds that map over clips or segments.

Notes are `{"start", "end", "text"}` in media seconds. When all notes fit the context budget
(estimated at 3 characters per token: finalize runs on ingest workers, which do not load the
tokenizer), the final pass reads them all; otherwise consecutive notes are packed into groups
that fit and each group is condensed into one note spanning the group, level by level. Every
pass is a round of `infer` chunks, because only model hosts run the model: a kind's finalize asks
`next_round` for the next one, and its infer runs a condense (or summary) chunk with `note_over`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.settings import Settings
from core.usage import Usage
from worker.kinds.contract import ChunkResult, MoreChunks
from worker.kinds.untrusted import neutralise

if TYPE_CHECKING:
    from worker.engine import Engine

CHARS_PER_TOKEN = 3
PROMPT_RESERVE = 512
CONDENSE = "condense"

Note = dict[str, Any]


def map_chunks(phase: str, key: str, spans: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """One map chunk spec per (start, end) span, numbered under `key`."""
    return [
        {"phase": phase, key: i, "start": start, "end": end} for i, (start, end) in enumerate(spans)
    ]


def clock(seconds: float) -> str:
    """`hh:mm:ss` for a time in seconds, as prompts and notes show it."""
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def timed_block(notes: list[Note]) -> str:
    """The notes between `<notes>` markers, each headed by its `[hh:mm:ss-hh:mm:ss]` range.

    Notes come from what was said or shown in the media: data, so their text is neutralised.
    """
    body = "\n\n".join(
        f"[{clock(n['start'])}-{clock(n['end'])}]\n{neutralise(n['text'])}" for n in notes
    )
    return f"<notes>\n{body}\n</notes>"


def _estimated_tokens(notes: list[Note]) -> int:
    """A deliberately high estimate of the tokens `timed_block(notes)` takes."""
    return math.ceil(len(timed_block(notes)) / CHARS_PER_TOKEN)


def _budget(context_tokens: int, max_tokens: int) -> int:
    """Tokens left for notes in a prompt of `context_tokens` that generates `max_tokens`."""
    return context_tokens - max_tokens - PROMPT_RESERVE


def _pack(notes: list[Note], limit: int) -> list[list[Note]]:
    """Consecutive notes in groups that fit `limit`, at least two per group (so each level
    shrinks the notes)."""
    groups: list[list[Note]] = [[]]
    for note in notes:
        current = groups[-1]
        if len(current) >= 2 and _estimated_tokens([*current, note]) > limit:
            groups.append([note])
        else:
            current.append(note)
    return groups


def _latest_notes(chunks: list[ChunkResult], map_phase: str) -> tuple[int, list[Note]]:
    """The newest level of notes: condensed ones if a condense round ran, else the map's."""
    level = max((c.spec["level"] for c in chunks if c.spec["phase"] == CONDENSE), default=0)
    phase_chunks = (
        [c for c in chunks if c.spec["phase"] == CONDENSE and c.spec["level"] == level]
        if level
        else [c for c in chunks if c.spec["phase"] == map_phase]
    )
    return level, [c.output["note"] for c in phase_chunks]


def next_round(
    settings: Settings,
    params: dict[str, Any],
    chunks: list[ChunkResult],
    map_phase: str,
    final: Callable[[list[Note]], list[dict[str, Any]]],
) -> MoreChunks:
    """The final pass (the chunk specs `final` makes of the newest notes) when those notes fit
    the reduce budget, else a round condensing them into the next level."""
    level, notes = _latest_notes(chunks, map_phase)
    max_tokens = params.get("max_tokens") or settings.max_tokens
    limit = _budget(settings.reduce_context_tokens, max_tokens)
    if _fits(notes, limit):
        return MoreChunks(final(notes))
    return _condense_round(notes, level, limit)


def _condense_round(notes: list[Note], level: int, limit: int) -> MoreChunks:
    """The chunks that condense `notes` (of `level`) into the next level."""
    return MoreChunks(
        [
            {"phase": CONDENSE, "level": level + 1, "group": g, "notes": group}
            for g, group in enumerate(_pack(notes, limit))
        ]
    )


def _fits(notes: list[Note], limit: int) -> bool:
    """Whether the final pass can read `notes` at once (a single note always can)."""
    return len(notes) == 1 or _estimated_tokens(notes) <= limit


def _condensed_note(notes: list[Note], text: str) -> Note:
    """The note that replaces `notes`: their whole span, the condensed text."""
    return {"start": notes[0]["start"], "end": notes[-1]["end"], "text": text.strip()}


def note_over(
    engine: Engine, instruction: str, notes: list[Note], options: dict[str, Any]
) -> tuple[Note, Usage]:
    """One model pass over `notes` after `instruction`: a note spanning them, and its usage."""
    prompt = engine.render([{"role": "user", "content": f"{instruction}\n\n{timed_block(notes)}"}])
    generation = engine.generate(prompt, **options)
    return _condensed_note(notes, generation.text), generation.usage
