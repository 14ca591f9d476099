"""Firing schedules (run by beat): each due (schedule, slot) becomes at most one batch.

One firing, in three steps:

1. Claim: insert the (schedule, slot) firing row as `running` and commit it alone. The unique
   key on that pair makes this the one place where two beats race; the loser's insert fails and
   it moves on, so a slot fires once however many beats run.
2. Copy, outside any transaction: list the source, keep what passes the filter, drop the
   (key, version) pairs the schedule has taken before, and copy at most `MAX_NEW_PER_FIRING`
   (and `batch_max_lines`) of the rest, in key order, into our storage as files (streamed,
   capped at `max_upload_bytes`, content sniffed). The rest wait for the next slot. Objects the
   template's kind cannot read, or that are too large, are recorded as taken without a file,
   so they are not read again, and counted as skipped.
3. Submit, in one transaction: the files, the taken (key, version) rows, a JSONL input file
   (custom_id = the source key) and the batch, and the firing becomes `submitted` (or `empty`).

When a step fails (source unreachable, storage down, the batch refused), that transaction rolls
back and the firing becomes `failed` with the reason; since no object was recorded as taken,
the next slot tries them again. Objects already copied by a failed firing stay in storage
without a file row. A firing still `running` `STALE_AFTER` after its claim (its beat died) is
marked failed by the next pass; a late finish of such a firing is rolled back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.batch_intake import ENDPOINT, BatchRequest, create_batch
from core.db import Database
from core.db.models import File, Schedule, ScheduleFiring, ScheduleObject
from core.db.types import new_id, utcnow
from core.errors import Conflict, NightowlError, TooLarge, Unprocessable
from core.files import put_file, store_file
from core.kinds import KINDS
from core.logging import get_logger
from core.queue import Dispatcher
from core.schedules import ObjectFilter, latest_slot
from core.settings import Settings
from core.sniff import SNIFF_BYTES, sniff_content_type
from core.storage import ObjectStore
from worker.context import WorkerContext
from worker.schedule_sources import ObjectChanged, Source, SourceObject, open_source

log = get_logger("worker.schedule_firing")
MAX_NEW_PER_FIRING = 1000
STALE_AFTER = timedelta(hours=12)
_IN_CHUNK = 500


@dataclass(frozen=True)
class _Taken:
    """A new object of this firing: copied into `file`, or skipped (file None)."""

    obj: SourceObject
    file: File | None


class _HeadThenRest:
    """A reader that gives back the sniffed head first, then the rest of the stream."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if self._head:
            size = len(self._head) if size is None or size < 0 else size
            piece, self._head = self._head[:size], self._head[size:]
            return piece
        return self._stream.read(size)


def _read_head(stream: BinaryIO) -> bytes:
    head = b""
    while len(head) < SNIFF_BYTES:
        piece = stream.read(SNIFF_BYTES - len(head))
        if not piece:
            break
        head += piece
    return head


def fire_due(
    db: Database,
    store: ObjectStore,
    dispatcher: Dispatcher,
    settings: Settings,
    now: datetime | None = None,
) -> list[str]:
    """Fire every active schedule whose latest slot has not fired; returns the new firing ids."""
    now = now or utcnow()
    _fail_stale(db)
    fired: list[str] = []
    for schedule_id, tenant_id, slot in _due(db, settings, now):
        firing_id = _claim(db, schedule_id, tenant_id, slot)
        if firing_id is None:
            continue
        _run(db, store, dispatcher, settings, firing_id)
        fired.append(firing_id)
    return fired


def _fail_stale(db: Database) -> None:
    # By the database clock (created_at), not the injected `now`, which only places slots.
    with db.transaction() as session:
        session.execute(
            update(ScheduleFiring)
            .where(
                ScheduleFiring.status == "running",
                ScheduleFiring.created_at < utcnow() - STALE_AFTER,
            )
            .values(status="failed", error_message="interrupted: the firing did not finish")
        )


def _due(db: Database, settings: Settings, now: datetime) -> list[tuple[str, str, datetime]]:
    due: list[tuple[str, str, datetime]] = []
    with db.transaction() as session:
        for schedule in session.scalars(select(Schedule).where(Schedule.status == "active")):
            slot = latest_slot(settings, schedule, now)
            if slot is None or slot <= schedule.fire_after:
                continue
            fired = session.scalar(
                select(ScheduleFiring.id).where(
                    ScheduleFiring.schedule_id == schedule.id, ScheduleFiring.slot == slot
                )
            )
            if fired is None:
                due.append((schedule.id, schedule.tenant_id, slot))
    return due


def _claim(db: Database, schedule_id: str, tenant_id: str, slot: datetime) -> str | None:
    firing = ScheduleFiring(
        id=new_id("firing"),
        schedule_id=schedule_id,
        tenant_id=tenant_id,
        slot=slot,
        status="running",
        objects_listed=0,
        objects_new=0,
    )
    try:
        with db.transaction() as session:
            session.add(firing)
            session.flush()
    except IntegrityError:
        log.info("schedule.slot_taken", schedule_id=schedule_id, slot=slot.isoformat())
        return None
    return firing.id


