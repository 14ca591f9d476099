"""The one `Settings` of nightowl, read from `NIGHTOWL_*` variables, validated at start.

Leaving a URL unset selects the embedded default: SQLite under `home`, objects in a local folder
under `home`, and (for `nightowl serve`) an embedded Valkey. Tests construct `Settings(...)`.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from core.windows import Window

DEFAULT_MODEL = "mlx-community/gemma-4-12B-it-qat-4bit"
DEFAULT_DRAFT_MODEL = "mlx-community/gemma-4-12B-it-assistant-4bit"
_PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "password", ""}


class Settings(BaseSettings):
    """Everything configurable, with the embedded defaults of a single machine."""

    model_config = SettingsConfigDict(env_prefix="NIGHTOWL_", extra="ignore", frozen=True)

    env: Literal["development", "production"] = "development"
    home: Path = Path(".nightowl")
    log_level: str = "INFO"

    database_url: str | None = None
    redis_url: str | None = None

    s3_endpoint_url: str | None = None
    # The endpoint clients use for presigned downloads when it differs from the one the services
    # use (compose: services reach `http://minio:9000`, users `https://files.example.com`).
    s3_public_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    presign_expiry_seconds: int = Field(default=300, ge=10, le=3600)

    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    # How long an S3 call keeps trying an unreachable endpoint before `unavailable` (storage.py).
    storage_retry_seconds: float = Field(default=30.0, ge=0)
    # Per API key: at most `rate_limit_requests` requests in any `rate_limit_window_seconds`
    # (a moving window, kept in Redis when `redis_url` is set so API processes share it, else in
    # memory); over it, 429 with Retry-After. 0 turns the limit off. api/ratelimit.py.
    rate_limit_requests: int = Field(default=600, ge=0)
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=86400)
    # A tenant's unfinished jobs (scheduled, queued, running) at most; past it, job and batch
    # submissions answer 429 queue_full until some finish (core/quota.py).
    tenant_max_queued_jobs: int = Field(default=100_000, ge=1)

    # Queue and state machine.
    visibility_timeout_seconds: int = Field(default=7200, ge=5)
    message_expiry_seconds: int = Field(default=86400, ge=5)
    lease_seconds: int = Field(default=900, ge=1)
    max_attempts: int = Field(default=3, ge=1)
    reconcile_interval_seconds: float = Field(default=30.0, gt=0)
    reconcile_grace_seconds: float = Field(default=60.0, ge=0)

    # Model and engine. `models_dir` (default `home/models`) is where the tiny model is built.
    models_dir: Path | None = None
    model: str = DEFAULT_MODEL
    draft_model: str | None = DEFAULT_DRAFT_MODEL
    # "auto": each model host uses the drafter only where it measured it faster.
    speculative: bool | Literal["auto"] = "auto"
    draft_block_size: int = Field(default=4, ge=1, le=16)
    memory_budget_bytes: int = Field(default=2 * 1024**3, ge=0)
    # The most sequences a model host decodes at once (its memory may allow fewer).
    max_batch: int = Field(default=16, ge=1, le=256)
    # Whether an infer delivery runs the host loop (many chunks at once, worker/host.py) instead
    # of its one chunk. Off until the fault scenarios have run with it.
    host_loop: bool = False
    max_tokens: int = Field(default=512, ge=1)

    # document.qa
    document_context_tokens: int = Field(default=16384, ge=256)
    document_max_pages: int = Field(default=500, ge=1)
    document_max_chars: int = Field(default=2_000_000, ge=1)
    document_retrieval_passages: int = Field(default=4, ge=1, le=20)
    questions_per_chunk: int = Field(default=8, ge=1, le=50)

    # Batches: an input JSONL file of at most this many lines and bytes.
    batch_max_lines: int = Field(default=50_000, ge=1)
    batch_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    batch_priority: int = Field(default=3, ge=0, le=9)  # below single jobs' default of 5
    # Fair dispatch: at most this many batch jobs are handed to the broker or running at once;
    # the rest wait in SQL and are released round-robin over tenants (core/fairness.py). Set it
    # to about twice the number of infer workers.
    bulk_in_flight: int = Field(default=8, ge=1)

    # Named windows for overnight work, e.g. {"night": "22:00-06:00 Europe/Berlin"}; a window
    # without a time zone is in `window_timezone` (core/windows.py).
    windows: dict[str, str] = Field(default_factory=dict)
    window_timezone: str = "UTC"

    # Outbound HTTP (webhooks, url inputs) refuses non-public addresses (core/netguard.py)
    # unless they fall in one of these networks, e.g. ["10.0.0.0/8"] or ["127.0.0.1/32"] in tests.
    fetch_allow_networks: list[str] = Field(default_factory=list)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Retries back off exponentially from `webhook_backoff_seconds` (with jitter), capped at
    # `webhook_max_backoff_seconds`, for at most `webhook_max_attempts` attempts in all.
    webhook_max_attempts: int = Field(default=15, ge=1, le=30)
    webhook_backoff_seconds: float = Field(default=5.0, gt=0)
    webhook_max_backoff_seconds: float = Field(default=3600.0, gt=0)
    # url inputs (worker/fetch.py): each connect or read waits at most `fetch_timeout_seconds`,
    # the whole fetch (redirects and retries included) at most `fetch_total_seconds`, which must
    # stay well below `lease_seconds`; at most `fetch_max_redirects` redirects, each checked
    # again; connection errors, 5xx and 429 are tried again `fetch_retries` times. The body is
    # capped at `max_upload_bytes`, like an upload.
    fetch_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    fetch_total_seconds: float = Field(default=600.0, gt=0)
    fetch_max_redirects: int = Field(default=5, ge=0, le=20)
    fetch_retries: int = Field(default=2, ge=0, le=10)

    # Schedules over a local folder may only read below one of these folders (none by default:
    # local sources are refused until an operator names the folders users may schedule over).
    schedule_local_roots: list[Path] = Field(default_factory=list)
    # Likewise the S3 buckets (read with the service's credentials) schedules may list.
    schedule_s3_buckets: list[str] = Field(default_factory=list)

    # Media kinds. The reduce passes (answers over audio notes, a video's summary) read at most
    # `reduce_context_tokens` of notes at once, condensing level by level past that.
    audio_max_duration_seconds: float = Field(default=4 * 3600, gt=0)
    video_max_duration_seconds: float = Field(default=4 * 3600, gt=0)
    reduce_context_tokens: int = Field(default=8192, ge=256)
    input_cache_bytes: int = Field(default=20 * 1024**3, ge=0)
    # video.caption: frames are scaled so their longer side is at most this; each costs about
    # `video_frame_tokens` soft tokens, and a one-piece vision prefill holds about
    # `vision_prefill_bytes_per_token` per prompt token on the 12B (notes/gemma4-mlx.md).
    video_frame_side: int = Field(default=448, ge=48, le=2048)
    video_frame_tokens: int = 70
    vision_prefill_bytes_per_token: int = Field(default=336 * 1024, ge=1)

    # A test-only fault point: seconds an infer task waits after its claim, so a test can kill it
    # mid-chunk. Refused in production.
    fault_chunk_delay_seconds: float = Field(default=0.0, ge=0)
    # A test-only fault point: the named place where the process crashes (core/faults.py).
    fault_crash_at: str | None = None

    @model_validator(mode="after")
    def _fail_closed(self) -> Settings:
        if self.s3_endpoint_url or self.s3_bucket:
            if not (self.s3_bucket and self.s3_access_key_id and self.s3_secret_access_key):
                raise ValueError(
                    "S3 storage needs NIGHTOWL_S3_BUCKET, NIGHTOWL_S3_ACCESS_KEY_ID and "
                    "NIGHTOWL_S3_SECRET_ACCESS_KEY"
                )
            secret = self.s3_secret_access_key.get_secret_value().lower()
            if self.env == "production" and secret in _PLACEHOLDER_SECRETS:
                raise ValueError("NIGHTOWL_S3_SECRET_ACCESS_KEY is a placeholder")
        if self.video_frame_tokens not in (70, 140, 280):
            raise ValueError("NIGHTOWL_VIDEO_FRAME_TOKENS must be 70, 140 or 280")
        from core.windows import parse_windows  # validates names, times and time zones

        parse_windows(self.windows, self.window_timezone)
        if self.env == "production" and (self.fault_chunk_delay_seconds or self.fault_crash_at):
            raise ValueError("fault points are for tests; unset them in production")
        return self

    @cached_property
    def sqlalchemy_url(self) -> str:
        """The database URL, or the embedded SQLite file under `home`."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'nightowl.db').resolve()}"

    @cached_property
    def window_table(self) -> dict[str, Window]:
        """The named windows, parsed."""
        from core.windows import parse_windows

        return parse_windows(self.windows, self.window_timezone)

    @property
    def storage_dir(self) -> Path:
        """The local object folder of the embedded default."""
        return self.home / "objects"

    @property
    def model_store(self) -> Path:
        """Where locally built models (the tiny test model) live."""
        return self.models_dir or self.home / "models"
