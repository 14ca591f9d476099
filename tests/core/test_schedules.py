"""Schedules fired with an injected clock: slots, new-object detection, one firing per slot."""

from __future__ import annotations

import multiprocessing
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from api.schemas.schedules import ScheduleCreate
from api.services.schedules import create_schedule, get_schedule, set_status, skipped_counts
from core.auth import authenticate, create_key
from core.db.models import Batch, File, Job, Schedule, ScheduleFiring, ScheduleObject
from core.db.types import new_id, utcnow
from core.errors import NotFound
from core.schedules import latest_slot, next_slot
from core.settings import Settings
from core.storage import make_store
from testkit.services import S3Service
from tests.fixtures.backends import backend_settings
from worker.context import WorkerContext
from worker.inline import InlineDispatcher
from worker.reconcile import reconcile
from worker.schedule_firing import fire_due, fire_schedules
from worker.schedule_sources import ObjectChanged, open_source

T0 = datetime(2026, 3, 1, 10, 10, tzinfo=UTC)
QA = {"kind": "document.qa", "params": {"questions": ["What is it about?"]}}
BINARY = b"\x00\x01\x02 not a document"


@dataclass
class Setup:
    """A worker context on one backend and a tenant that owns the schedules."""

    ctx: WorkerContext
    tenant_id: str

    def schedule(self, body: dict[str, Any], now: datetime = T0) -> str:
        with self.ctx.db.transaction() as session:
            row = create_schedule(
                session, self.ctx.settings, self.tenant_id, ScheduleCreate.model_validate(body), now
            )
            return row.id

    def fire(self, now: datetime) -> list[str]:
        return fire_schedules(self.ctx, now)

    def firing(self, firing_id: str) -> ScheduleFiring:
        with self.ctx.db.transaction() as session:
            return session.get_one(ScheduleFiring, firing_id)

    def lines(self, batch_id: str | None) -> dict[str, bytes]:
        """custom_id -> the bytes of the file its job reads."""
        assert batch_id is not None
        with self.ctx.db.transaction() as session:
            rows = session.execute(
                select(Job.custom_id, File.storage_key)
                .join(File, File.id == Job.input_file_id)
                .where(Job.batch_id == batch_id, Job.tenant_id == self.tenant_id)
            ).all()
        return {str(cid): self.ctx.store.get_bytes(key) for cid, key in rows}


MakeSetup = Callable[..., Setup]


@pytest.fixture
def make_setup(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A factory of Setups on a backend kind ("sqlite-local" or "postgres-s3")."""
    made: list[Setup] = []

    def make(kind: str, **overrides: object) -> Setup:
        home = tmp_path / f"home{len(made)}"
        settings = backend_settings(request, kind, home, tmp_path / "models", **overrides)
        # Never drained: the dispatcher only queues what firing publishes.
        ctx = WorkerContext.create(settings, InlineDispatcher())
        with ctx.db.transaction() as session:
            tenant_id = authenticate(session, create_key(session, "acme")).tenant_id
        made.append(Setup(ctx, tenant_id))
        return made[-1]

    yield make
    for setup in made:
        setup.ctx.db.dispose()


@pytest.fixture
def source_bucket(s3_service: S3Service) -> str:
    """A fresh bucket, not the service's own, to schedule over."""
    name = f"src-{secrets.token_hex(4)}"
    s3_service.client().create_bucket(Bucket=name)
    return name


def _s3_schedule(bucket: str, **extra: Any) -> dict[str, Any]:
    return {
        "cron": "0 * * * *",
        "source": {"type": "s3", "bucket": bucket, "prefix": "in/"},
        "filter": {"extensions": ["TXT"], "max_bytes": 1000},
        "template": QA,
    } | extra


def test_cron_and_window_slots_follow_the_injected_clock_and_time_zone() -> None:
    """A 02:00 New York cron's slot is 06:00 UTC in summer; a window's slot is its opening."""
    settings = Settings(windows={"night": "22:00-06:00 Europe/Berlin"})
    cron = Schedule(
        cron="0 2 * * *", timezone="America/New_York", status="active", fire_after=T0, window=None
    )
    before = datetime(2026, 7, 1, 5, 59, tzinfo=UTC)
    assert latest_slot(settings, cron, before) == datetime(2026, 6, 30, 6, 0, tzinfo=UTC)
    at = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
    assert latest_slot(settings, cron, at) == at
    assert next_slot(settings, cron, at) == datetime(2026, 7, 2, 6, 0, tzinfo=UTC)
    winter = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert latest_slot(settings, cron, winter) == datetime(2026, 1, 15, 7, 0, tzinfo=UTC)
    window = Schedule(cron=None, window="night", status="active", fire_after=T0)
    night = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)  # 01:30 in Berlin
    assert latest_slot(settings, window, night) == datetime(2026, 7, 1, 20, 0, tzinfo=UTC)
    assert next_slot(settings, window, night) == datetime(2026, 7, 2, 20, 0, tzinfo=UTC)
    window.status = "paused"
    assert next_slot(settings, window, night) is None


