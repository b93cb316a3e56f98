# syntax=docker/dockerfile:1
#
# Dream Lab worker on the torch backend with CUDA: `python -m tasks.worker`.
# One container per GPU: give each container exactly one device (compose does
# it with device_ids; see docker/README.md).  The worker uses the solo pool and
# never forks after touching CUDA.
#
# Build from the repository root (the build context is the repo, not docker/):
#   docker build -f docker/worker-cuda.Dockerfile -t dreamlab/worker-cuda .
#
# torch's Linux x86_64 wheel on PyPI is the CUDA build and brings its own CUDA
# libraries (nvidia-* wheels); the base image supplies the NVIDIA container
# runtime wiring and a CUDA floor for the host driver check.  To pick a specific
# CUDA build instead, pass both, e.g.
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
#   --build-arg CUDA_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04
# and check first that torch ${TORCH_VERSION} is published on that index.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04
FROM ${CUDA_IMAGE}

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://pypi.org/simple

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    WORKER_BACKEND=torch \
    MODES_FILE=/app/modes.yaml \
    STORE_URL=/data/results

# Ubuntu 24.04's python3 is 3.12 (setup.cfg asks for >=3.11).  Versions are
# those of the base image's Ubuntu release; they are not pinned one by one.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv "${VIRTUAL_ENV}"

# Same UID/GID as the other Dream Lab images: they share the results and models volumes.
RUN groupadd --system --gid 10001 dreamlab \
 && useradd --system --uid 10001 --gid dreamlab --create-home \
      --home-dir /home/dreamlab --shell /usr/sbin/nologin dreamlab

WORKDIR /app

# torch alone in its own layer: several GB that do not change with the source.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

COPY . .

# The check fails the build if the torch that ended up here has no CUDA.
# DL3013: "." is this project; its dependencies are pinned or bounded in setup.cfg.
# hadolint ignore=DL3013
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install ".[worker,s3]" \
 && python -c "import sys, torch; sys.exit(0 if torch.version.cuda else 'torch in the CUDA image has no CUDA: ' + torch.__version__)" \
 && rm -rf build ./*.egg-info \
 && mkdir -p /data/results /app/.cache/models \
 && chown dreamlab:dreamlab /data/results /app/.cache /app/.cache/models

# Numeric, so runtimes that check for non-root (runAsNonRoot) can verify it.
USER 10001:10001

# SIGTERM is Celery's warm shutdown: the job in hand finishes first.
CMD ["python", "-m", "tasks.worker"]
