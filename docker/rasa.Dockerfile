# syntax=docker/dockerfile:1
# The Rasa image: Rasa Open Source 3.6.21 on Python 3.10, where its normal install works.
# Build from the project root:  docker build -f docker/rasa.Dockerfile -t procurement-assistant-rasa .
FROM python:3.10.15-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RASA_TELEMETRY_ENABLED=false \
    RASA_CACHE_DIRECTORY=/tmp/rasa-cache \
    PYTHONPATH=/

WORKDIR /bot
RUN pip install rasa==3.6.21 psycopg2-binary==2.9.10 \
    && groupadd --system rasa && useradd --system --gid rasa --home /bot rasa

COPY bot/ /bot/
# The channel connectors read the payload contract (standard library only), importable via PYTHONPATH=/.
COPY assistant/__init__.py assistant/payload.py /assistant/
COPY docker/endpoints.yml /bot/endpoints.docker.yml
COPY docker/credentials.yml /bot/credentials.docker.yml
COPY docker/rasa-entrypoint.sh /usr/local/bin/rasa-entrypoint.sh
# Trained at build time, so every replica serves the same model.
RUN rasa train --fixed-model-name bot --out /bot/models && chown -R rasa:rasa /bot

USER rasa
EXPOSE 5005
ENTRYPOINT ["/usr/local/bin/rasa-entrypoint.sh"]
