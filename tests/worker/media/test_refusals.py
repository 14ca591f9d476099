"""Every way a media file is refused, with the error class and message a job would store."""

from __future__ import annotations

import ctypes
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

import worker.media._container as container_module
from core.errors import InvalidInput, TooLarge, UnsupportedMedia
from testkit.media_samples import (
    corrupt_copy,
    tone_bursts,
    truncated_copy,
    write_audio,
    write_multitrack_audio,
)
from worker.media import AudioLimits, energy_envelope, probe_audio

_IN_ACCESS, _IN_OPEN = 0x1, 0x20


class _OpenWatch:
    """Counts opens and reads of one file through Linux inotify, whoever makes them (FFmpeg too)."""

    def __init__(self, path: Path) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if (
            self._fd < 0
            or self._libc.inotify_add_watch(self._fd, bytes(path), _IN_OPEN | _IN_ACCESS) < 0
        ):
            pytest.skip("inotify is not available")

    def events(self) -> int:
        """Bytes of events since the last call (0 means the file was not touched)."""
        try:
            return len(os.read(self._fd, 65536))
        except BlockingIOError:
            return 0

    def close(self) -> None:
        """Release the inotify descriptor."""
        os.close(self._fd)


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    """A 4-second WAV with two tones."""
    return write_audio(
        tmp_path / "a.wav", tone_bursts([(0.5, 1.5), (2.5, 3.0)], 4.0), container="wav"
    )


@pytest.fixture
def watched_wav(wav: Path) -> Iterator[tuple[Path, _OpenWatch]]:
    """The WAV and an inotify watch on it."""
    watch = _OpenWatch(wav)
    yield wav, watch
    watch.close()


def test_hls_playlist_is_refused_without_opening_its_segment(
    tmp_path: Path, watched_wav: tuple[Path, _OpenWatch]
) -> None:
    """An .m3u8 listing a local WAV is refused as 'hls', and the WAV is never opened."""
    wav, watch = watched_wav
    playlist = tmp_path / "list.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\n{wav}\n#EXT-X-ENDLIST\n")
    with pytest.raises(UnsupportedMedia, match="'hls' is not supported"):
        probe_audio(playlist)
    assert watch.events() == 0
    # The control: a plain av.open of the same playlist does open the segment, and we would see it.
    with pytest.raises(av.error.FFmpegError):
        av.open(str(playlist), options={"protocol_whitelist": "file"}).close()
    assert watch.events() > 0


