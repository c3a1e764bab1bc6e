# One image, two targets: `cpu` (web, CPU worker, beat, flower) and `gpu` (GPU worker: CUDA
# builds of torch and torchvision). docker-compose.yml builds both.
FROM python:3.11-slim AS base
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=webapp.settings FRONTIER_VAR_DIR=/var/lib/frontier
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 frontier && mkdir -p /var/lib/frontier && chown frontier /var/lib/frontier
WORKDIR /app
COPY requirements.txt requirements-nodeps.txt constraints.txt ./

FROM base AS cpu
# The CPU wheel of torch, as on the development machines (constraints.txt pins the version).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install -r requirements.txt -c constraints.txt \
    && pip install --no-deps -r requirements-nodeps.txt
COPY --chown=frontier . .
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0
USER frontier

FROM base AS gpu
# CUDA builds; torchvision is fine (and used by lmms-eval's image models) on a GPU machine.
RUN pip install torch==2.13.0 torchvision==0.28.0 \
    && pip install -r requirements.txt -c constraints.txt \
    && pip install --no-deps -r requirements-nodeps.txt
COPY --chown=frontier . .
USER frontier
