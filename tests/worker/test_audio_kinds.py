"""audio.transcribe and audio.analyze through the API and the stage runner, on both backends."""

from __future__ import annotations

import html
import io
import itertools
from pathlib import Path
from typing import Any

import srt
import webvtt
from sqlalchemy import select

from core.db.models import Chunk
from testkit.media_samples import (
    tone_bursts,
    truncated_copy,
    write_audio,
    write_video,
)
from tests.fixtures.backends import Service

# Sound with silences at known places, one inside each 20 s clip's search range for its cut.
BURSTS = [(1.0, 16.5), (18.5, 33.0), (35.0, 44.0)]
SILENCES = [(0.0, 1.0), (16.5, 18.5), (33.0, 35.0), (44.0, 45.0)]


def _run(service: Service, key: str, kind: str, file_id: str, params: dict[str, Any]) -> Any:
    body = {"kind": kind, "input": {"file_id": file_id}, "params": params}
    created = service.client.post("/v1/jobs", json=body, headers=service.headers(key))
    assert created.status_code == 202, created.text
    service.dispatcher.drain()
    return service.client.get(
        f"/v1/jobs/{created.json()['id']}", headers=service.headers(key)
    ).json()


def _artifact(service: Service, key: str, job_id: str, name: str) -> str:
    response = service.client.get(
        f"/v1/jobs/{job_id}/artifacts/{name}", headers=service.headers(key), follow_redirects=False
    )
    if response.status_code == 307:
        import httpx

        return httpx.get(response.headers["location"]).text
    assert response.status_code == 200, response.text
    return response.text


def _clips(service: Service, job_id: str) -> list[tuple[float, float]]:
    with service.context.db.transaction() as session:
        rows = session.scalars(select(Chunk).where(Chunk.job_id == job_id).order_by(Chunk.index))
        return [(c.spec["start"], c.spec["end"]) for c in rows if "start" in c.spec]


def test_transcribe_cuts_in_silences_and_writes_valid_subtitles(
    service: Service, tmp_path: Path
) -> None:
    """A 45 s recording is cut in its silences; SRT, VTT and text follow the clips' times."""
    key = service.new_key("acme")
    path = write_audio(tmp_path / "talk.flac", tone_bursts(BURSTS, 45.0), container="flac")
    job = _run(
        service,
        key,
        "audio.transcribe",
        service.upload(key, path),
        {"language": "en", "speculative": True},
    )
    assert job["status"] == "succeeded", job
    clips = _clips(service, job["id"])
    assert len(clips) == 3
    cuts = [(a[1] + b[0]) / 2 for a, b in itertools.pairwise(clips)]
    for cut in cuts:
        assert any(lo <= cut <= hi for lo, hi in SILENCES), (cut, clips)
    assert all(end - start <= 20.0 + 1e-6 for start, end in clips)
    result = service.client.get(f"/v1/jobs/{job['id']}/result", headers=service.headers(key)).json()
    assert abs(result["duration"] - 45.0) < 0.05
    assert result["language"] == "en"
    assert "noise" in result["warning"]
    segments = result["segments"]
    assert segments, result
    bounds = [0.0, *cuts, result["duration"]]
    for segment in segments:  # each segment spans exactly one clip between its cut points
        assert any(
            abs(segment["start"] - a) < 0.002 and abs(segment["end"] - b) < 0.002
            for a, b in itertools.pairwise(bounds)
        ), (segment, bounds)
    subtitles = list(srt.parse(_artifact(service, key, job["id"], "transcript.srt")))
    vtt = webvtt.from_buffer(io.StringIO(_artifact(service, key, job["id"], "transcript.vtt")))
    assert subtitles and len(subtitles) == len(vtt.captions)
    previous_end = 0.0
    for sub, caption in zip(subtitles, vtt.captions, strict=True):
        start, end = sub.start.total_seconds(), sub.end.total_seconds()
        assert previous_end <= start < end <= result["duration"] + 1e-3
        assert sub.content.strip()
        assert abs(caption.start_in_seconds + caption.start_time.milliseconds / 1000 - start) < 2e-3
        assert html.unescape(caption.raw_text) == sub.content
        assert any(s["start"] - 1e-3 <= start and end <= s["end"] + 1e-3 for s in segments)
        previous_end = end
    text = _artifact(service, key, job["id"], "transcript.txt")
    assert text.splitlines()[0].startswith("[00:00:00]")
    usage = job["usage"]
    assert usage["prompt_tokens"] > 3 * 20 * 25  # three clips of about 15-20 s of audio
    assert usage["draft_rounds"] > 0 and usage["drafted_calls"] > 0  # forced by the params


