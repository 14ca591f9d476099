"""The API's kinds (`core.kinds.KINDS`) and the worker's pipelines (`worker.kinds.PIPELINES`) agree.

A kind on one side only is accepted and then retried until attempts_exhausted, a content type
the worker cannot read fails every job of it, and a parameter the worker reads but the API
does not accept (or gives another default) is silently never what the user asked for.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.audio.stream import AudioStream
from av.video.stream import VideoStream
from pydantic_core import PydanticUndefined

from core.kinds import KINDS
from core.sniff import (
    DOCX,
    FLAC,
    HTML,
    M4A,
    MARKDOWN,
    MATROSKA,
    MP3,
    MP4,
    OGG,
    PDF,
    PLAIN_TEXT,
    QUICKTIME,
    WAV,
    WEBM,
    sniff_content_type,
)
from testkit.media_samples import tone_bursts, write_audio, write_color_video
from testkit.samples import pdf_bytes
from tests.worker.documents.builders import docx_bytes, new_docx
from worker.documents import DocumentLimits, extract_document
from worker.kinds import PIPELINES
from worker.media import probe_audio, probe_video


def _docx(path: Path) -> None:
    document = new_docx()
    document.add_paragraph("The observatory opened in 1931.")
    path.write_bytes(docx_bytes(document))


def _muxed(path: Path, muxer: str, video_codec: str, audio_codec: str) -> None:
    """One second of black video and a silent mono track, in a container PyAV's helpers lack."""
    with av.open(str(path), "w", format=muxer) as output:
        video = output.add_stream(video_codec, rate=10)
        assert isinstance(video, VideoStream)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = output.add_stream(audio_codec, rate=48000, layout="mono")
        assert isinstance(audio, AudioStream)
        for _ in range(10):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            output.mux(video.encode(frame))
        output.mux(video.encode(None))
        sound = av.AudioFrame.from_ndarray(
            np.zeros((1, 48000), np.float32), format="fltp", layout="mono"
        )
        sound.sample_rate, sound.pts, sound.time_base = 48000, 0, Fraction(1, 48000)
        output.mux(audio.encode(sound))
        output.mux(audio.encode(None))


def _audio(container: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        write_audio(path, tone_bursts([(0.2, 0.8)], 1.0), container=container)

    return write


def _video(container: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        sound = tone_bursts([(0.2, 0.8)], 1.0)
        write_color_video(path, segments=[(1.0, (200, 40, 40))], audio=sound, container=container)

    return write


# One small real file per content type the API may accept, under a name the sniffer accepts.
SAMPLES: dict[str, tuple[str, Callable[[Path], None]]] = {
    PDF: ("doc.pdf", lambda path: path.write_bytes(pdf_bytes(["The observatory opened."]))),
    DOCX: ("doc.docx", _docx),
    HTML: ("doc.html", lambda path: path.write_bytes(b"<html><body><p>Opened.</p></body></html>")),
    MARKDOWN: ("doc.md", lambda path: path.write_bytes(b"# Observatory\n\nIt opened.\n")),
    PLAIN_TEXT: ("doc.txt", lambda path: path.write_bytes(b"The observatory opened.\n")),
    WAV: ("a.wav", _audio("wav")),
    FLAC: ("a.flac", _audio("flac")),
    OGG: ("a.ogg", _audio("ogg")),
    MP3: ("a.mp3", _audio("mp3")),
    M4A: ("a.m4a", _audio("m4a")),
    MP4: ("v.mp4", _video("mp4")),
    MATROSKA: ("v.mkv", _video("mkv")),
    QUICKTIME: ("v.mov", lambda path: _muxed(path, "mov", "h264", "aac")),
    WEBM: ("v.webm", lambda path: _muxed(path, "webm", "libvpx", "libopus")),
}


def _read_document(path: Path, content_type: str) -> None:
    extract_document(path, content_type, DocumentLimits())


# How the worker's plan step first reads a kind's input.
READERS: dict[str, Callable[[Path, str], object]] = {
    "document.qa": _read_document,
    "audio.transcribe": lambda path, _: probe_audio(path),
    "audio.analyze": lambda path, _: probe_audio(path),
    "video.caption": lambda path, _: probe_video(path),
}


def test_the_api_and_the_worker_know_the_same_kinds() -> None:
    """Every kind the API accepts has a pipeline, and every pipeline is a kind the API accepts."""
    assert sorted(KINDS) == sorted(PIPELINES)
    assert all(spec.name == name for name, spec in KINDS.items())
    assert sorted(READERS) == sorted(PIPELINES), "say how the worker reads the new kind's input"


@pytest.mark.parametrize(
    ("kind", "content_type"),
    [(name, content_type) for name, spec in KINDS.items() for content_type in spec.content_types],
)
def test_the_worker_reads_every_content_type_the_api_accepts(
    kind: str, content_type: str, tmp_path: Path
) -> None:
    """A small real file of each type a kind accepts is sniffed as that type and read by its
    worker pipeline's reader."""
    assert content_type in SAMPLES, f"add a sample of {content_type}"
    name, write = SAMPLES[content_type]
    path = tmp_path / name
    write(path)
    assert sniff_content_type(path.read_bytes()[:8192], name) == content_type
    READERS[kind](path, content_type)


def _worker_modules(module_name: str) -> Iterator[Path]:
    """The source files of `module_name` and of every `worker.kinds` module it imports, deeply."""
    seen: set[str] = set()
    todo = [module_name]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = Path(inspect.getfile(importlib.import_module(name)))
        yield path
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("worker.kinds"):
                todo.append(str(node.module))


def _is_params(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "params") or (
        isinstance(node, ast.Attribute) and node.attr == "params"
    )


def _params_read(paths: Iterator[Path]) -> dict[str, list[object]]:
    """Each key read as `params["key"]` or `params.get("key"[, default])`, with its defaults."""
    read: dict[str, list[object]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Subscript) and _is_params(node.value):
                key = node.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    read.setdefault(key.value, [])
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and _is_params(node.func.value)
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                defaults = read.setdefault(str(node.args[0].value), [])
                if len(node.args) > 1:
                    defaults.append(ast.literal_eval(node.args[1]))
    return read


@pytest.mark.parametrize("kind", sorted(PIPELINES))
def test_the_worker_reads_only_params_the_api_accepts_with_the_same_defaults(kind: str) -> None:
    """Every parameter a pipeline reads is a field of the kind's API model, and any fallback
    default the worker gives it is the model's own default."""
    fields = KINDS[kind].params.model_fields
    read = _params_read(_worker_modules(type(PIPELINES[kind]).__module__))
    assert read, f"found no params read by {kind}'s pipeline"
    assert sorted(set(read) - set(fields)) == [], f"{kind} reads params its API model lacks"
    for key, defaults in read.items():
        declared = fields[key].default
        if declared is not PydanticUndefined:  # a required field is always there
            assert all(d == declared for d in defaults), (kind, key, defaults, declared)
