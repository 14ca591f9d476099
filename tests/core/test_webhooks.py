"""Webhook deliveries against a real HTTP receiver: signing, retries with backoff, the SSRF guard.

Time is injected (`now=`) and jitter seeded, so retries are checked exactly without sleeping.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from core.db.models import Tenant, WebhookDelivery
from core.db.types import utcnow
from core.queue import Dispatcher
from core.webhooks import emit, new_secret, tenant_secret
from tests.fixtures.backends import Service
from tests.receiver import Receiver
from worker.webhooks import deliver, deliver_webhook, due_deliveries, redeliver

ALLOW_LOOPBACK = {"fetch_allow_networks": ["127.0.0.1/32"]}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A signature-checking HTTP receiver on 127.0.0.1."""
    with Receiver().running() as running:
        yield running


def _tenant(service: Service, receiver: Receiver, name: str = "acme") -> str:
    service.new_key(name)
    with service.context.db.transaction() as session:
        tenant_id = session.scalars(select(Tenant.id).where(Tenant.name == name)).one()
        receiver.secret = tenant_secret(session, tenant_id)
    return str(tenant_id)


def _emit(
    service: Service,
    tenant_id: str,
    url: str,
    dispatcher: Dispatcher | None = None,
    object_id: str = "job_1",
) -> str:
    with service.context.db.transaction() as session:
        delivery_id = emit(
            session,
            dispatcher,
            tenant_id=tenant_id,
            event="job.succeeded",
            object_id=object_id,
            url=url,
            data={"id": object_id, "object": "job", "status": "succeeded"},
        )
    assert delivery_id is not None
    return delivery_id


def _row(service: Service, delivery_id: str) -> WebhookDelivery:
    with service.context.db.transaction() as session:
        return session.get_one(WebhookDelivery, delivery_id)


def _wait(row: WebhookDelivery, since: datetime) -> float:
    assert row.next_attempt_at is not None
    return (row.next_attempt_at - since).total_seconds()


def test_a_secret_is_whsec_and_24_random_bytes() -> None:
    """Secrets follow the Standard Webhooks format and differ every time."""
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert new_secret() != secret


def test_failures_back_off_and_the_reconciler_resends_until_delivered(
    make_service: object, receiver: Receiver
) -> None:
    """500, 500, 200: each retry waits backoff * 2**(n-1) * jitter, then ends delivered at 3."""
    service: Service = make_service(**ALLOW_LOOPBACK)  # type: ignore[operator]
    ctx = service.context
    receiver.statuses = [500, 500]
    delivery_id = _emit(service, _tenant(service, receiver), receiver.url, service.dispatcher)

    # First attempt: published after the commit, run by the dispatcher on the real clock.
    before = utcnow()
    assert service.dispatcher.pending() == [("webhook", delivery_id)]
    service.dispatcher.drain()
    after = utcnow()
    row = _row(service, delivery_id)
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 500)
    assert row.last_error == "HTTP 500"
    base = service.settings.webhook_backoff_seconds
    assert 0.5 * base <= _wait(row, before) and _wait(row, after) < 1.5 * base

    # Later attempts only when the reconciler finds them due; the clock and jitter are injected.
    rng, replay = random.Random(7), random.Random(7)
    due = row.next_attempt_at
    assert due is not None
    assert redeliver(ctx, due - timedelta(milliseconds=1)) == []
    assert deliver_webhook(ctx, delivery_id, now=due - timedelta(seconds=1)) is None  # not due
    assert redeliver(ctx, due) == [delivery_id]
    assert service.dispatcher.discard() == [("webhook", delivery_id)]
    assert deliver_webhook(ctx, delivery_id, now=due, rng=rng) == "pending"
    row = _row(service, delivery_id)
    assert row.attempts == 2
    assert _wait(row, due) == pytest.approx(2 * base * (0.5 + replay.random()), abs=1e-3)

    due = row.next_attempt_at
    assert due is not None
    with ctx.db.transaction() as session:
        assert due_deliveries(session, due) == [delivery_id]
    assert deliver_webhook(ctx, delivery_id, now=due, rng=rng) == "delivered"
    row = _row(service, delivery_id)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 3, 200)
    assert row.last_error is None and row.delivered_at == due
    assert redeliver(ctx, due + timedelta(days=1)) == []

    # Every attempt carried the same id and body, each verified by the receiver.
    assert [r.error for r in receiver.requests] == [None, None, None]
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivery_id}
    assert len({r.body for r in receiver.requests}) == 1
    assert receiver.events() == ["job.succeeded"] * 3


def test_a_receiver_that_always_fails_ends_failed_after_max_attempts(
    make_service: object, receiver: Receiver
) -> None:
    """A 503 on every attempt: `failed` after webhook_max_attempts, last error kept, no more."""
    service: Service = make_service(**ALLOW_LOOPBACK, webhook_max_attempts=3)  # type: ignore[operator]
    receiver.default = 503
    delivery_id = _emit(service, _tenant(service, receiver), receiver.url)
    now = utcnow()
    statuses = []
    for _ in range(4):
        statuses.append(deliver_webhook(service.context, delivery_id, now=now))
        row = _row(service, delivery_id)
        now = row.next_attempt_at or now
    assert statuses == ["pending", "pending", "failed", None]
    row = _row(service, delivery_id)
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 3, 503)
    assert row.last_error == "HTTP 503" and row.delivered_at is None
    assert len(receiver.requests) == 3
    assert redeliver(service.context, now + timedelta(days=30)) == []


