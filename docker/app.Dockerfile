# syntax=docker/dockerfile:1
# The app image: knowledge + web service (FastAPI: search, web chat, staff inbox) and the Rasa action
# server (rasa-sdk); same code, two commands.
# Build from the project root:  docker build -f docker/app.Dockerfile -t procurement-assistant-app .

# The web chat's only library, the socket.io client, comes from npm at build time.
FROM node:20.20.2-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error \
    && mkdir -p vendor && cp node_modules/socket.io-client/dist/socket.io.min.js vendor/

FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    ASSISTANT_MODEL_CACHE_DIR=/data/models \
    ASSISTANT_INDEX_DIR=/data/index \
    ASSISTANT_INBOX_DB=/data/inbox/inbox.sqlite3 \
    ASSISTANT_HOST=0.0.0.0 \
    ASSISTANT_ACTIONS_HOST=0.0.0.0

WORKDIR /app

# torch first, CPU-only (from PyPI torch would pull the CUDA build).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY requirements/app.txt requirements/actions.txt requirements/
RUN pip install -r requirements/app.txt -r requirements/actions.txt \
    && pip install --no-deps --ignore-requires-python rasa-sdk==3.6.2

COPY pyproject.toml README.md ./
COPY index/ index/
COPY service/ service/
COPY assistant/ assistant/
COPY actions/ actions/
COPY knowledge/ knowledge/
COPY web/ web/
COPY --from=web /web/vendor/ web/vendor/
RUN pip install --no-deps -e . \
    && groupadd --system app && useradd --system --gid app --home /app app \
    && mkdir -p /data/models /data/index /data/inbox && chown -R app:app /data

USER app
VOLUME ["/data"]
EXPOSE 8000 5055

# The model and the index live on the /data volume: prepared on first start, reused afterwards
# (python -m index build is skipped when the index matches the documents and the model).
# Owned by root and not writable by the runtime user (who could otherwise change what the container runs).
COPY --chmod=0755 docker/app-entrypoint.sh /usr/local/bin/app-entrypoint.sh
ENTRYPOINT ["/usr/local/bin/app-entrypoint.sh"]
CMD ["python", "-m", "service"]
