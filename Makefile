# rtlab: two commands for a new machine, `make demo` and `make test`.
# Both create .venv/ and install what is missing; a second run only checks.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rtlab-installed
SYSPKG := scripts/ensure-system-packages
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup system demo test test-fast live bench data serve lint clean

setup: system $(STAMP)

# Apertium's English-Spanish data has no program to look for: check its mode file (named eng-spa since
# Debian 12, en-es before; apertium-en-es is the older package name).
APERTIUM_EN_ES := /usr/share/apertium/modes/eng-spa.mode|/usr/share/apertium/modes/en-es.mode=apertium-eng-spa|apertium-en-es

system:
	@$(SYSPKG) flite=flite apertium=apertium espeak-ng=espeak-ng '$(APERTIUM_EN_ES)' \
		libssl.so.3=libssl3 libasound.so.2=libasound2 /etc/ssl/certs/ca-certificates.crt=ca-certificates

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing rtlab and its dependencies into $(VENV)/"
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e ".[dev,azure]"
	@touch $(STAMP)

demo: setup
	$(PY) -m rtlab.cli compare data/clips/*.wav --out out/demo

test: setup
	@$(SYSPKG) chromium=chromium
	$(VENV)/bin/lint-imports --no-cache
	RTLAB_TARGET=local $(PY) -m pytest tests notebooks --nbval --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider

# Against the real OpenAI / Azure account in the environment (see tests/live/conftest.py); prints what it will
# spend first, and one line (exit 0) when no account is configured.
live: setup
	$(PY) -m pytest tests/live -m live -p no:cacheprovider

test-fast: setup
	$(PY) -m pytest tests -m "not browser and not slow" -x -q

bench: setup
	$(PY) -m bench

data: setup
	$(PY) -m rtlab.data.build

serve: setup
	$(VENV)/bin/rtlab serve

lint: setup
	$(VENV)/bin/ruff check lib tests bench
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) out .pytest_cache
