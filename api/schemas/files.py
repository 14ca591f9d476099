"""`/v1/files` models: a stored file's metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from api.schemas import ApiObject


class FileOut(ApiObject):
    object: Literal["file"] = "file"
    filename: str
    bytes: int
    sha256: str
    content_type: str
    created_at: datetime
