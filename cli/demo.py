"""`nightowl demo`: a sample document and document.qa run on it end to end, on the embedded default.

The real model is used where it can be loaded: its weights already local (a folder, or the
Hugging Face cache; the demo does not download 8 GB unasked) and memory enough. Otherwise the
tiny random-weight model, with a warning that its answers are noise.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from fpdf import FPDF

from core.errors import EngineError
from core.settings import Settings

if TYPE_CHECKING:
    from worker.engine import Engine

SAMPLE_PAGES = [
    (
        "The Nightowl Observatory",
        "The Nightowl Observatory stands on Cerro Lechuza at 2,410 metres. It was founded in "
        "1987 by the astronomer Ines Barrow, who chose the site for its dark skies and dry air. "
        "The main telescope has a mirror 1.8 metres across.",
    ),
    (
        "Observing season",
        "The observing season runs from April to October, when the nights are longest and the "
        "weather is most stable. About 290 nights a year are clear enough for observation. "
        "Visitors may tour the dome on the first Saturday of each month.",
    ),
    (
        "Research",
        "Most research at the observatory concerns variable stars and the orbits of near-Earth "
        "asteroids. In 2019 the team discovered the asteroid 2019 NX4, which passes Earth every "
        "eleven years. Data are published in the observatory's open archive.",
    ),
]
SAMPLE_QUESTIONS = [
    "Who founded the observatory, and when?",
    "When does the observing season run?",
    "What did the team discover in 2019?",
]


def write_sample_pdf(path: Path) -> Path:
    """Write the three-page sample PDF the demo asks about."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for title, body in SAMPLE_PAGES:
        pdf.add_page()
        pdf.set_font("Helvetica", style="B", size=16)
        pdf.multi_cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 7, body, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def load_demo_engine(settings: Settings) -> tuple[Engine, str | None]:
    """The real model if it loads, else the tiny one, with a warning when the tiny one is used."""
    from worker.context import engine_config_from
    from worker.engine import Engine

    if settings.model == "tiny":
        engine = Engine.load(engine_config_from(settings))
        return engine, "NIGHTOWL_MODEL=tiny: the answers come from random weights and are noise"
    # The demo never starts an 8 GB download by surprise: it uses the real model if it is local.
    local_only = dataclasses.replace(engine_config_from(settings), allow_download=False)
    try:
        return Engine.load(local_only), None
    except EngineError as exc:
        warning = (
            f"the real model could not be loaded ({exc.message}); using the tiny random-weight "
            "model instead: the answers are NOISE and show only that the pipeline works"
        )
    tiny = settings.model_copy(update={"model": "tiny", "draft_model": "tiny"})
    return Engine.load(engine_config_from(tiny)), warning
