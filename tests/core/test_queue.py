"""The Celery app routes each step to its own queue in Redis, once, with an expiry and priority."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis

from core.queue import CeleryDispatcher, make_celery
from core.settings import Settings


def _messages(client: redis.Redis, queue: str) -> dict[str, list[dict[str, Any]]]:
    """Messages of `queue` by Redis list: kombu keeps one list per priority level."""
    found: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(client.keys(f"{queue}*")):
        name = key.decode()
        if name == queue or name.startswith(f"{queue}:"):
            found[name] = [json.loads(m) for m in client.lrange(name, 0, -1)]
    return {k: v for k, v in found.items() if v}


def test_each_step_lands_on_its_own_queue_at_its_priority(redis_url: str, tmp_path: Path) -> None:
    """plan/finalize go to `ingest`, infer to `infer`, once each, expiring, by priority level."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    settings = Settings(home=tmp_path, redis_url=redis_url, message_expiry_seconds=600)
    app = make_celery(settings)
    with app.connection_for_write() as conn:  # declare queues and bindings as a worker does
        for queue in app.amqp.queues.values():
            queue(conn.default_channel).declare()
    dispatcher = CeleryDispatcher(app, settings)
    dispatcher.plan("job_bulk", priority=1)
    dispatcher.plan("job_urgent", priority=9)
    dispatcher.infer("chk_1")
    dispatcher.finalize("job_1")
    ingest = _messages(client, "ingest")
    infer = _messages(client, "infer")
    tasks = sorted(
        (m["headers"]["task"], m["headers"]["argsrepr"]) for ms in ingest.values() for m in ms
    )
    assert tasks == [
        ("nightowl.finalize", "['job_1']"),
        ("nightowl.plan", "['job_bulk']"),
        ("nightowl.plan", "['job_urgent']"),
    ]
    # Priority 9 is kombu's level 0, the plain list, which consumers read before the others.
    assert [m["headers"]["argsrepr"] for m in ingest["ingest"]] == ["['job_urgent']"]
    assert [m["headers"]["argsrepr"] for m in ingest["ingest:8"]] == ["['job_bulk']"]
    assert [m["headers"]["task"] for ms in infer.values() for m in ms] == ["nightowl.infer"]
    every = [m for ms in [*ingest.values(), *infer.values()] for m in ms]
    assert all(m["headers"]["expires"] for m in every)
    assert all(m["content-type"] == "application/json" for m in every)
    client.flushdb()
