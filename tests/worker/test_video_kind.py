"""video.caption through the API and the stage runner, on both backends."""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

import webvtt
from PIL import Image
from sqlalchemy import select

from core.db.models import Chunk
from testkit.media_samples import tone_bursts, write_audio, write_color_video
from tests.fixtures.backends import Service

RED, GREEN, BLUE = (220, 30, 30), (30, 200, 30), (30, 30, 220)


def _run(service: Service, key: str, file_id: str, params: dict[str, Any]) -> Any:
    body = {"kind": "video.caption", "input": {"file_id": file_id}, "params": params}
    created = service.client.post("/v1/jobs", json=body, headers=service.headers(key))
    assert created.status_code == 202, created.text
    service.dispatcher.drain()
    job_id = created.json()["id"]
    return service.client.get(f"/v1/jobs/{job_id}", headers=service.headers(key)).json()


def _get(service: Service, key: str, path: str) -> bytes:
    response = service.client.get(path, headers=service.headers(key), follow_redirects=False)
    if response.status_code == 307:
        import httpx

        return httpx.get(response.headers["location"]).content
    assert response.status_code == 200, response.text
    return response.content


def test_video_is_captioned_per_segment_with_thumbnails_and_valid_vtt(
    service: Service, tmp_path: Path
) -> None:
    """A 25 s video with audio: 10 s segments, frames at 2 fps, VTT cues inside the segments."""
    key = service.new_key("acme")
    path = write_color_video(
        tmp_path / "clip.mp4",
        segments=[(10.0, RED), (10.0, GREEN), (5.0, BLUE)],
        audio=tone_bursts([(1.0, 9.0), (12.0, 20.0)], 25.0),
    )
    job = _run(
        service,
        key,
        service.upload(key, path),
        {"fps": 2, "segment_seconds": 10, "speculative": True},
    )
    assert job["status"] == "succeeded", job
    result = service.client.get(f"/v1/jobs/{job['id']}/result", headers=service.headers(key)).json()
    timeline = result["timeline"]
    assert [(s["start"], s["end"]) for s in timeline] == [(0, 10), (10, 20), (20, 25)]
    for segment in timeline:
        times = segment["frame_times"]
        assert times[0] >= segment["start"] and times[-1] < segment["end"]
        steps = [b - a for a, b in itertools.pairwise(times)]
        assert all(abs(step - 0.5) <= 0.1 + 1e-6 for step in steps)  # 2 fps within a frame
        assert len(times) == round((segment["end"] - segment["start"]) * 2)
    assert result["with_audio"] is True
    assert result["summary"]
    assert "noise" in result["warning"]
    assert sorted(job["artifacts"]) == sorted(
        ["captions.vtt", "result.json", "summary.txt", *result["thumbnails"]]
    )
    for name in result["thumbnails"]:
        image = Image.open(io.BytesIO(_get(service, key, f"/v1/jobs/{job['id']}/artifacts/{name}")))
        assert image.format == "JPEG" and max(image.size) <= 320 and image.size[0] > image.size[1]
    first = Image.open(
        io.BytesIO(_get(service, key, f"/v1/jobs/{job['id']}/artifacts/{result['thumbnails'][0]}"))
    ).convert("RGB")
    red, green, blue = first.getpixel((first.width // 2, first.height // 2))
    assert red > 150 and green < 90 and blue < 90  # the first segment's thumbnail is red
    vtt = webvtt.from_buffer(
        io.StringIO(_get(service, key, f"/v1/jobs/{job['id']}/artifacts/captions.vtt").decode())
    )
    assert vtt.captions
    for caption in vtt.captions:
        start, end = caption.start_in_seconds, caption.end_in_seconds
        assert any(s["start"] - 0.001 <= start < end <= s["end"] + 0.001 for s in timeline)
    usage = job["usage"]
    assert usage["prompt_tokens"] > 3 * 10 * 60  # about 50 frames of about 64 soft tokens
    assert usage["draft_rounds"] > 0 and usage["drafted_calls"] > 0  # forced by the params


def test_segments_shrink_to_fit_the_vision_budget(make_service: object, tmp_path: Path) -> None:
    """With a small memory budget, segments hold fewer frames, as computed from the budget."""
    budget_frames = 6
    service: Service = make_service(  # type: ignore[operator]
        memory_budget_bytes=budget_frames * (70 + 12) * 336 * 1024
    )
    key = service.new_key("acme")
    path = write_color_video(tmp_path / "v.mp4", segments=[(8.0, RED), (8.0, BLUE)], audio=None)
    job = _run(service, key, service.upload(key, path), {"fps": 1, "segment_seconds": 10})
    assert job["status"] == "succeeded", job
    result = service.client.get(f"/v1/jobs/{job['id']}/result", headers=service.headers(key)).json()
    assert result["segment_seconds"] == budget_frames
    assert all(len(s["frame_times"]) <= budget_frames for s in result["timeline"])
    assert result["with_audio"] is False


def test_long_videos_are_summarised_hierarchically(make_service: object, tmp_path: Path) -> None:
    """When the captions exceed the reduce budget, they are condensed before the summary."""
    service: Service = make_service(reduce_context_tokens=620)  # type: ignore[operator]
    key = service.new_key("acme")
    colours = [RED, GREEN, BLUE] * 5
    path = write_color_video(
        tmp_path / "long.mp4", segments=[(4.0, c) for c in colours], size=(96, 64), audio=None
    )
    job = _run(service, key, service.upload(key, path), {"fps": 0.5, "segment_seconds": 4})
    assert job["status"] == "succeeded", job
    with service.context.db.transaction() as session:
        phases = [
            c.spec["phase"]
            for c in session.scalars(
                select(Chunk).where(Chunk.job_id == job["id"]).order_by(Chunk.index)
            )
        ]
    assert phases.count("segment") == 15
    assert "condense" in phases and phases[-1] == "summary"


def test_bad_video_inputs_fail_cleanly(service: Service, tmp_path: Path) -> None:
    """An audio-only file is refused at submission (415); a truncated video fails as invalid."""
    key = service.new_key("acme")
    audio_only = write_audio(tmp_path / "a.m4a", tone_bursts([(0, 1)], 2.0), container="m4a")
    body = {"kind": "video.caption", "input": {"file_id": service.upload(key, audio_only)}}
    response = service.client.post("/v1/jobs", json=body, headers=service.headers(key))
    assert response.status_code == 415
    whole = write_color_video(tmp_path / "w.mp4", segments=[(6.0, RED), (6.0, BLUE)], audio=None)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    job = _run(service, key, service.upload(key, cut), {})
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_input", job["error"]