@pytest.mark.services
def test_s3_prefix_firings_submit_only_new_or_changed_objects(
    make_setup: MakeSetup, s3_service: S3Service, source_bucket: str
) -> None:
    """Filtered objects become one batch; later slots take only added or modified ones."""
    setup = make_setup("postgres-s3", schedule_s3_buckets=[source_bucket])
    s3 = s3_service.client()
    for key, body in {
        "in/a.txt": b"alpha",
        "in/b.TXT": b"bravo",
        "in/c.md": b"# charlie",  # extension filtered out
        "in/big.txt": b"x" * 2000,  # over max_bytes
        "in/bin.txt": BINARY,  # not a document: skipped, counted
        "out/d.txt": b"outside the prefix",
    }.items():
        s3.put_object(Bucket=source_bucket, Key=key, Body=body)
    schedule_id = setup.schedule(_s3_schedule(source_bucket))
    assert setup.fire(T0 + timedelta(minutes=30)) == []  # the 10:00 slot is before creation
    [first] = setup.fire(T0 + timedelta(hours=1))
    firing = setup.firing(first)
    assert firing.status == "submitted" and firing.slot == datetime(2026, 3, 1, 11, tzinfo=UTC)
    assert (firing.objects_listed, firing.objects_new) == (3, 3)
    assert setup.lines(firing.batch_id) == {"in/a.txt": b"alpha", "in/b.TXT": b"bravo"}
    assert setup.fire(T0 + timedelta(hours=1, minutes=20)) == []  # same slot: fired already
    s3.put_object(Bucket=source_bucket, Key="in/a.txt", Body=b"alpha, second edition")
    s3.put_object(Bucket=source_bucket, Key="in/e.txt", Body=b"echo")
    [second] = setup.fire(T0 + timedelta(hours=2))
    firing = setup.firing(second)
    assert (firing.status, firing.objects_listed, firing.objects_new) == ("submitted", 4, 2)
    assert setup.lines(firing.batch_id) == {
        "in/a.txt": b"alpha, second edition",
        "in/e.txt": b"echo",
    }
    [third] = setup.fire(T0 + timedelta(hours=3))
    assert setup.firing(third).status == "empty" and setup.firing(third).batch_id is None
    with setup.ctx.db.transaction() as session:
        batch = session.get_one(Batch, str(firing.batch_id))
        assert batch.schedule_id == schedule_id and batch.status == "in_progress"
        skipped = session.scalars(
            select(ScheduleObject.key).where(ScheduleObject.file_id.is_(None))
        ).all()
        assert skipped == ["in/bin.txt"]


@pytest.mark.services
def test_an_unreachable_s3_source_fails_the_firing_with_the_reason(
    make_setup: MakeSetup,
) -> None:
    """A bucket that does not exist makes a `failed` firing that says why."""
    setup = make_setup("postgres-s3", schedule_s3_buckets=["no-such-bucket-here"])
    setup.schedule(_s3_schedule("no-such-bucket-here"))
    [firing_id] = setup.fire(T0 + timedelta(hours=1))
    firing = setup.firing(firing_id)
    assert firing.status == "failed" and "no-such-bucket-here" in str(firing.error_message)


