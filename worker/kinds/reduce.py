"""Hierarchical reduce over timed notes, shared by the kinds that map over windows or segments.

Notes are `{"start", "end", "text"}` in media seconds. When all notes fit the context budget
(estimated at 3 characters per token: finalize runs on ingest workers, which do not load the
tokenizer), the final pass reads them all; otherwise consecutive notes are packed into groups
that fit and each group is condensed into one note spanning the group, level by level. Every
pass is a round of `infer` chunks, because only model hosts run the model.
"""

from __future__ import annotations

import math
from typing import Any

from worker.kinds.base import ChunkResult, MoreChunks
from worker.kinds.data import neutralise

CHARS_PER_TOKEN = 3
PROMPT_RESERVE = 512
CONDENSE = "condense"

Note = dict[str, Any]


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


def estimated_tokens(notes: list[Note]) -> int:
    """A deliberately high estimate of the tokens `timed_block(notes)` takes."""
    return math.ceil(len(timed_block(notes)) / CHARS_PER_TOKEN)


def budget(context_tokens: int, max_tokens: int) -> int:
    """Tokens left for notes in a prompt of `context_tokens` that generates `max_tokens`."""
    return context_tokens - max_tokens - PROMPT_RESERVE


def pack(notes: list[Note], limit: int) -> list[list[Note]]:
    """Consecutive notes in groups that fit `limit`, at least two per group (so each level
    shrinks the notes)."""
    groups: list[list[Note]] = [[]]
    for note in notes:
        current = groups[-1]
        if len(current) >= 2 and estimated_tokens([*current, note]) > limit:
            groups.append([note])
        else:
            current.append(note)
    return groups


def latest_notes(chunks: list[ChunkResult], map_phase: str) -> tuple[int, list[Note]]:
    """The newest level of notes: condensed ones if a condense round ran, else the map's."""
    level = max((c.spec["level"] for c in chunks if c.spec["phase"] == CONDENSE), default=0)
    phase_chunks = (
        [c for c in chunks if c.spec["phase"] == CONDENSE and c.spec["level"] == level]
        if level
        else [c for c in chunks if c.spec["phase"] == map_phase]
    )
    return level, [c.output["note"] for c in phase_chunks]


def condense_round(notes: list[Note], level: int, limit: int) -> MoreChunks:
    """The chunks that condense `notes` (of `level`) into the next level."""
    return MoreChunks(
        [
            {"phase": CONDENSE, "level": level + 1, "group": g, "notes": group}
            for g, group in enumerate(pack(notes, limit))
        ]
    )


def fits(notes: list[Note], limit: int) -> bool:
    """Whether the final pass can read `notes` at once (a single note always can)."""
    return len(notes) == 1 or estimated_tokens(notes) <= limit


def condensed_note(notes: list[Note], text: str) -> Note:
    """The note that replaces `notes`: their whole span, the condensed text."""
    return {"start": notes[0]["start"], "end": notes[-1]["end"], "text": text.strip()}