def test_a_url_refused_at_delivery_time_fails_at_once(
    make_service: object, receiver: Receiver
) -> None:
    """The guard runs again at delivery: without the allow-list, loopback fails with no retry."""
    service: Service = make_service(**ALLOW_LOOPBACK)  # type: ignore[operator]
    delivery_id = _emit(service, _tenant(service, receiver), receiver.url)
    strict = service.settings.model_copy(update={"fetch_allow_networks": []})
    assert deliver(service.context.db, strict, delivery_id) == "failed"
    row = _row(service, delivery_id)
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, None)
    assert row.last_error is not None
    assert "fetch_blocked" in row.last_error and "loopback" in row.last_error
    assert receiver.requests == []


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    make_service: object, receiver: Receiver
) -> None:
    """A 302 is not followed: the attempt counts as failed and is retried later."""
    service: Service = make_service(**ALLOW_LOOPBACK)  # type: ignore[operator]
    receiver.statuses = [302]
    delivery_id = _emit(service, _tenant(service, receiver), receiver.url)
    assert deliver_webhook(service.context, delivery_id) == "pending"
    row = _row(service, delivery_id)
    assert row.last_status_code == 302
    assert row.last_error is not None and "redirect" in row.last_error
    assert [r.path for r in receiver.requests] == ["/hooks"]


def test_an_event_is_recorded_once_per_object(make_service: object, receiver: Receiver) -> None:
    """Emitting the same (object, event) again, in the same or a later transaction, is a no-op."""
    service: Service = make_service(**ALLOW_LOOPBACK)  # type: ignore[operator]
    tenant_id = _tenant(service, receiver)
    first = _emit(service, tenant_id, receiver.url, service.dispatcher)
    with service.context.db.transaction() as session:
        for _ in range(2):
            again = emit(
                session,
                service.dispatcher,
                tenant_id=tenant_id,
                event="job.succeeded",
                object_id="job_1",
                url=receiver.url,
                data={},
            )
            assert again is None
        count = session.scalar(select(func.count()).select_from(WebhookDelivery))
    assert count == 1
    assert service.dispatcher.pending() == [("webhook", first)]
    service.dispatcher.drain()
    assert receiver.events() == ["job.succeeded"]


def test_a_tampered_request_fails_verification(make_service: object, receiver: Receiver) -> None:
    """The receiver's check is real: a changed body, signature or secret does not verify."""
    service: Service = make_service(**ALLOW_LOOPBACK)  # type: ignore[operator]
    _emit(service, _tenant(service, receiver), receiver.url, service.dispatcher)
    service.dispatcher.drain()
    [request] = receiver.requests
    assert request.error is None and request.verified["data"]["id"] == "job_1"
    assert receiver.secret is not None
    hook = Webhook(receiver.secret)
    assert hook.verify(request.body, request.headers) == request.payload
    tampered_body = request.body.replace(b"succeeded", b"failed")
    with pytest.raises(WebhookVerificationError):
        hook.verify(tampered_body, request.headers)
    signature = request.headers["webhook-signature"]
    # Change a character in the middle: the last ones of the base64 may carry only padding bits.
    middle = len(signature) // 2
    flipped = (
        signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    )
    with pytest.raises(WebhookVerificationError):
        hook.verify(request.body, request.headers | {"webhook-signature": flipped})
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)


def test_a_host_that_does_not_resolve_is_retried(make_service: object, receiver: Receiver) -> None:
    """DNS failure at delivery time is not final: the attempt is retried after a backoff."""
    service: Service = make_service()  # type: ignore[operator]
    delivery_id = _emit(service, _tenant(service, receiver), "http://hooks.does-not-exist.invalid/")
    assert deliver_webhook(service.context, delivery_id) == "pending"
    row = _row(service, delivery_id)
    assert row.attempts == 1 and row.next_attempt_at is not None
    assert row.last_error is not None and "does not resolve" in row.last_error


def test_a_sender_lost_on_the_last_attempt_ends_failed(
    make_service: object, receiver: Receiver
) -> None:
    """A delivery whose last allowed attempt never recorded (worker died) is failed, not re-sent."""
    service: Service = make_service(**ALLOW_LOOPBACK, webhook_max_attempts=2)  # type: ignore[operator]
    delivery_id = _emit(service, _tenant(service, receiver), receiver.url)
    past = utcnow() - timedelta(minutes=5)
    with service.context.db.transaction() as session:
        row = session.get_one(WebhookDelivery, delivery_id)
        row.attempts, row.lease_until = 2, past  # claimed twice; the lease ran out
    assert redeliver(service.context) == [delivery_id]
    service.dispatcher.drain()
    row = _row(service, delivery_id)
    assert (row.status, row.attempts) == ("failed", 2)
    assert row.last_error == "attempts exhausted: the sender was lost"
    assert receiver.requests == []