@pytest.mark.parametrize("kind", ["sqlite-local", "postgres-s3"])
def test_local_folder_firings_detect_new_and_modified_files(
    make_setup: MakeSetup, tmp_path: Path, kind: str
) -> None:
    """A folder source: subfolders are read; dotfiles, escaping or dangling symlinks are not."""
    root = tmp_path / "drop"
    (root / "inbox" / "deep").mkdir(parents=True)
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"not yours")
    inbox = root / "inbox"
    (inbox / "a.txt").write_bytes(b"alpha")
    (inbox / "deep" / "b.txt").write_bytes(b"bravo")
    (inbox / ".partial.txt").write_bytes(b"half written")
    (inbox / "leak.txt").symlink_to(outside)
    (inbox / "dangling.txt").symlink_to(tmp_path / "gone.txt")
    setup = make_setup(kind, schedule_local_roots=[root])
    body = {"cron": "0 * * * *", "source": {"type": "local", "path": str(inbox)}, "template": QA}
    setup.schedule(body)
    [first] = setup.fire(T0 + timedelta(hours=1))
    firing = setup.firing(first)
    assert firing.status == "submitted", firing.error_message
    assert setup.lines(firing.batch_id) == {"a.txt": b"alpha", "deep/b.txt": b"bravo"}
    (inbox / "a.txt").write_bytes(b"alpha, longer now")
    (inbox / "c.txt").write_bytes(b"charlie")
    [second] = setup.fire(T0 + timedelta(hours=2))
    firing = setup.firing(second)
    assert (firing.objects_listed, firing.objects_new) == (3, 2)
    assert setup.lines(firing.batch_id) == {"a.txt": b"alpha, longer now", "c.txt": b"charlie"}


def test_a_failed_firing_records_nothing_so_the_next_slot_retries(
    make_setup: MakeSetup, tmp_path: Path
) -> None:
    """While the folder is gone the firing fails; the next slot takes every file."""
    root = tmp_path / "drop"
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "a.txt").write_bytes(b"alpha")
    setup = make_setup("sqlite-local", schedule_local_roots=[root])
    setup.schedule(
        {"cron": "0 * * * *", "source": {"type": "local", "path": str(inbox)}, "template": QA}
    )
    inbox.rename(root / "away")
    [failed] = setup.fire(T0 + timedelta(hours=1))
    assert setup.firing(failed).status == "failed"
    assert "does not exist" in str(setup.firing(failed).error_message)
    (root / "away").rename(inbox)
    [retried] = setup.fire(T0 + timedelta(hours=2))
    assert setup.lines(setup.firing(retried).batch_id) == {"a.txt": b"alpha"}


def test_a_firing_takes_at_most_batch_max_lines_and_leaves_the_rest_for_later(
    make_setup: MakeSetup, tmp_path: Path
) -> None:
    """With a limit of two lines, three new files are taken as two, then one, in key order."""
    root = tmp_path / "drop"
    root.mkdir()
    for name in ("a", "b", "c"):
        (root / f"{name}.txt").write_bytes(name.encode() * 3)
    setup = make_setup("sqlite-local", schedule_local_roots=[root], batch_max_lines=2)
    setup.schedule(
        {"cron": "0 * * * *", "source": {"type": "local", "path": str(root)}, "template": QA}
    )
    [first] = setup.fire(T0 + timedelta(hours=1))
    assert set(setup.lines(setup.firing(first).batch_id)) == {"a.txt", "b.txt"}
    [second] = setup.fire(T0 + timedelta(hours=2))
    assert set(setup.lines(setup.firing(second).batch_id)) == {"c.txt"}


def test_pause_skips_slots_and_resume_does_not_backfill(
    make_setup: MakeSetup, tmp_path: Path
) -> None:
    """Slots passing while paused never fire; after resume the next slot takes what arrived."""
    root = tmp_path / "drop"
    root.mkdir()
    (root / "a.txt").write_bytes(b"alpha")
    setup = make_setup("sqlite-local", schedule_local_roots=[root])
    schedule_id = setup.schedule(
        {"cron": "0 * * * *", "source": {"type": "local", "path": str(root)}, "template": QA}
    )
    assert len(setup.fire(T0 + timedelta(hours=1))) == 1  # 11:00
    with setup.ctx.db.transaction() as session:
        set_status(
            session, setup.tenant_id, schedule_id, "pause", T0 + timedelta(hours=1, minutes=20)
        )
    (root / "b.txt").write_bytes(b"bravo")
    assert setup.fire(T0 + timedelta(hours=2)) == []  # 12:00, paused
    assert setup.fire(T0 + timedelta(hours=3)) == []  # 13:00, paused
    with setup.ctx.db.transaction() as session:
        resumed = set_status(
            session, setup.tenant_id, schedule_id, "resume", T0 + timedelta(hours=3, minutes=20)
        )
        assert next_slot(setup.ctx.settings, resumed, T0 + timedelta(hours=3, minutes=20)) == (
            datetime(2026, 3, 1, 14, tzinfo=UTC)
        )
    assert setup.fire(T0 + timedelta(hours=3, minutes=40)) == []  # 13:00 is not backfilled
    [late] = setup.fire(T0 + timedelta(hours=4))
    assert setup.lines(setup.firing(late).batch_id) == {"b.txt": b"bravo"}
    with setup.ctx.db.transaction() as session:
        slots = session.scalars(select(ScheduleFiring.slot).order_by(ScheduleFiring.slot)).all()
    assert [s.hour for s in slots] == [11, 14]


