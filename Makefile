# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501
WHISPER_VERSION := 20250625
APT_PACKAGES := chromium chromium-driver espeak-ng sox

.PHONY: run test lint bench load samples system-deps clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# openai-whisper without its CUDA-only triton requirement; its real needs are in requirements.txt
	$(PY) -m pip install --quiet --no-deps openai-whisper==$(WHISPER_VERSION)
	touch $(STAMP)

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
	$(PY) scripts/serve.py --server.port $(PORT)

test: $(STAMP) system-deps
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP) system-deps
	$(PY) -m whisper_inquiry.bench
	$(PY) bench/app_bench.py

# a class pressing Analyse at once: USERS simulated users through the app's Engine (ENGINE=serve: Ray Serve)
USERS ?= 8
ENGINE ?= inprocess
load: $(STAMP)
	$(PY) bench/load.py --users $(USERS) --engine $(ENGINE)

samples: system-deps
	scripts/make_samples.sh

clean:
	rm -rf $(VENV) artifacts .pytest_cache
