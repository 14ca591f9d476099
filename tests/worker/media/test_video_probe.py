"""Probing video files: what is measured, and every way a file is refused."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
import pytest
from av.stream import Disposition

import worker.media._container as container_module
from core.errors import InvalidInput, TooLarge, UnsupportedMedia
from testkit.media_samples import (
    Color,
    corrupt_copy,
    tone_bursts,
    truncated_copy,
    write_audio,
    write_audio_with_cover,
    write_color_video,
    write_multitrack_audio,
    write_vfr_video,
)
from worker.media import VideoLimits, probe_audio, probe_video

Codec = Literal["h264", "mpeg4"]
RED, GREEN, BLUE = (220, 20, 20), (20, 220, 20), (20, 20, 220)
SEGMENTS: list[tuple[float, Color]] = [(1.5, RED), (1.0, GREEN), (2.0, BLUE)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4.5-s 160x120 h264 mp4 at 10 fps with 0.5-s GOPs and an AAC track."""
    return write_color_video(
        tmp_path_factory.mktemp("probe") / "clip.mp4",
        segments=SEGMENTS,
        gop=5,
        audio=tone_bursts([(0.5, 1.0)], 4.5),
    )


def test_probe_describes_the_video_stream(clip: Path) -> None:
    """Size, rate, length, codec, keyframe spacing and the audio track are all reported."""
    probe = probe_video(clip)
    assert (probe.width, probe.height, probe.rotation) == (160, 120, 0)
    assert probe.fps == pytest.approx(10.0)
    assert probe.duration == pytest.approx(4.5, abs=0.05)
    assert probe.codec == "h264"
    assert "mp4" in probe.container
    assert probe.keyframe_interval == pytest.approx(0.5, abs=0.01)
    assert probe.variable_frame_rate is False
    assert probe.has_audio
    assert probe.start_time == pytest.approx(0.0)


@pytest.mark.parametrize(("codec", "gop"), [("h264", 40), ("mpeg4", 40), ("mpeg4", 3)])
def test_keyframe_interval_is_measured_from_packets(tmp_path: Path, codec: Codec, gop: int) -> None:
    """A fixed GOP of N frames at 10 fps gives a keyframe interval of N/10 s."""
    path = write_color_video(tmp_path / "v.mp4", segments=[(9.0, RED)], codec=codec, gop=gop)
    probe = probe_video(path)
    assert probe.keyframe_interval == pytest.approx(gop / 10, abs=0.01)
    assert not probe.has_audio


def test_variable_frame_rate_is_detected(tmp_path: Path) -> None:
    """Frames at irregular times are flagged as variable rate; the length includes the last."""
    times = [0.0, 0.1, 0.5, 0.6, 2.0, 2.05]
    path = write_vfr_video(tmp_path / "vfr.mp4", times, [RED, GREEN, BLUE] * 2, end=3.0)
    probe = probe_video(path)
    assert probe.variable_frame_rate is True
    assert probe.duration == pytest.approx(3.0, abs=0.01)


@pytest.mark.parametrize(("container", "codec"), [("mkv", "h264"), ("avi", "mpeg4")])
def test_matroska_and_avi_are_read(tmp_path: Path, container: str, codec: Codec) -> None:
    """Matroska and AVI files are probed like mp4."""
    path = write_color_video(
        tmp_path / f"v.{container}",
        segments=SEGMENTS,
        codec=codec,
        container=container,
    )
    probe = probe_video(path)
    assert (probe.width, probe.height, probe.codec) == (160, 120, codec)
    assert probe.duration == pytest.approx(4.5, abs=0.05)


