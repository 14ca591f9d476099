"""The audio kinds: `audio.transcribe` and `audio.analyze`, over clips cut at quiet points."""

from worker.kinds.audio.analyze import AudioAnalyze
from worker.kinds.audio.transcribe import AudioTranscribe

__all__ = ["AudioAnalyze", "AudioTranscribe"]
