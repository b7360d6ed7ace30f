# PARLE: `make run` and `make test` each set everything up on a fresh machine first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.parle-setup
NPROC  := $(shell nproc 2>/dev/null || echo 2)
# The browser bundle of LiveKit's client SDK, for the web page's WebRTC mode (from npm).
LIVEKIT_CLIENT := livekit-client@2.23.0
VENDOR_JS      := bridge/static/vendor/livekit-client.umd.js

.PHONY: setup run test test-unit cpu-install-check lint format typecheck bench bench-agent deploy-check lock \
	web-vendor clean tools languagetool livekit-dev bench-livekit bench-pipecat bench-gpu bench-gpu-smoke

setup: $(STAMP) $(VENDOR_JS) tools languagetool

# Idempotent: re-runs only when pyproject.toml changes (or the venv is gone).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CMAKE_BUILD_PARALLEL_LEVEL=$(NPROC) $(BIN)/python -m pip install --quiet -e '.[cpu,dev]'
	$(BIN)/parle models fetch
	touch $@

web-vendor: $(VENDOR_JS)

# Without npm the page keeps its WebSocket mode only (and says nothing about WebRTC).
$(VENDOR_JS):
	@if command -v npm >/dev/null; then \
		tmp=$$(mktemp -d) \
		&& (cd $$tmp && npm pack --silent $(LIVEKIT_CLIENT) >/dev/null \
			&& tar xzf livekit-client-*.tgz package/dist/livekit-client.umd.js) \
		&& mkdir -p $(@D) && cp $$tmp/package/dist/livekit-client.umd.js $@ && rm -rf $$tmp; \
	else \
		echo "npm not found: the web page's WebRTC mode stays off (install npm, make web-vendor)"; \
	fi

# LiveKit's servers, pinned, built with Go into .tools/bin (skipped when already built; without
# Go, one line says how to get livekit-server otherwise): scripts/livekit-tools.sh.
tools:
	@bash scripts/livekit-tools.sh

# LanguageTool 6.6 (pt-BR grammar, PARLE_GRAMMAR=languagetool), pinned in
# deploy/languagetool/pom.xml: Maven copies its jars into the cache once (~245 MB); without
# Java or Maven, one line says how to get them and PARLE keeps its own rules.
languagetool:
	@bash scripts/languagetool.sh

# Redis, livekit-server and livekit-sip on loopback, and the tutor's agent worker: with
# `make run` beside it, the page's "Chamar por WebRTC" talks to the tutor through a real SFU.
livekit-dev: setup
	@bash scripts/livekit-dev.sh

run: setup
	$(BIN)/parle serve

test: setup
	$(BIN)/python -m pytest -m "not gpu"

test-unit: setup
	$(BIN)/python -m pytest -m unit

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: setup
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/bench_turn.py

bench-agent: setup
	$(BIN)/python bench/bench_agent.py --preemptive

bench-livekit: setup
	$(BIN)/python bench/bench_livekit.py

# PARLE against pipecat on the same engines and clips: pipecat lives in its own virtualenv,
# pinned in bench/pipecat/requirements.txt (re-made when that file changes).
PIPECAT_VENV  := .venv-pipecat
PIPECAT_STAMP := $(PIPECAT_VENV)/.bench-setup

$(PIPECAT_STAMP): bench/pipecat/requirements.txt
	$(PYTHON) -m venv $(PIPECAT_VENV)
	$(PIPECAT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PIPECAT_VENV)/bin/python -m pip install --quiet -r bench/pipecat/requirements.txt
	touch $@

bench-pipecat: setup $(PIPECAT_STAMP)
	$(BIN)/python bench/bench_pipecat.py

# The GPU box in one run (bench/gpu/bench_gpu.py: Qwen3-TTS, Whisper turbo, a whole turn; rows
# printed as measured, JSON in bench/results/gpu.json). It runs on the CUDA machine's own
# python3 and torch with no set-up (GPU boxes often reach no registry); BENCH_GPU_ARGS adds
# options (--sections, --tokenizer-json, --out). The smoke run is the same script on the CPU
# with the tiny models.
bench-gpu:
	$(PYTHON) bench/gpu/bench_gpu.py $(BENCH_GPU_ARGS)

bench-gpu-smoke: setup
	$(BIN)/python bench/gpu/bench_gpu.py --smoke $(BENCH_GPU_ARGS)

# Validates deploy/ (compose.yaml, livekit.yaml, sip.yaml, .env.example) and the Dockerfile,
# offline, with no Docker engine.
deploy-check: setup
	$(BIN)/python deploy/check_deploy.py

# The Docker/Modal image's pinned, hashed dependencies (extras gpu + agent, Python 3.12).
lock: setup
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra gpu --extra agent --python-version 3.12 \
		--python-platform x86_64-manylinux_2_28 --generate-hashes \
		--custom-compile-command "make lock" -o deploy/requirements-gpu.lock

clean:
	rm -rf $(VENV) $(PIPECAT_VENV) .pytest_cache .mypy_cache .ruff_cache reply.wav bridge/static/vendor

# Proves a `cpu`-only install runs a whole turn offline: a fresh venv with `.[cpu]` alone (no
# torch, no test tools) speaks one reply to a test clip. `.ci/run` runs it after the tests.
CPU_ONLY := $(or $(TMPDIR),/tmp)/parle-cpu-only
cpu-install-check: setup
	rm -rf $(CPU_ONLY) && $(PYTHON) -m venv $(CPU_ONLY)
	$(CPU_ONLY)/bin/python -m pip install --quiet --upgrade pip
	CMAKE_BUILD_PARALLEL_LEVEL=$(NPROC) $(CPU_ONLY)/bin/python -m pip install --quiet '.[cpu]'
	! $(CPU_ONLY)/bin/python -c "import torch" 2>/dev/null
	cd $(CPU_ONLY) && PARLE_OFFLINE=1 bin/parle turn $(CURDIR)/tests/data/audio/utterances/u01.wav \
		--out $(CPU_ONLY)/reply.wav --json
	rm -rf $(CPU_ONLY)