def test_anamorphic_video_reports_its_display_size(tmp_path: Path) -> None:
    """A 160x120 picture with 2:1 pixels is displayed 320x120."""
    path = tmp_path / "sar.mp4"
    with av.open(str(path), "w", format="mp4") as output:
        stream = output.add_stream("h264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(2)
        frame = av.VideoFrame.from_ndarray(np.zeros((120, 160, 3), np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            output.mux(packet)
    probe = probe_video(path)
    assert (probe.width, probe.height, probe.pixel_aspect) == (320, 120, Fraction(2))


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    """An m4a with only an AAC track is refused as having no video stream."""
    path = write_audio(tmp_path / "a.m4a", tone_bursts([(0.2, 0.8)], 1.0), container="m4a")
    with pytest.raises(InvalidInput, match="the file has no video stream"):
        probe_video(path)


def test_cover_art_is_not_video(tmp_path: Path) -> None:
    """An mp4 whose only picture is cover art (attached_pic) has no video stream."""
    path = write_audio_with_cover(tmp_path / "song.mp4")
    with av.open(str(path)) as container:
        assert container.streams.video[0].disposition & Disposition.attached_pic
    with pytest.raises(InvalidInput, match="the file has no video stream"):
        probe_video(path)


def test_audio_formats_are_not_video_formats(tmp_path: Path) -> None:
    """An mp3 is refused by format name, listing the containers video jobs accept."""
    path = write_audio(tmp_path / "a.mp3", tone_bursts([(0.2, 0.8)], 1.0), container="mp3")
    with pytest.raises(
        UnsupportedMedia, match="'mp3' is not supported; use mp4/mov, matroska/webm or avi"
    ):
        probe_video(path)


def test_playlist_is_refused(tmp_path: Path, clip: Path) -> None:
    """An HLS playlist naming a real video is refused before anything it lists is opened."""
    playlist = tmp_path / "list.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:5\n#EXTINF:4.5,\n{clip}\n#EXT-X-ENDLIST\n")
    with pytest.raises(UnsupportedMedia, match="'hls'"):
        probe_video(playlist)


def test_nested_open_lock_alone_stops_a_playlist(
    tmp_path: Path, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HLS let through the video whitelist, the io_open lock still refuses the playlist."""
    playlist = tmp_path / "list.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:5\n#EXTINF:4.5,\n{clip}\n#EXT-X-ENDLIST\n")
    monkeypatch.setattr(container_module, "_VIDEO_FORMAT_WHITELIST", "hls,mov")
    with pytest.raises(UnsupportedMedia, match="refers to other files"):
        probe_video(playlist)


def test_avi_stays_refused_for_audio_jobs(tmp_path: Path) -> None:
    """Accepting AVI for video does not loosen the audio whitelist."""
    path = write_color_video(
        tmp_path / "v.avi",
        segments=[(0.5, RED)],
        codec="mpeg4",
        container="avi",
        audio=tone_bursts([], 0.5),
    )
    with pytest.raises(UnsupportedMedia, match="'avi' is not supported"):
        probe_audio(path)
    assert probe_video(path).has_audio


def test_random_bytes_are_not_media(tmp_path: Path) -> None:
    """64 KiB of random bytes named .mp4 are refused as unreadable media."""
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(1).bytes(65536))
    with pytest.raises(InvalidInput, match="the media could not be read"):
        probe_video(path)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    """A file of zero bytes is refused before FFmpeg sees it."""
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(InvalidInput, match="the media file is empty"):
        probe_video(path)


def test_truncated_mp4_is_unreadable(tmp_path: Path, clip: Path) -> None:
    """An mp4 cut in half loses its index (written last) and cannot be opened."""
    path = truncated_copy(clip, tmp_path / "cut.mp4", keep=0.5)
    with pytest.raises(InvalidInput, match="the media could not be read"):
        probe_video(path)


def test_corrupt_header_is_unreadable(tmp_path: Path, clip: Path) -> None:
    """Garbage over the first tenth of an mp4 (its header) makes it unreadable."""
    path = corrupt_copy(clip, tmp_path / "bad.mp4", start=0.0, length=0.1)
    with pytest.raises(InvalidInput, match="the media could not be read"):
        probe_video(path)


def test_resolution_over_the_limit_is_too_large(clip: Path) -> None:
    """A 160x120 video under a 128x96 limit is refused, naming both sizes."""
    with pytest.raises(TooLarge, match="the video is 160x120; the limit is 128x96"):
        probe_video(clip, limits=VideoLimits(max_width=128, max_height=96))


def test_default_limit_refuses_8k_plus(tmp_path: Path) -> None:
    """A 7696x16 video is over the default 7680 width in either orientation."""
    path = write_color_video(tmp_path / "wide.mp4", segments=[(0.2, RED)], size=(7696, 16))
    with pytest.raises(TooLarge, match="the video is 7696x16; the limit is 7680x4320"):
        probe_video(path)


def test_portrait_video_is_held_to_the_limit_turned(clip: Path) -> None:
    """A 160x120 video passes a 120x160 (portrait) limit: limits hold in either orientation."""
    assert probe_video(clip, limits=VideoLimits(max_width=120, max_height=160)).width == 160


def test_duration_over_the_limit_is_too_large(clip: Path) -> None:
    """A 4.5-s video under a 2-s limit is refused, naming both lengths."""
    with pytest.raises(TooLarge, match=r"the video lasts 4 s; the limit is 2 s"):
        probe_video(clip, limits=VideoLimits(max_duration_seconds=2))


def test_stream_bomb_is_too_large(tmp_path: Path) -> None:
    """A Matroska file with 40 streams is refused under the default limit of 32."""
    path = write_multitrack_audio(tmp_path / "many.mkv", [tone_bursts([], 0.2)] * 40)
    with pytest.raises(TooLarge, match="more streams than the limit of 32"):
        probe_video(path)