def test_a_deleted_schedule_is_hidden_and_stops_firing_but_keeps_its_history(
    make_setup: MakeSetup, tmp_path: Path
) -> None:
    """After delete: NotFound, no more firings, and the old firing rows are still there."""
    root = tmp_path / "drop"
    root.mkdir()
    (root / "a.txt").write_bytes(b"alpha")
    setup = make_setup("sqlite-local", schedule_local_roots=[root])
    schedule_id = setup.schedule(
        {"cron": "0 * * * *", "source": {"type": "local", "path": str(root)}, "template": QA}
    )
    assert len(setup.fire(T0 + timedelta(hours=1))) == 1
    with setup.ctx.db.transaction() as session:
        set_status(session, setup.tenant_id, schedule_id, "delete")
    (root / "b.txt").write_bytes(b"bravo")
    assert setup.fire(T0 + timedelta(hours=2)) == []
    with setup.ctx.db.transaction() as session:
        with pytest.raises(NotFound):
            get_schedule(session, setup.tenant_id, schedule_id)
        assert session.scalar(select(func.count()).select_from(ScheduleFiring)) == 1


def test_a_firing_left_running_by_a_dead_beat_is_marked_failed(
    make_setup: MakeSetup, tmp_path: Path
) -> None:
    """A `running` firing older than the stale limit becomes `failed` on the next pass."""
    root = tmp_path / "drop"
    root.mkdir()
    setup = make_setup("sqlite-local", schedule_local_roots=[root])
    schedule_id = setup.schedule(
        {"cron": "0 * * * *", "source": {"type": "local", "path": str(root)}, "template": QA}
    )
    with setup.ctx.db.transaction() as session:
        session.add(
            ScheduleFiring(
                id=new_id("firing"),
                schedule_id=schedule_id,
                tenant_id=setup.tenant_id,
                slot=T0,
                status="running",
                created_at=utcnow() - timedelta(hours=13),
            )
        )
    setup.fire(T0)
    with setup.ctx.db.transaction() as session:
        firing = session.scalars(select(ScheduleFiring)).one()
    assert firing.status == "failed" and "interrupted" in str(firing.error_message)


def _beat(settings_values: dict[str, Any], now: datetime, start: Any, done: Any, out: Any) -> None:
    """One beat process: fires the schedules each round, between the parent's barriers."""
    from core.db import Database

    settings = Settings(**settings_values)
    db = Database(settings.sqlalchemy_url)
    store = make_store(settings)
    fired: list[str] = []
    for hour in range(3):
        start.wait()
        fired += fire_due(db, store, InlineDispatcher(), settings, now + timedelta(hours=hour))
        done.wait()
    db.dispose()
    out.put(fired)


