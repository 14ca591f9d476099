"""The Celery app routes each step to its own queue in Redis, once, with an expiry."""

from __future__ import annotations

import json
from pathlib import Path

import redis

from core.queue import CeleryDispatcher, make_celery
from core.settings import Settings


def test_each_step_lands_on_its_own_queue_exactly_once(redis_url: str, tmp_path: Path) -> None:
    """plan and finalize go to `ingest`, infer to `infer`, one message each, expiring."""
    client = redis.Redis.from_url(redis_url)
    client.delete("ingest", "infer")
    settings = Settings(home=tmp_path, redis_url=redis_url, message_expiry_seconds=600)
    app = make_celery(settings)
    with app.connection_for_write() as conn:  # declare queues and bindings as a worker does
        for queue in app.amqp.queues.values():
            queue(conn.default_channel).declare()
    dispatcher = CeleryDispatcher(app, settings)
    dispatcher.plan("job_1")
    dispatcher.infer("chk_1")
    dispatcher.finalize("job_1")
    ingest = [json.loads(m) for m in client.lrange("ingest", 0, -1)]
    infer = [json.loads(m) for m in client.lrange("infer", 0, -1)]
    assert sorted(m["headers"]["task"] for m in ingest) == ["nightowl.finalize", "nightowl.plan"]
    assert [m["headers"]["task"] for m in infer] == ["nightowl.infer"]
    assert all(m["headers"]["expires"] for m in ingest + infer)
    assert all(m["content-type"] == "application/json" for m in ingest + infer)
    client.delete("ingest", "infer")
