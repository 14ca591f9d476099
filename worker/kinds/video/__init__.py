"""The video kind: `video.caption`."""

from worker.kinds.video.caption import VideoCaption

__all__ = ["VideoCaption"]
