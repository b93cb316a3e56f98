# syntax=docker/dockerfile:1
#
# Dream Lab worker for Rockchip RK3588 boards (linux/arm64 only): the `rknn` generation
# backend (`python -m tasks.worker`, WORKER_BACKEND=rknn) and, with another command, the
# RKNN super-resolution engine (`python -m tasks.superres_worker`, SR_ENGINE=rknn).
#
# rknn-toolkit-lite2 publishes aarch64 wheels only, so this image builds for arm64
# only; the build stops with a message elsewhere.  Build on the board, or cross-build:
#   docker buildx build --platform linux/arm64 -f docker/worker-rknn.Dockerfile -t dreamlab/worker-rknn .
#
# Not in the image: Rockchip's runtime library `librknnrt.so` (from rknn-toolkit2's
# `rknpu2/runtime/Linux/librknn_api/aarch64/`, matching the board's NPU driver) and the
# NPU device.  Mount both from the board (compose.yaml, service worker-rknn, does).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    WORKER_BACKEND=rknn \
    NUM_WORKERS=3 \
    MODES_FILE=/app/modes.yaml \
    STORE_URL=/data/results

# Same UID/GID as the other Dream Lab images: they share the results and models volumes.
RUN groupadd --system --gid 10001 dreamlab \
 && useradd --system --uid 10001 --gid dreamlab --create-home \
      --home-dir /home/dreamlab --shell /usr/sbin/nologin dreamlab

WORKDIR /app

COPY . .

# The rknn extra installs rknn-toolkit-lite2 on aarch64 only (a platform marker in
# setup.cfg); elsewhere pip would quietly leave it out, so check the machine first.
# DL3013: "." is this project; its dependencies are pinned or bounded in setup.cfg.
# hadolint ignore=DL3013
RUN --mount=type=cache,target=/root/.cache/pip \
    if [ "$(uname -m)" != "aarch64" ]; then \
      echo "worker-rknn builds for linux/arm64 only: rknn-toolkit-lite2 has aarch64 wheels only (uname -m: $(uname -m))" >&2; \
      exit 1; \
    fi \
 && pip install ".[rknn,s3]" \
 && pip show rknn-toolkit-lite2 > /dev/null \
 && rm -rf build ./*.egg-info \
 && mkdir -p /data/results /app/.cache/models \
 && chown dreamlab:dreamlab /data/results /app/.cache /app/.cache/models

# Numeric, so runtimes that check for non-root (runAsNonRoot) can verify it.
USER 10001:10001

# NUM_WORKERS RKNNLite contexts (one per NPU core) in one process, Celery's threads pool.
# SIGTERM is Celery's warm shutdown: jobs in hand finish, then the contexts are released.
CMD ["python", "-m", "tasks.worker"]
