"""Media bombs and disguised playlists: thousands of streams, absurd picture sizes, and HLS or
concat playlists under media names or uploaded as files, each refused before any decoding and
without FFmpeg reaching for another file or the network."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from core.errors import InvalidInput, TooLarge, UnsupportedMedia
from testkit.media_samples import tone_bursts, write_multitrack_audio
from tests.fixtures.backends import Service
from tests.origin import Origin
from worker.media import probe_audio, probe_video

Probe = Callable[[Path], object]
PROBES: dict[str, Probe] = {"audio": probe_audio, "video": probe_video}


@pytest.fixture
def server() -> Iterator[Origin]:
    """A running origin with no routes: it only records the requests it gets."""
    origin = Origin()
    yield origin
    origin.close()


def hls(segment: str) -> str:
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\n{segment}\n#EXT-X-ENDLIST\n"


@pytest.mark.parametrize("kind", ["audio", "video"])
@pytest.mark.parametrize("name", ["clip.mp4", "clip.ts", "clip.mkv", "clip.m3u8"])
def test_hls_playlist_under_any_name_never_fetches_its_segment(
    tmp_path: Path, server: Origin, name: str, kind: str
) -> None:
    """An HLS playlist pointing at a URL, named like a video (or as itself), is refused as a
    playlist by both probes, and its URL is never requested."""
    playlist = tmp_path / name
    playlist.write_text(hls(server.url("/segment.ts")))
    with pytest.raises(UnsupportedMedia, match=r"^the media format 'hls' .*is not supported"):
        PROBES[kind](playlist)
    assert server.requests == []


@pytest.mark.parametrize("kind", ["audio", "video"])
@pytest.mark.parametrize("name", ["list.ffconcat", "clip.mp4", "clip.txt"])
def test_concat_script_never_opens_what_it_lists(
    tmp_path: Path, server: Origin, name: str, kind: str
) -> None:
    """An ffconcat script listing a URL and a local file is refused under any name, opening
    neither (the local file is /etc/passwd: it must never be read as media)."""
    script = tmp_path / name
    script.write_text(f"ffconcat version 1.0\nfile {server.url('/a.wav')}\nfile /etc/passwd\n")
    with pytest.raises(UnsupportedMedia, match=r"^the media format 'concat' is not supported"):
        PROBES[kind](script)
    assert server.requests == []


@pytest.mark.parametrize("kind", ["audio.transcribe", "video.caption"])
def test_uploaded_playlist_is_text_and_no_media_job_takes_it(
    service: Service, server: Origin, kind: str
) -> None:
    """An .m3u8 uploaded as a file is sniffed as text, so media jobs refuse it (415) up front."""
    key = service.new_key("acme")
    upload = service.client.post(
        "/v1/files",
        files={"file": ("live.m3u8", hls(server.url("/segment.ts")).encode())},
        headers=service.headers(key),
    )
    assert upload.status_code == 201, upload.text
    assert upload.json()["content_type"] == "text/plain"
    job = {"kind": kind, "input": {"file_id": upload.json()["id"]}}
    answer = service.client.post("/v1/jobs", json=job, headers=service.headers(key))
    assert (answer.status_code, answer.json()["error"]["code"]) == (415, "unsupported_media")
    assert server.requests == []


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_a_hundred_streams_are_refused_at_open(tmp_path: Path, kind: str) -> None:
    """A Matroska file with 100 audio streams is too large for either probe, refused at once."""
    path = write_multitrack_audio(tmp_path / "many.mkv", [tone_bursts([], 0.1)] * 100)
    with av.open(str(path)) as container:
        assert len(container.streams) == 100  # the file really has them
    started = time.perf_counter()
    with pytest.raises(TooLarge, match="more streams than the limit of 32"):
        PROBES[kind](path)
    assert time.perf_counter() - started < 2


def ffv1_avi_claiming(path: Path, side: int) -> Path:
    """A 160x120 FFV1 AVI whose headers (avih and the stream's BITMAPINFOHEADER) claim `side`
    x `side`: FFV1 takes its picture size from the container, so the claim is believed."""
    with av.open(str(path), "w", format="avi") as output:
        stream = output.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((120, 160, 3), np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    data = bytearray(path.read_bytes())
    main_header = data.index(b"avih") + 8
    struct.pack_into("<II", data, main_header + 32, side, side)  # dwWidth, dwHeight
    bitmap_info = data.index(b"strf") + 8
    struct.pack_into("<ii", data, bitmap_info + 4, side, side)  # biWidth, biHeight
    path.write_bytes(bytes(data))
    return path


def test_a_huge_declared_picture_is_refused_before_decoding(tmp_path: Path) -> None:
    """A video declaring 16000x16000 (256 Mpixel a frame) fails the resolution limit at probe
    time, before any frame is decoded."""
    path = ffv1_avi_claiming(tmp_path / "huge.avi", 16000)
    started = time.perf_counter()
    with pytest.raises(TooLarge, match="the video is 16000x16000; the limit is 7680x4320"):
        probe_video(path)
    assert time.perf_counter() - started < 1


def test_an_absurd_declared_picture_has_no_size_at_all(tmp_path: Path) -> None:
    """At 100000x100000 FFmpeg itself rejects the size, so the stream declares none: refused."""
    path = ffv1_avi_claiming(tmp_path / "absurd.avi", 100_000)
    with pytest.raises(InvalidInput, match="does not declare its picture size"):
        probe_video(path)
