# Two commands do everything from a fresh clone:
#   make run    create the environment, install, prepare the model, build the index, start the service
#   make test   install what the tests need and run them all (what CI runs)
# Helpers: make install | model | index | eval | bench | clean

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SHARED ?= ../shared
INDEX_DIR ?= var/index
HOST ?= 127.0.0.1
PORT ?= 8000
export ASSISTANT_HOST ?= $(HOST)
export ASSISTANT_PORT ?= $(PORT)
export ASSISTANT_INDEX_DIR ?= $(abspath $(INDEX_DIR))
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

RASA_VENV ?= .venv-rasa
export RASA_TELEMETRY_ENABLED := false

.PHONY: run test install model index eval bench clean rasa-env

$(BIN)/.installed: pyproject.toml requirements/app.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/app.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(BIN)/.installed

model: install
	$(BIN)/python -m index prepare-model

$(INDEX_DIR)/manifest.json: $(BIN)/.installed $(wildcard knowledge/*) $(wildcard index/*.py)
	$(BIN)/python -m index build

index: model $(INDEX_DIR)/manifest.json

run: index
	@echo "Search API: http://$(ASSISTANT_HOST):$(ASSISTANT_PORT)/api/search   docs: http://$(ASSISTANT_HOST):$(ASSISTANT_PORT)/docs"
	$(BIN)/python -m service

test: install
	$(BIN)/python -m pytest

eval:
	@curl -fsS http://$(ASSISTANT_HOST):$(ASSISTANT_PORT)/health >/dev/null || { echo "The service is not running: start it with 'make run' in another terminal."; exit 1; }
	$(PYTHON) $(SHARED)/eval/score.py search http://$(ASSISTANT_HOST):$(ASSISTANT_PORT)/api/search $(SHARED)/eval/dev.jsonl --misses var/eval-misses.jsonl

bench: index
	$(BIN)/python -m index.bench --questions $(SHARED)/eval/dev.jsonl

# The Rasa 3.6 environment (for the dialogue, issue 3): its own venv, pinned for Python 3.11.
$(RASA_VENV)/.installed: requirements/rasa.txt
	test -x $(RASA_VENV)/bin/python || $(PYTHON) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/rasa.txt
	$(RASA_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --ignore-requires-python rasa==3.6.21 rasa-sdk==3.6.2
	$(RASA_VENV)/bin/rasa --version
	touch $@

rasa-env: $(RASA_VENV)/.installed

clean:
	rm -rf $(VENV) $(RASA_VENV) var .pytest_cache
