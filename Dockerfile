# syntax=docker/dockerfile:1
# Brobygger in a container: `docker compose up -d` (see compose.yaml and the README).
# Two stages: the build stage installs into a virtualenv, the runtime stage copies only that.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
# CPU-only torch, installed first as the Makefile does: otherwise pip pulls several GB of CUDA
# packages for nothing. Override TORCH_INDEX_URL to use a mirror.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv \
    && pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install .

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG UID=10001
RUN groupadd --system --gid "${UID}" brobygger \
    && useradd --system --uid "${UID}" --gid brobygger --home-dir /srv/brobygger \
        --shell /usr/sbin/nologin brobygger \
    && mkdir -p /srv/brobygger/knowledge /srv/brobygger/index /srv/brobygger/data \
    && chown -R brobygger:brobygger /srv/brobygger
COPY --from=build /opt/venv /opt/venv
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/brobygger-entrypoint
# The repository's knowledge seeds the knowledge volume the first time it is mounted empty.
COPY --chown=brobygger:brobygger knowledge /srv/brobygger/knowledge
# DL3064 takes TOKENIZERS_PARALLELISM for a secret; none is baked in (the token comes from .env).
# hadolint ignore=DL3064
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TOKENIZERS_PARALLELISM=false \
    PTB_TIMEDELTA=true \
    KNOWLEDGE_DIR=/srv/brobygger/knowledge \
    INDEX_DIR=/srv/brobygger/index \
    DATA_DIR=/srv/brobygger/data \
    HF_HOME=/srv/brobygger/data/huggingface
WORKDIR /srv/brobygger
USER ${UID}:${UID}
VOLUME ["/srv/brobygger/knowledge", "/srv/brobygger/index", "/srv/brobygger/data"]
# Only used in webhook mode (WEBHOOK_URL set); long polling needs no open port.
EXPOSE 8443
# Settings, knowledge, index, database and Telegram's getMe; the first start builds the index,
# so give it time before the first check counts.
HEALTHCHECK --interval=5m --timeout=60s --start-period=10m --retries=3 \
    CMD ["brobygger", "doctor"]
ENTRYPOINT ["brobygger-entrypoint"]
CMD ["run"]
