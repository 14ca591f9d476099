"""The in-process dispatcher's public test surface: what is queued, and losing it on purpose."""

from __future__ import annotations

from worker.inline import InlineDispatcher


def test_discard_drops_the_queued_messages_unrun_and_returns_them() -> None:
    """Queued messages are listed oldest first; discard empties the queue and returns them."""
    dispatcher = InlineDispatcher()
    dispatcher.plan("job_1")
    dispatcher.infer("chunk_1", priority=9)
    dispatcher.webhook("delivery_1")
    queued = [("plan", "job_1"), ("infer", "chunk_1"), ("webhook", "delivery_1")]

    assert dispatcher.pending() == queued
    assert dispatcher.discard() == queued
    assert dispatcher.pending() == []
    assert dispatcher.discard() == []