def test_the_audio_track_of_a_video_is_transcribed(service: Service, tmp_path: Path) -> None:
    """An mp4 with an AAC track is transcribed from its audio, over its whole length."""
    key = service.new_key("acme")
    path = write_video(tmp_path / "clip.mp4", seconds=12.0, audio=tone_bursts([(2, 8)], 12.0))
    job = _run(service, key, "audio.transcribe", service.upload(key, path), {})
    assert job["status"] == "succeeded", job
    result = service.client.get(f"/v1/jobs/{job['id']}/result", headers=service.headers(key)).json()
    assert abs(result["duration"] - 12.0) < 0.1
    assert result["windows"] == 1


def test_bad_audio_inputs_fail_cleanly(make_service: object, tmp_path: Path) -> None:
    """No audio stream, truncation and an over-long file each end failed with a clear reason."""
    service: Service = make_service(audio_max_duration_seconds=30)  # type: ignore[operator]
    key = service.new_key("acme")
    silent_video = write_video(tmp_path / "mute.mp4", seconds=3.0, audio=None)
    long_file = write_audio(tmp_path / "long.flac", tone_bursts([], 40.0), container="flac")
    whole = write_audio(tmp_path / "whole.mp3", tone_bursts([(1, 19)], 25.0), container="mp3")
    cut = truncated_copy(whole, tmp_path / "cut.mp3", keep=0.4)
    cases = [
        (silent_video, "invalid_input", "no audio stream"),
        (long_file, "too_large", "30"),
        (cut, "invalid_input", "truncated"),
    ]
    for path, code, words in cases:
        job = _run(service, key, "audio.transcribe", service.upload(key, path), {})
        assert job["status"] == "failed", (path.name, job)
        assert job["error"]["code"] == code, (path.name, job["error"])
        assert words in job["error"]["message"]


def test_audio_params_are_checked(service: Service, tmp_path: Path) -> None:
    """Clips over 30 s and analyze without questions or instruction are refused with 422."""
    key = service.new_key("acme")
    path = write_audio(tmp_path / "a.wav", tone_bursts([(1, 2)], 3.0), container="wav")
    file_id = service.upload(key, path)
    for kind, params in [
        ("audio.transcribe", {"window_seconds": 45}),
        ("audio.analyze", {}),
        ("audio.analyze", {"questions": [f"q{i}" for i in range(21)]}),
    ]:
        body = {"kind": kind, "input": {"file_id": file_id}, "params": params}
        response = service.client.post("/v1/jobs", json=body, headers=service.headers(key))
        assert response.status_code == 422, (kind, params, response.text)


def test_analyze_answers_with_time_ranges_from_clip_notes(service: Service, tmp_path: Path) -> None:
    """Map notes per clip, then one answer per question with evidence inside the media."""
    key = service.new_key("acme")
    path = write_audio(tmp_path / "meeting.wav", tone_bursts(BURSTS, 45.0), container="wav")
    questions = ["Who speaks first?", "Is there music?"]
    job = _run(
        service,
        key,
        "audio.analyze",
        service.upload(key, path),
        {"questions": questions, "instruction": "Summarise the meeting."},
    )
    assert job["status"] == "succeeded", job
    result = service.client.get(f"/v1/jobs/{job['id']}/result", headers=service.headers(key)).json()
    assert [a["question"] for a in result["answers"]] == ["Summarise the meeting.", *questions]
    assert len(result["notes"]) == 3
    assert result["condense_levels"] == 0
    for answer in result["answers"]:
        assert answer["evidence"]
        for span in answer["evidence"]:
            assert 0 <= span["start"] < span["end"] <= result["duration"] + 1e-6
    assert job["progress"] == {"done": 4, "total": 4}  # 3 map chunks, then 1 answer chunk


def test_analyze_reduces_hierarchically_when_notes_exceed_the_budget(
    make_service: object, tmp_path: Path
) -> None:
    """With a small context budget, notes are condensed level by level before answering."""
    service: Service = make_service(reduce_context_tokens=640)  # type: ignore[operator]
    key = service.new_key("acme")
    audio = tone_bursts([(t + 1.0, t + 8.0) for t in range(0, 120, 10)], 120.0)
    path = write_audio(tmp_path / "long.wav", audio, container="wav")
    job = _run(
        service,
        key,
        "audio.analyze",
        service.upload(key, path),
        {"questions": ["What happens?"], "window_seconds": 10},
    )
    assert job["status"] == "succeeded", job
    result = service.client.get(f"/v1/jobs/{job['id']}/result", headers=service.headers(key)).json()
    assert result["condense_levels"] >= 1
    assert len(result["notes"]) >= 12
    with service.context.db.transaction() as session:
        phases = [
            c.spec["phase"]
            for c in session.scalars(
                select(Chunk).where(Chunk.job_id == job["id"]).order_by(Chunk.index)
            )
        ]
    assert phases[0] == "map" and phases[-1] == "answer" and "condense" in phases
    assert phases.index("condense") > max(i for i, p in enumerate(phases) if p == "map")
