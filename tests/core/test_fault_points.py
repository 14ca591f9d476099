"""Test-only crash points fire only where named (and on their marker), never in production, and
a failure after a commit (a lost publish) neither undoes the rows nor reaches the caller."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from core.db import Database, on_commit
from core.db.models import Tenant
from core.faults import CRASH_EXIT_CODE
from core.migrate import upgrade
from core.settings import Settings

_PROGRAM = """
import sys
from core.faults import crash_point
from core.settings import Settings
crash_point(Settings(home=sys.argv[1], fault_crash_at=sys.argv[2]), sys.argv[3], sys.argv[4])
"""


def _exit_code(tmp_path: Path, target: str, point: str, text: str = "") -> int:
    args = [sys.executable, "-c", _PROGRAM, str(tmp_path), target, point, text]
    return subprocess.run(args, cwd=Path(__file__).parents[2], check=False).returncode


@pytest.mark.parametrize(
    ("target", "point", "text", "code"),
    [
        ("infer.after_result", "infer.after_result", "", CRASH_EXIT_CODE),
        ("infer.after_result", "plan.after_commit", "", 0),
        ("infer.before_model:POISON", "infer.before_model", "a POISON question", CRASH_EXIT_CODE),
        ("infer.before_model:POISON", "infer.before_model", "a plain question", 0),
    ],
)
def test_a_crash_point_exits_only_at_its_name_and_marker(
    tmp_path: Path, target: str, point: str, text: str, code: int
) -> None:
    """The process dies with 137 where the setting names the point (and its marker matches)."""
    assert _exit_code(tmp_path, target, point, text) == code


def test_a_crash_point_is_refused_in_production(tmp_path: Path) -> None:
    """`fault_crash_at` cannot be switched on in production."""
    with pytest.raises(ValidationError, match="fault points"):
        Settings(home=tmp_path, env="production", fault_crash_at="infer.after_result")


def test_a_failed_publish_after_commit_keeps_the_row_and_does_not_raise(tmp_path: Path) -> None:
    """A callback failing after the commit (the broker is down) is logged, later ones still run,
    and the committed row stays: the reconciler re-sends from it."""
    settings = Settings(home=tmp_path)
    upgrade(settings.sqlalchemy_url)
    db = Database(settings.sqlalchemy_url)
    ran: list[str] = []

    def broker_down() -> None:
        raise ConnectionError("broker unavailable")

    with db.transaction() as session:
        session.add(Tenant(id="ten_1", name="acme"))
        on_commit(session, broker_down)
        on_commit(session, lambda: ran.append("next"))
    with db.transaction() as session:
        assert session.scalar(select(Tenant.name).where(Tenant.id == "ten_1")) == "acme"
    assert ran == ["next"]
    db.dispose()
