# syntax=docker/dockerfile:1
#
# Dream Lab API: the Flask app (api:create_app) under gunicorn.
# Base install only -- this image must never contain torch (checked below).
#
# Build from the repository root (the build context is the repo, not docker/):
#   docker build -f docker/api.Dockerfile -t dreamlab/api .
#
# The compose file also builds Flower from this file with EXTRAS=flower; Flower
# runs as `celery --config=celeryconfig flower` and imports no task module.
FROM python:3.11-slim

# Extras of setup.cfg to install beside the base, comma-separated ("" = base only; s3: boto3 for STORE_URL=s3://).
ARG EXTRAS="s3"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=4200 \
    WEB_CONCURRENCY=2 \
    GUNICORN_THREADS=16 \
    MODES_FILE=/app/modes.yaml \
    STORE_URL=/data/results

# One fixed UID/GID in every Dream Lab image, so the shared `results`
# volume is writable by the API and the workers alike.
RUN groupadd --system --gid 10001 dreamlab \
 && useradd --system --uid 10001 --gid dreamlab --create-home \
      --home-dir /home/dreamlab --shell /usr/sbin/nologin dreamlab

WORKDIR /app
COPY . .

# DL3013: "." is this project; its dependencies are pinned or bounded in setup.cfg.
# hadolint ignore=DL3013
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install ".${EXTRAS:+[$EXTRAS]}" \
 && python -c "import importlib.util as u, sys; sys.exit('torch must not be installed in the API image' if u.find_spec('torch') else 0)" \
 && rm -rf build ./*.egg-info \
 && mkdir -p /data/results \
 && chown dreamlab:dreamlab /data/results

# Numeric, so runtimes that check for non-root (runAsNonRoot) can verify it.
USER 10001:10001
EXPOSE 4200

# /healthz answers 200 when Redis answers PING, 503 otherwise (urlopen raises on 503).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '4200'), timeout=4)"]

# `exec` hands PID 1 to gunicorn so SIGTERM reaches it (graceful stop).
CMD ["sh", "-c", "exec gunicorn -k gthread --threads \"${GUNICORN_THREADS}\" -w \"${WEB_CONCURRENCY}\" -b \"0.0.0.0:${PORT}\" --access-logfile - 'api:create_app()'"]