@pytest.mark.services
def test_two_beat_processes_fire_each_slot_exactly_once(
    make_setup: MakeSetup, s3_service: S3Service, source_bucket: str
) -> None:
    """Two processes fire the same slots on PostgreSQL at once: one firing and batch per slot."""
    setup = make_setup("postgres-s3", schedule_s3_buckets=[source_bucket])
    setup.schedule(_s3_schedule(source_bucket))
    s3 = s3_service.client()
    values = setup.ctx.settings.model_dump(mode="json")
    values["s3_secret_access_key"] = s3_service.secret_key
    spawn = multiprocessing.get_context("spawn")
    start, done, out = spawn.Barrier(3), spawn.Barrier(3), spawn.Queue()
    beats = [
        spawn.Process(target=_beat, args=(values, T0 + timedelta(hours=1), start, done, out))
        for _ in range(2)
    ]
    for beat in beats:
        beat.start()
    for hour in range(3):
        s3.put_object(Bucket=source_bucket, Key=f"in/file{hour}.txt", Body=b"text %d" % hour)
        start.wait(timeout=120)
        done.wait(timeout=120)
    fired = [out.get(timeout=60) for _ in beats]
    for beat in beats:
        beat.join(timeout=60)
        assert beat.exitcode == 0
    assert sum(len(f) for f in fired) == 3  # each slot was fired by one of the two
    with setup.ctx.db.transaction() as session:
        firings = session.scalars(select(ScheduleFiring).order_by(ScheduleFiring.slot)).all()
        assert [f.status for f in firings] == ["submitted"] * 3
        assert session.scalar(select(func.count()).select_from(Batch)) == 3
        custom_ids = session.scalars(select(Job.custom_id).order_by(Job.custom_id)).all()
    assert custom_ids == ["in/file0.txt", "in/file1.txt", "in/file2.txt"]


@pytest.mark.services
def test_an_object_replaced_after_listing_is_left_for_the_next_slot(
    make_setup: MakeSetup, s3_service: S3Service, source_bucket: str, tmp_path: Path
) -> None:
    """Opening checks the listed version (S3 If-Match, folder size+mtime): a change is refused."""
    setup = make_setup(
        "postgres-s3", schedule_local_roots=[tmp_path], schedule_s3_buckets=[source_bucket]
    )
    s3 = s3_service.client()
    s3.put_object(Bucket=source_bucket, Key="in/a.txt", Body=b"alpha")
    (tmp_path / "a.txt").write_bytes(b"alpha")
    for source in (
        {"type": "s3", "bucket": source_bucket, "prefix": "in/"},
        {"type": "local", "path": str(tmp_path)},
    ):
        opened = open_source(setup.ctx.settings, source)
        [listed] = [o for o in opened.list_objects() if o.key.endswith("a.txt")]
        with opened.open_object(listed) as stream:
            assert stream.read() == b"alpha"
    s3.put_object(Bucket=source_bucket, Key="in/a.txt", Body=b"alpha two")
    (tmp_path / "a.txt").write_bytes(b"alpha two")
    for source in (
        {"type": "s3", "bucket": source_bucket, "prefix": "in/"},
        {"type": "local", "path": str(tmp_path)},
    ):
        opened = open_source(setup.ctx.settings, source)
        with pytest.raises(ObjectChanged), opened.open_object(listed):
            pass


def test_objects_over_the_upload_cap_are_skipped_and_counted(
    make_setup: MakeSetup, tmp_path: Path
) -> None:
    """A file larger than max_upload_bytes is recorded as taken without a file, not retried."""
    root = tmp_path / "drop"
    root.mkdir()
    (root / "small.txt").write_bytes(b"tiny")
    (root / "large.txt").write_bytes(b"far too large for the cap")
    setup = make_setup("sqlite-local", schedule_local_roots=[root], max_upload_bytes=10)
    setup.schedule(
        {"cron": "0 * * * *", "source": {"type": "local", "path": str(root)}, "template": QA}
    )
    [first] = setup.fire(T0 + timedelta(hours=1))
    assert setup.lines(setup.firing(first).batch_id) == {"small.txt": b"tiny"}
    with setup.ctx.db.transaction() as session:
        assert skipped_counts(session, [first]) == {first: 1}
    [second] = setup.fire(T0 + timedelta(hours=2))
    assert setup.firing(second).status == "empty" and setup.firing(second).objects_new == 0


def test_the_reconciler_fires_due_schedules(make_setup: MakeSetup, tmp_path: Path) -> None:
    """Beat's reconcile pass runs the schedules and reports the firings it made."""
    root = tmp_path / "drop"
    root.mkdir()
    (root / "a.txt").write_bytes(b"alpha")
    setup = make_setup("sqlite-local", schedule_local_roots=[root])
    setup.schedule(
        {"cron": "0 * * * *", "source": {"type": "local", "path": str(root)}, "template": QA}
    )
    report = reconcile(setup.ctx, T0 + timedelta(hours=1))
    assert len(report.schedules) == 1 and report.total >= 1
    assert setup.firing(report.schedules[0]).status == "submitted"
    assert reconcile(setup.ctx, T0 + timedelta(hours=1, minutes=5)).schedules == []
