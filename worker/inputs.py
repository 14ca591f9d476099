"""Input files as local files, for decoders that must only ever open local files.

A local store already keeps objects as files. From S3, a worker downloads each input once into a
cache folder and reuses it for every chunk of the job (a 4-hour recording is one download per
worker, not one per window); the least recently used files are evicted past the size cap.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from core.storage import ObjectStore


class InputCache:
    """Local copies of stored inputs, bounded in bytes, evicted least recently used first."""

    def __init__(self, store: ObjectStore, directory: Path, max_bytes: int) -> None:
        self.store = store
        self.directory = directory
        self.max_bytes = max_bytes

    def path(self, key: str) -> Path:
        """A local file holding the object `key`."""
        local = self.store.local_path(key)
        if local is not None:
            return local
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / hashlib.sha256(key.encode()).hexdigest()
        if target.is_file():
            os.utime(target)  # mark as recently used
            return target
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".download-")
        os.close(fd)
        try:
            self.store.download(key, Path(tmp))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._evict(keep=target)
        return target

    def _evict(self, keep: Path) -> None:
        files = [p for p in self.directory.iterdir() if p.is_file() and not p.name.startswith(".")]
        files.sort(key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        for old in files:
            if total <= self.max_bytes:
                break
            if old != keep:
                total -= old.stat().st_size
                old.unlink(missing_ok=True)