def _run(
    db: Database, store: ObjectStore, dispatcher: Dispatcher, settings: Settings, firing_id: str
) -> None:
    try:
        with db.transaction() as session:
            firing = session.get_one(ScheduleFiring, firing_id)
            schedule = session.get_one(Schedule, firing.schedule_id)
            session.expunge_all()
        source = open_source(settings, schedule.source)
        rule = ObjectFilter.model_validate(schedule.filter)
        listed = [o for o in source.list_objects() if rule.accepts(o.key, o.size)]
        with db.transaction() as session:
            new = sorted(_untaken(session, schedule.id, listed), key=lambda o: o.key)
        limit = min(MAX_NEW_PER_FIRING, settings.batch_max_lines)
        taken = [_copy(store, settings, source, schedule, o) for o in new[:limit]]
        with db.transaction() as session:
            _submit(session, store, dispatcher, settings, schedule, firing, listed, taken)
    except (NightowlError, IntegrityError) as exc:
        message = exc.message if isinstance(exc, NightowlError) else "a concurrent firing took them"
        _mark_failed(db, firing_id, message)
    except Exception as exc:
        log.exception("schedule.firing_crashed", firing_id=firing_id)
        _mark_failed(db, firing_id, f"internal error: {type(exc).__name__}")


def _untaken(session: Session, schedule_id: str, listed: list[SourceObject]) -> list[SourceObject]:
    keys = sorted({o.key for o in listed})
    known: set[tuple[str, str]] = set()
    for start in range(0, len(keys), _IN_CHUNK):
        rows = session.execute(
            select(ScheduleObject.key, ScheduleObject.version).where(
                ScheduleObject.schedule_id == schedule_id,
                ScheduleObject.key.in_(keys[start : start + _IN_CHUNK]),
            )
        )
        known.update((row.key, row.version) for row in rows)
    return [o for o in listed if (o.key, o.version) not in known]


def _copy(
    store: ObjectStore, settings: Settings, source: Source, schedule: Schedule, obj: SourceObject
) -> _Taken | None:
    """Copy one object into storage as a file of the tenant; None when it changed meanwhile."""
    name = obj.key.rsplit("/", 1)[-1][:255] or "object"
    readable = KINDS[schedule.template["kind"]].content_types
    if obj.size > settings.max_upload_bytes:
        return _Taken(obj, None)
    try:
        with source.open_object(obj) as stream:
            head = _read_head(stream)
            content_type = sniff_content_type(head, name)
            if content_type is None or content_type not in readable:
                return _Taken(obj, None)
            rest = _HeadThenRest(head, stream)
            file = put_file(
                store,
                schedule.tenant_id,
                name,
                content_type,
                rest,  # type: ignore[arg-type]
                settings.max_upload_bytes,
            )
    except ObjectChanged:
        return None
    except TooLarge:
        return _Taken(obj, None)
    return _Taken(obj, file)


def _custom_id(key: str) -> str:
    # Batch lines allow 255 characters; S3 keys reach 1024.
    if len(key) <= 255:
        return key
    return f"{key[:230]}#{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _submit(
    session: Session,
    store: ObjectStore,
    dispatcher: Dispatcher,
    settings: Settings,
    schedule: Schedule,
    firing: ScheduleFiring,
    listed: list[SourceObject],
    copied: list[_Taken | None],
) -> None:
    row = session.scalar(
        select(ScheduleFiring).where(ScheduleFiring.id == firing.id).with_for_update()
    )
    if row is None or row.status != "running":
        raise Conflict(f"firing {firing.id} was marked failed while it ran")
    taken = [t for t in copied if t is not None]
    lines: list[dict[str, Any]] = []
    for item in taken:
        if item.file is not None:
            session.add(item.file)
            body = {
                "kind": schedule.template["kind"],
                "input": {"file_id": item.file.id},
                "params": schedule.template.get("params", {}),
            }
            lines.append(
                {
                    "custom_id": _custom_id(item.obj.key),
                    "method": "POST",
                    "url": ENDPOINT,
                    "body": body,
                }
            )
        session.add(
            ScheduleObject(
                id=new_id("schobj"),
                schedule_id=schedule.id,
                key=item.obj.key,
                version=item.obj.version,
                firing_id=row.id,
                file_id=item.file.id if item.file is not None else None,
            )
        )
    session.flush()
    row.objects_listed, row.objects_new = len(listed), len(taken)
    row.status = "empty"
    if lines:
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        stamp = row.slot.strftime("%Y%m%dT%H%MZ")
        jsonl = store_file(
            session,
            store,
            schedule.tenant_id,
            f"{schedule.id}_{stamp}.jsonl",
            data,
            "application/jsonl",
        )
        request = BatchRequest(
            input_file_id=jsonl.id,
            completion_window=schedule.completion_window,
            metadata={"schedule_id": schedule.id, "slot": row.slot.isoformat()},
            priority=schedule.template.get("priority"),
            window=schedule.template.get("window"),
            webhook_url=schedule.webhook_url,
        )
        batch = create_batch(
            session,
            store,
            dispatcher,
            settings,
            schedule.tenant_id,
            request,
            schedule_id=schedule.id,
        )
        if batch.status == "failed":
            first = (batch.errors or {}).get("data", [{}])[0]
            raise Unprocessable(f"the batch was refused: {first.get('message', 'unknown error')}")
        row.status, row.batch_id = "submitted", batch.id
    session.flush()
    log.info(
        "schedule.fired",
        schedule_id=schedule.id,
        firing_id=row.id,
        status=row.status,
        listed=row.objects_listed,
        new=row.objects_new,
    )


def _mark_failed(db: Database, firing_id: str, message: str) -> None:
    with db.transaction() as session:
        session.execute(
            update(ScheduleFiring)
            .where(ScheduleFiring.id == firing_id, ScheduleFiring.status == "running")
            .values(status="failed", error_message=message[:2000])
        )
    log.warning("schedule.firing_failed", firing_id=firing_id, error=message)


def fire_schedules(ctx: WorkerContext, now: datetime | None = None) -> list[str]:
    """Fire every schedule whose latest slot has not fired; returns the ids of the new firings."""
    return fire_due(ctx.db, ctx.store, ctx.dispatcher, ctx.settings, now or ctx.clock())
