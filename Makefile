# Two commands, from nothing but the repository: `make up` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null)

.PHONY: up test install protos lint bench clean

$(VENV)/.installed: pyproject.toml
	@if [ -z "$(UV)" ]; then python3 -m pip install --quiet --user 'uv>=0.5' || python3 -m pip install --quiet 'uv>=0.5'; fi
	@uv venv --quiet --allow-existing --python 3.11 $(VENV) 2>/dev/null || uv venv --quiet --allow-existing $(VENV)
	uv pip install --quiet --python $(PY) -e '.[test]'
	@touch $@

install: $(VENV)/.installed

up: install
	$(VENV)/bin/kingpost up

# The test tools that do not come from PyPI: buf (npm) and PostgreSQL's server binaries (Debian).
.tools/node_modules/.bin/buf:
	@mkdir -p .tools && npm install --silent --prefix .tools @bufbuild/buf@1 >/dev/null

.tools/postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	  || { echo "PostgreSQL server binaries are missing and could not be installed (apt-get install postgresql)"; exit 1; }; \
	fi
	@mkdir -p .tools && touch $@

test: install .tools/node_modules/.bin/buf .tools/postgres
	PATH="$(CURDIR)/.tools/node_modules/.bin:$$PATH" $(PY) -m pytest -q $(PYTEST_ARGS)

protos: install
	$(PY) scripts/gen_protos.py

lint: .tools/node_modules/.bin/buf
	.tools/node_modules/.bin/buf lint

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .tools
