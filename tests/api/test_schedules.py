"""`/v1/schedules` over REST on both backends: create, list, pause, resume, delete, firings."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.db.types import utcnow
from tests.fixtures.backends import Service
from worker.schedule_firing import fire_schedules

QA = {"kind": "document.qa", "params": {"questions": ["What is it about?"]}}


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """A folder under the allowed root with one document in it."""
    folder = tmp_path / "drop" / "inbox"
    folder.mkdir(parents=True)
    (folder / "a.txt").write_bytes(b"alpha")
    return folder


@pytest.fixture
def svc(make_service: Any, tmp_path: Path) -> Service:
    """A service whose schedules may read below tmp/drop."""
    return make_service(schedule_local_roots=[tmp_path / "drop"])  # type: ignore[no-any-return]


def _body(inbox: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": "nightly",
        "cron": "0 2 * * *",
        "timezone": "Europe/Berlin",
        "source": {"type": "local", "path": str(inbox)},
        "filter": {"extensions": [".txt"]},
        "template": QA,
    } | extra


def _call(svc: Service, key: str, method: str, path: str, **kwargs: Any) -> Any:
    return svc.client.request(method, path, headers=svc.headers(key), **kwargs)


def test_create_show_list_pause_resume_delete(svc: Service, inbox: Path) -> None:
    """The whole life of a schedule over REST, with cursor pagination and next_slot."""
    key = svc.new_key("acme")
    created = _call(svc, key, "POST", "/v1/schedules", json=_body(inbox))
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["status"] == "active" and schedule["source"]["path"] == str(inbox.resolve())
    next_slot = datetime.fromisoformat(schedule["next_slot"])
    assert utcnow() < next_slot <= utcnow() + timedelta(days=1)
    assert next_slot.astimezone(ZoneInfo("Europe/Berlin")).hour == 2
    ids = [schedule["id"]]
    ids += [_call(svc, key, "POST", "/v1/schedules", json=_body(inbox)).json()["id"] for _ in "ab"]
    page = _call(svc, key, "GET", "/v1/schedules?limit=2").json()
    assert [s["id"] for s in page["data"]] == ids[::-1][:2] and page["has_more"]
    rest = _call(svc, key, "GET", f"/v1/schedules?limit=2&after={page['last_id']}").json()
    assert [s["id"] for s in rest["data"]] == [ids[0]] and not rest["has_more"]
    paused = _call(svc, key, "POST", f"/v1/schedules/{ids[0]}/pause").json()
    assert paused["status"] == "paused" and paused["next_slot"] is None
    resumed = _call(svc, key, "POST", f"/v1/schedules/{ids[0]}/resume").json()
    assert resumed["status"] == "active" and resumed["next_slot"] == schedule["next_slot"]
    assert _call(svc, key, "DELETE", f"/v1/schedules/{ids[0]}").status_code == 204
    for method, path in [
        ("GET", f"/v1/schedules/{ids[0]}"),
        ("POST", f"/v1/schedules/{ids[0]}/resume"),
        ("GET", f"/v1/schedules/{ids[0]}/firings"),
        ("DELETE", f"/v1/schedules/{ids[0]}"),
    ]:
        assert _call(svc, key, method, path).status_code == 404, path
    listed = _call(svc, key, "GET", "/v1/schedules").json()["data"]
    assert ids[0] not in [s["id"] for s in listed]


def test_firings_are_listed_with_their_batch_and_counts(
    make_service: Any, inbox: Path, tmp_path: Path
) -> None:
    """After beat fires, the firing shows its slot, counts and batch, and the batch its lines."""
    svc: Service = make_service(
        schedule_local_roots=[tmp_path / "drop"], fetch_allow_networks=["127.0.0.1/32"]
    )
    key = svc.new_key("acme")
    (inbox / "b.txt").write_bytes(b"\x00\x01 binary")  # unreadable: skipped
    hook = "http://127.0.0.1:9/hook"
    body = _body(inbox, cron="*/10 * * * *", timezone="UTC", webhook_url=hook)
    schedule = _call(svc, key, "POST", "/v1/schedules", json=body).json()
    slot = datetime.fromisoformat(schedule["next_slot"])
    [firing_id] = fire_schedules(svc.context, slot + timedelta(minutes=1))
    firings = _call(svc, key, "GET", f"/v1/schedules/{schedule['id']}/firings").json()["data"]
    assert len(firings) == 1
    firing = firings[0]
    assert firing["id"] == firing_id and datetime.fromisoformat(firing["slot"]) == slot
    assert (firing["status"], firing["objects_listed"], firing["objects_new"]) == (
        "submitted",
        2,
        2,
    )
    assert firing["objects_skipped"] == 1 and firing["error"] is None
    batch = _call(svc, key, "GET", f"/v1/batches/{firing['batch_id']}").json()
    assert batch["schedule_id"] == schedule["id"] and batch["request_counts"]["total"] == 1
    assert schedule["webhook_url"] == hook and batch["webhook_url"] == hook
    jobs = _call(svc, key, "GET", f"/v1/jobs?batch_id={batch['id']}").json()["data"]
    assert [j["custom_id"] for j in jobs] == ["a.txt"]


def test_bad_schedules_answer_422_with_the_reason(
    svc: Service, inbox: Path, tmp_path: Path
) -> None:
    """Every kind of bad input is a 422 whose message names the problem."""
    key = svc.new_key("acme")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cases: list[tuple[dict[str, Any], str]] = [
        (_body(inbox, window="night"), "exactly one of cron and window"),
        ({k: v for k, v in _body(inbox).items() if k != "cron"}, "exactly one of cron and window"),
        (_body(inbox, cron="0 2 * *"), "five fields"),
        (_body(inbox, cron="0 25 * * *"), "not a valid cron"),
        (_body(inbox, cron="0 0 2 * * *"), "five fields"),
        (_body(inbox, timezone="Mars/Olympus"), "unknown time zone"),
        (_body(inbox, cron=None, window="night"), "unknown window 'night'"),
        (_body(inbox, template={"kind": "image.paint"}), "unknown job kind"),
        (_body(inbox, template={"kind": "document.qa", "params": {}}), "params.questions"),
        (_body(inbox, template=QA | {"window": "nope"}), "unknown window 'nope'"),
        (_body(inbox, template=QA | {"priority": 12}), "template.priority"),
        (_body(inbox, source={"type": "local", "path": str(elsewhere)}), "not under an allowed"),
        (_body(inbox, source={"type": "local", "path": str(inbox / "none")}), "does not exist"),
        (_body(inbox, source={"type": "ftp", "path": "x"}), "source"),
        (_body(inbox, filter={"min_bytes": 10, "max_bytes": 5}), "min_bytes"),
        (_body(inbox, completion_window="soon"), "completion_window"),
        (_body(inbox, surprise=True), "surprise"),
        (
            _body(inbox, source={"type": "s3", "bucket": "someone-elses", "prefix": ""}),
            "allowed: none (NIGHTOWL_SCHEDULE_S3_BUCKETS)",
        ),
        (_body(inbox, webhook_url="http://169.254.169.254/latest"), "not a public address"),
    ]
    if svc.settings.s3_bucket:
        own = {"type": "s3", "bucket": svc.settings.s3_bucket, "prefix": "tenants/"}
        cases.append((_body(inbox, source=own), "own storage bucket"))
    for body, reason in cases:
        response = _call(svc, key, "POST", "/v1/schedules", json=body)
        assert response.status_code == 422, (body, response.text)
        assert reason in response.json()["error"]["message"], (reason, response.text)
    assert _call(svc, key, "GET", "/v1/schedules").json()["data"] == []


def test_local_sources_are_refused_when_no_root_is_configured(
    make_service: Any, inbox: Path
) -> None:
    """Without schedule_local_roots, a folder source is refused naming the setting."""
    svc: Service = make_service()
    key = svc.new_key("acme")
    response = _call(svc, key, "POST", "/v1/schedules", json=_body(inbox))
    assert response.status_code == 422
    assert "NIGHTOWL_SCHEDULE_LOCAL_ROOTS" in response.json()["error"]["message"]


def test_another_tenants_schedule_answers_404_everywhere(svc: Service, inbox: Path) -> None:
    """Get, pause, resume, delete and firings of another tenant's schedule are all 404."""
    alice, mallory = svc.new_key("alice"), svc.new_key("mallory")
    schedule = _call(svc, alice, "POST", "/v1/schedules", json=_body(inbox)).json()
    for method, path in [
        ("GET", f"/v1/schedules/{schedule['id']}"),
        ("POST", f"/v1/schedules/{schedule['id']}/pause"),
        ("POST", f"/v1/schedules/{schedule['id']}/resume"),
        ("DELETE", f"/v1/schedules/{schedule['id']}"),
        ("GET", f"/v1/schedules/{schedule['id']}/firings"),
    ]:
        response = _call(svc, mallory, method, path)
        assert response.status_code == 404, (path, response.text)
    assert _call(svc, mallory, "GET", "/v1/schedules").json()["data"] == []
    assert _call(svc, alice, "GET", f"/v1/schedules/{schedule['id']}").json()["status"] == "active"
