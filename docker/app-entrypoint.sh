#!/bin/sh
# Prepare the embedding model and the index on the /data volume when they are missing or stale
# (another model, other documents, another pipeline version), then run the given command: the
# knowledge service or the action server.
set -eu
python -m index prepare-model
python -m index build --if-needed --quiet
exec "$@"
