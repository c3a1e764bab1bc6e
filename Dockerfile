# One image, two targets: `cpu` (web, CPU worker, beat, flower) and `gpu` (GPU worker: CUDA
# builds of torch and torchvision). docker-compose.yml builds both.
FROM python:3.11-slim AS base
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=webapp.settings FRONTIER_VAR_DIR=/var/lib/frontier
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 frontier && mkdir -p /var/lib/frontier && chown frontier /var/lib/frontier
WORKDIR /app
# Both targets install exactly one lock, every file hash-checked, into /opt/venv: pip bootstraps
# uv (requirements-uv.txt), uv syncs the lock (README "Dependencies").
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH UV_NO_CACHE=1 UV_COMPILE_BYTECODE=1
COPY requirements-uv.txt requirements.txt requirements-gpu.txt ./
RUN python -m venv /opt/venv && pip install --no-deps --require-hashes -r requirements-uv.txt

FROM base AS cpu
# The CPU wheel of torch (torch==2.13.0+cpu in requirements.txt) is on PyTorch's CPU wheel page.
RUN uv pip sync --require-hashes --find-links https://download.pytorch.org/whl/cpu/torch/ requirements.txt
COPY --chown=frontier . .
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0
USER frontier

FROM base AS gpu
# CUDA torch and torchvision from PyPI; every other pin is requirements.txt's (tests/test_lock.py).
RUN uv pip sync --require-hashes requirements-gpu.txt
COPY --chown=frontier . .
USER frontier
