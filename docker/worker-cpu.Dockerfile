# syntax=docker/dockerfile:1
#
# Dream Lab worker on the torch backend, CPU only: `python -m tasks.worker`.
# torch comes from the PyTorch CPU index (no CUDA libraries, ~5x smaller);
# everything else comes from PyPI.  Also used by the compose `demo-model`
# service to build the tiny random-weight demo model.
#
# Build from the repository root (the build context is the repo, not docker/):
#   docker build -f docker/worker-cpu.Dockerfile -t dreamlab/worker-cpu .
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    WORKER_BACKEND=torch \
    MODES_FILE=/app/modes.yaml \
    STORE_URL=/data/results

# Same UID/GID as the other Dream Lab images: they share the results and models volumes.
RUN groupadd --system --gid 10001 dreamlab \
 && useradd --system --uid 10001 --gid dreamlab --create-home \
      --home-dir /home/dreamlab --shell /usr/sbin/nologin dreamlab

WORKDIR /app

# torch alone, from the CPU index, in its own layer: it is the big download and
# does not change when the source does.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

COPY . .

# `torch==2.13.0` in the worker extra is already satisfied by 2.13.0+cpu, so pip
# keeps the CPU build; the check fails the build if a CUDA torch slipped in.
# DL3013: "." is this project; its dependencies are pinned or bounded in setup.cfg.
# hadolint ignore=DL3013
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install ".[worker,sr,s3]" \
 && python -c "import sys, torch; sys.exit(0 if torch.version.cuda is None else 'a CUDA torch build got into the CPU image: ' + torch.__version__)" \
 && rm -rf build ./*.egg-info \
 && mkdir -p /data/results /app/.cache/models \
 && chown dreamlab:dreamlab /data/results /app/.cache /app/.cache/models

# Numeric, so runtimes that check for non-root (runAsNonRoot) can verify it.
USER 10001:10001

# One worker process per container (solo pool); scale with more containers.
# SIGTERM is Celery's warm shutdown: the job in hand finishes first.
CMD ["python", "-m", "tasks.worker"]
