#!/bin/sh
# Rasa with the REST and web chat channels (docker/credentials.yml), PostgreSQL tracker and Redis lock
# store (docker/endpoints.yml), and its HTTP API for the staff inbox's transcripts, behind a token.
set -eu
: "${RASA_API_TOKEN:?set RASA_API_TOKEN}"
exec rasa run --model /bot/models/bot.tar.gz --endpoints /bot/endpoints.docker.yml \
    --credentials /bot/credentials.docker.yml --interface 0.0.0.0 --port 5005 \
    --enable-api --auth-token "$RASA_API_TOKEN"
