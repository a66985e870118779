# One image for every process of the service: api, worker, relay, beat and migrate.
# The compose file picks the command; the default runs the API.

FROM python:3.11-slim

COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /bin/

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH="/app/.venv/bin:$PATH"

# The IANA time zone database: kombu and celery call ZoneInfo("UTC") on import, and
# neither the slim image (Debian 13 ships only part of it) nor the locked Python
# dependencies (tzdata is a Windows-only dependency there) guarantee it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# Then the project itself, installed in editable form from /app, so that
# `python -m app.core.migrate` finds /app/alembic.ini and /app/migrations.
COPY README.md alembic.ini ./
COPY migrations ./migrations
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev

# WORKAROUND, remove once pyproject.toml depends on "celery[redis]": kombu's Redis
# transport imports `packaging`, which only the kombu[redis] extra pulls in; the
# lock has it only through the dev group, so a --no-dev install lacks it and every
# Celery process dies at start. A no-op as soon as the lock provides it.
RUN --mount=type=cache,target=/root/.cache/uv \
    python -c "import packaging" 2>/dev/null \
    || uv pip install --no-deps "packaging==26.3"

# Run as an unprivileged user; it owns nothing under /app, so the code is read-only to it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home \
       --shell /usr/sbin/nologin app
USER app

EXPOSE 8000

CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]
