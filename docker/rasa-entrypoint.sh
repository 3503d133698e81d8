#!/bin/sh
# Rasa with the REST and web chat channels (docker/credentials.yml), PostgreSQL tracker and Redis lock
# store (docker/endpoints.yml), and its HTTP API for the staff inbox's transcripts, behind a JWT secret.
# bot.launch gives Rasa the secret from the environment, so it never appears on the command line (ps).
set -eu
: "${RASA_API_TOKEN:?set RASA_API_TOKEN}"
export ASSISTANT_RASA_API_TOKEN="$RASA_API_TOKEN"
unset RASA_API_TOKEN
exec python -m bot.launch run --model /bot/models/bot.tar.gz --endpoints /bot/endpoints.docker.yml \
    --credentials /bot/credentials.docker.yml --interface 0.0.0.0 --port 5005 --enable-api
