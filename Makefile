# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SERVE_STAMP := $(VENV)/.installed-serve
PORT ?= 8501
# `make serve`: the Ray Serve engine's address and the models it loads at start (others load when asked for).
SERVE_HOST ?= 127.0.0.1
SERVE_PORT ?= 8000
MODELS ?= tiny.en
# `make run ENGINE=http://host:8000/` sends analyses to a Ray Serve engine; empty: analyse in the app's process.
ENGINE ?=
# `make run CORPUS=DIR` offers the folder DIR on the Corpus page beside the bundled demo corpus.
CORPUS ?=
WHISPER_VERSION := 20250625
APT_PACKAGES := chromium chromium-driver espeak-ng sox

.PHONY: run serve test test-fast screenshots lint bench load live-load corpus-bench stream-bench samples system-deps clean image

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# openai-whisper without its CUDA-only triton requirement; its real needs are in requirements.txt
	$(PY) -m pip install --quiet --no-deps openai-whisper==$(WHISPER_VERSION)
	touch $(STAMP)

# The serving extra (Ray Serve, about 0.5 GB): `make serve` and `make test` install it, `make run` does not.
# requirements.txt constrains it so that no pin of the app's stack moves.
$(SERVE_STAMP): $(STAMP) requirements-serve.txt
	$(PY) -m pip install --quiet -r requirements-serve.txt -c requirements.txt
	touch $(SERVE_STAMP)

# Debian packages the browser tests and the sample script need (we run as root; sudo otherwise).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

run: $(STAMP)
	@echo "Whisper Inquiry: open http://localhost:$(PORT) (the first analysis of the bundled sample starts by itself)"
	$(if $(CORPUS),WHISPER_INQUIRY_CORPUS=$(abspath $(CORPUS))) $(PY) scripts/serve.py --server.port $(PORT) $(if $(ENGINE),--engine $(ENGINE))

serve: $(SERVE_STAMP)
	$(PY) -m whisper_inquiry.serve --host $(SERVE_HOST) --port $(SERVE_PORT) --models $(MODELS) $(if $(REPLICAS),--replicas $(REPLICAS))

test: $(STAMP) $(SERVE_STAMP) system-deps
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2 --dist loadgroup --durations=25

# The edit-test loop, within 3 minutes: lint and every test but the browser's, Ray Serve's and the slowest
# of the rest (marked slow), on two workers. CI runs `make test`, never this.
test-fast: $(STAMP) $(SERVE_STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2 -m "not browser and not serve and not slow" --durations=10

# every page at 1500 and 1024 px, at a desk and in presenter mode, as PNGs in artifacts/screenshots/ (the look
# tests with their screenshots on; `make test` runs the same checks without them), and the README's picture
# (docs/screenshot.png: the Tokens page on the bundled sample)
screenshots: $(STAMP) system-deps
	WHISPER_INQUIRY_SCREENSHOTS=1 $(PY) -m pytest -q -m look

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP) system-deps
	$(PY) -m whisper_inquiry.bench
	$(PY) bench/app_bench.py
	$(PY) bench/probes_bench.py
	$(PY) bench/experiments_bench.py

# a class pressing Analyse at once: USERS simulated users through the app's Engine; SERVE=1 also through
# Ray Serve (started here, or the endpoint ENGINE names), printed beside the in-process figures
USERS ?= 8
load: $(STAMP) $(if $(SERVE),$(SERVE_STAMP))
	MALLOC_ARENA_MAX=2 $(PY) bench/load.py --users $(USERS) $(if $(SERVE),--engine serve $(if $(ENGINE),--url $(ENGINE)) $(if $(REPLICAS),--replicas $(REPLICAS)))

# LISTENERS Live listeners at once, speaking in real time, with and without drafts (bench/live.py)
LISTENERS ?= 4
live-load: $(STAMP)
	$(PY) bench/live.py --listeners $(LISTENERS)

# the demo corpus through the engine, every instrument on, against whisper.transcribe on each file in a loop,
# and memory over a 200-clip corpus (bench/corpus.py; SCALE=10: the corpus ten times over)
SCALE ?= 1
corpus-bench: $(STAMP)
	MALLOC_ARENA_MAX=2 $(PY) bench/corpus.py --scale $(SCALE)

# streaming policies on the bundled clips (and ../shared/audio when present) and a long clip made of them:
# the committed transcript against the offline one, and each word's lag (bench/stream.py)
stream-bench: $(STAMP)
	$(PY) bench/stream.py

# The image deploy/'s manifests run (Dockerfile): VARIANT=cpu (default) or cuda; CONTAINER=podman works too.
IMAGE ?= whisper-inquiry:latest
VARIANT ?= cpu
CONTAINER ?= docker
TORCH_INDEX_cpu := https://download.pytorch.org/whl/cpu
TORCH_INDEX_cuda := https://download.pytorch.org/whl/cu128
image:
	$(CONTAINER) build --build-arg TORCH_INDEX=$(TORCH_INDEX_$(VARIANT)) --build-arg WHISPER_VERSION=$(WHISPER_VERSION) \
	  -t $(IMAGE) .

samples: system-deps
	scripts/make_samples.sh

clean:
	rm -rf $(VENV) artifacts .pytest_cache