def test_nested_open_lock_alone_stops_a_playlist(
    tmp_path: Path, watched_wav: tuple[Path, _OpenWatch], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HLS let through the format whitelist, the io_open lock still refuses the playlist."""
    wav, watch = watched_wav
    playlist = tmp_path / "list.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\n{wav}\n#EXT-X-ENDLIST\n")
    monkeypatch.setattr(container_module, "_FORMAT_WHITELIST", "hls,wav")
    with pytest.raises(UnsupportedMedia, match="refers to other files"):
        probe_audio(playlist)
    assert watch.events() == 0


def test_the_same_refusal_twice_still_names_the_format(tmp_path: Path) -> None:
    """Two identical playlists refused in a row both name 'hls' (PyAV drops repeated log lines)."""
    playlist = tmp_path / "list.m3u8"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\nx.wav\n#EXT-X-ENDLIST\n")
    for _ in range(2):
        with pytest.raises(UnsupportedMedia, match="'hls' is not supported"):
            probe_audio(playlist)


def test_hls_playlist_with_another_extension_is_refused(
    tmp_path: Path, watched_wav: tuple[Path, _OpenWatch]
) -> None:
    """A playlist named .txt (which FFmpeg does not detect as HLS) is still refused as 'hls'."""
    wav, watch = watched_wav
    playlist = tmp_path / "list.txt"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\n{wav}\n#EXT-X-ENDLIST\n")
    with pytest.raises(UnsupportedMedia, match="'hls'"):
        probe_audio(playlist)
    assert watch.events() == 0


def test_ffconcat_file_is_refused_without_opening_what_it_lists(
    tmp_path: Path, watched_wav: tuple[Path, _OpenWatch]
) -> None:
    """An ffconcat script listing a local WAV is refused as 'concat', and the WAV is not opened."""
    wav, watch = watched_wav
    script = tmp_path / "list.ffconcat"
    script.write_text(f"ffconcat version 1.0\nfile {wav.name}\nfile {wav.name}\n")
    with pytest.raises(UnsupportedMedia, match="'concat' is not supported"):
        probe_audio(script)
    assert watch.events() == 0


def test_image_is_refused_by_format_name(tmp_path: Path) -> None:
    """A PNG image is refused with FFmpeg's name for it."""
    path = tmp_path / "x.png"
    with av.open(str(path), "w", format="image2") as output:
        stream = output.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 8, 8, "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((8, 8, 3), dtype=np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            output.mux(packet)
    with pytest.raises(UnsupportedMedia, match="'png_pipe' is not supported"):
        probe_audio(path)


def test_random_bytes_are_not_media(tmp_path: Path) -> None:
    """64 KiB of random bytes are refused as unreadable media."""
    path = tmp_path / "noise.mp3"
    path.write_bytes(np.random.default_rng(1).bytes(65536))
    with pytest.raises(InvalidInput, match="the media could not be read"):
        probe_audio(path)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    """A file of zero bytes is refused before FFmpeg sees it."""
    path = tmp_path / "empty.wav"
    path.touch()
    with pytest.raises(InvalidInput, match="the media file is empty"):
        probe_audio(path)


def test_zero_length_audio_stream_is_empty(tmp_path: Path) -> None:
    """A valid WAV with no samples passes probing but decodes to nothing, and is refused."""
    path = write_audio(tmp_path / "zero.wav", np.zeros(0, dtype=np.float32), container="wav")
    probe = probe_audio(path)
    with pytest.raises(InvalidInput, match="the audio stream is empty"):
        energy_envelope(path, probe)


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo"])
def test_only_existing_regular_files_are_opened(tmp_path: Path, kind: str) -> None:
    """A missing path, a directory or a FIFO is refused without blocking."""
    path = tmp_path / kind
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(InvalidInput, match=r"does not exist|not a regular file"):
        probe_audio(path)


def test_mp4_cut_before_its_index_is_unreadable(tmp_path: Path) -> None:
    """An m4a cut in half loses its index (written last) and cannot be opened."""
    source = write_audio(tmp_path / "a.m4a", tone_bursts([(0.5, 3.5)], 4.0), container="m4a")
    path = truncated_copy(source, tmp_path / "cut.m4a", keep=0.5)
    with pytest.raises(InvalidInput, match="the media could not be read"):
        probe_audio(path)


def test_truncated_flac_fails_where_it_ends(tmp_path: Path) -> None:
    """A FLAC cut at 70% fails to decode, naming the second where it broke."""
    source = write_audio(
        tmp_path / "a.flac", tone_bursts([(0.5, 3.5)], 4.0, noise=0.1), container="flac"
    )
    path = truncated_copy(source, tmp_path / "cut.flac", keep=0.7)
    probe = probe_audio(path)
    with pytest.raises(
        InvalidInput, match=r"could not be decoded at \d+\.\d s: .*corrupt or truncated"
    ):
        energy_envelope(path, probe)


@pytest.mark.parametrize("container", ["mp3", "webm", "mka"])
def test_truncated_file_is_caught_by_its_declared_duration(tmp_path: Path, container: str) -> None:
    """A file cut at 50% that decodes cleanly is refused: it ends long before its declared end."""
    source = write_audio(
        tmp_path / f"a.{container}", tone_bursts([(0.5, 3.5)], 4.0), container=container
    )
    path = truncated_copy(source, tmp_path / f"cut.{container}", keep=0.5)
    probe = probe_audio(path)
    with pytest.raises(InvalidInput, match=r"ends at \d\.\d s but the file declares 4\.0 s"):
        energy_envelope(path, probe)


@pytest.mark.parametrize("container", ["mp3", "m4a"])
def test_corrupt_middle_fails_to_decode(tmp_path: Path, container: str) -> None:
    """Garbage over the middle fifth of an mp3 or m4a is a decode error, located in seconds."""
    source = write_audio(
        tmp_path / f"a.{container}", tone_bursts([(0.5, 3.5)], 4.0), container=container
    )
    path = corrupt_copy(source, tmp_path / f"bad.{container}", start=0.4, length=0.2)
    probe = probe_audio(path)
    with pytest.raises(InvalidInput, match=r"could not be decoded at [12]\.\d s"):
        energy_envelope(path, probe)


def test_duration_guessed_from_bitrate_is_not_held_against_the_file(tmp_path: Path) -> None:
    """Raw AAC quiet at first makes FFmpeg guess 25x the real length; the file is still read."""
    quiet_then_noise = np.concatenate(
        (np.zeros(10 * 16000), np.random.default_rng(0).uniform(-0.5, 0.5, 10 * 16000))
    )
    path = write_audio(tmp_path / "a.aac", quiet_then_noise.astype(np.float32), container="aac")
    probe = probe_audio(path, limits=AudioLimits(max_duration_seconds=60))
    envelope = energy_envelope(path, probe)
    assert probe.duration_source == "bitrate"
    assert probe.duration is not None and probe.duration > 100
    assert envelope.duration == pytest.approx(20.0, abs=0.2)


def test_declared_duration_over_the_limit_is_too_large(wav: Path) -> None:
    """A 4-second file with a 2-second limit is refused at probing, naming both durations."""
    with pytest.raises(TooLarge, match="the audio lasts 4 s; the limit is 2 s"):
        probe_audio(wav, limits=AudioLimits(max_duration_seconds=2))


def test_decoded_duration_over_the_limit_stops_decoding(wav: Path) -> None:
    """The limit holds while decoding too, whatever the file declared."""
    probe = dataclasses.replace(probe_audio(wav), limits=AudioLimits(max_duration_seconds=1))
    with pytest.raises(TooLarge, match="longer than the limit of 1 s"):
        energy_envelope(wav, probe)


def test_stream_bomb_is_too_large(tmp_path: Path) -> None:
    """A file with 40 audio streams is refused under the default limit of 32."""
    path = write_multitrack_audio(tmp_path / "many.mka", [tone_bursts([], 0.2)] * 40)
    with pytest.raises(TooLarge, match="more streams than the limit of 32"):
        probe_audio(path)
    assert probe_audio(path, limits=AudioLimits(max_streams=40)).stream_index == 0
