# Two commands, from nothing but the repository: `make up` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# A private uv of the version that wrote uv.lock (another may read or re-resolve the lock differently).
UV_VERSION := 0.13.9
UV := $(CURDIR)/.tools/uv-$(UV_VERSION)/bin/uv
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: up test install lock protos lint bench clean triton baseten-sdk

# pip --target works even where the system Python is "externally managed" (PEP 668).
$(UV):
	@mkdir -p .tools
	@python3 -m pip install --quiet --disable-pip-version-check --target .tools/uv-$(UV_VERSION) 'uv==$(UV_VERSION)' \
	  >/dev/null 2>&1 || { echo "cannot install uv $(UV_VERSION) with pip (python3 -m pip)"; exit 1; }

# Exactly the versions in uv.lock, so a new release upstream cannot change what CI runs; a
# pyproject.toml changed without `make lock` stops here.
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	@$(UV) lock --check --quiet \
	  || { echo "uv.lock does not match pyproject.toml: run \`make lock\` and commit uv.lock"; exit 1; }
	@$(UV) venv --quiet --allow-existing --python 3.11 $(VENV) 2>/dev/null || $(UV) venv --quiet --allow-existing $(VENV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --quiet --frozen --extra test
	@touch $@

# After changing dependencies in pyproject.toml (or to take new releases: `make lock LOCK_ARGS=--upgrade`).
lock: | $(UV)
	$(UV) lock $(LOCK_ARGS)

install: $(VENV)/.installed

# With a tritonserver installed (`make triton`), the platform's agent runs Triton deployments too.
up: install
	$(if $(wildcard .tools/triton/.installed),KINGPOST_TRITON_HOME="$(CURDIR)/.tools/triton" )$(VENV)/bin/kingpost up

# The test tools that do not come from PyPI: buf (npm) and PostgreSQL's server binaries (Debian).
# npm when there is one, else npm from apt.
BUF_VERSION := 1.75.0
BUF_NPM := npm install --silent --prefix .tools @bufbuild/buf@$(BUF_VERSION) >/dev/null
.tools/node_modules/.bin/buf:
	@mkdir -p .tools/node_modules/.bin
	@(command -v npm >/dev/null && $(BUF_NPM)) \
	  || ($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null && $(BUF_NPM)) \
	  || { rm -f $@; echo "cannot install buf (npm, or apt-get install npm)"; exit 1; }

# Not needed when KINGPOST_TEST_POSTGRES_URL names a server to use instead.
.tools/postgres:
	@if [ -z "$$KINGPOST_TEST_POSTGRES_URL" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  ($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null) \
	  || { echo "PostgreSQL server binaries are missing and could not be installed (apt-get install postgresql)"; exit 1; }; \
	fi
	@mkdir -p .tools && touch $@

# A CPU tritonserver for Triton deployments (from the nvidia-pytriton wheel on PyPI) and its Python
# backend's environment, which must be a venv of Debian's python3.11 (src/kingpost/triton_install.py).
.tools/triton/.installed: | install
	@if [ ! -x /usr/bin/python3.11 ] || ! /usr/bin/python3.11 -c 'import venv, ensurepip' 2>/dev/null \
	    || ! ls /usr/lib/x86_64-linux-gnu/libpython3.11.so.1* >/dev/null 2>&1; then \
	  ($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends python3.11 python3.11-venv libpython3.11 >/dev/null) \
	  || { echo "cannot install Debian's python3.11, python3.11-venv and libpython3.11 (apt-get)"; exit 1; }; \
	fi
	$(PY) -m kingpost.triton_install .tools/triton
	@touch $@

triton: .tools/triton/.installed

# Baseten's own SDK (PyPI `baseten`), in a virtual environment of its own with its own hashed pins, so
# that what it requires never pins kingpost's dependencies; tests/e2e/test_surface.py runs it against
# `kingpost up`.
BASETEN_SDK := .tools/baseten-sdk
$(BASETEN_SDK)/.installed: tests/e2e/baseten_sdk/requirements.txt | $(UV)
	@$(UV) venv --quiet --allow-existing --python 3.11 $(BASETEN_SDK) 2>/dev/null || $(UV) venv --quiet --allow-existing $(BASETEN_SDK)
	$(UV) pip install --quiet --python $(BASETEN_SDK)/bin/python --require-hashes -r $<
	@touch $@

baseten-sdk: $(BASETEN_SDK)/.installed

# Unit and integration tests on two pytest-xdist workers, each test file whole on one: most of them
# wait on subprocesses and servers, so two share CI's two cores well (integration: 266 s -> 122 s).
# Then the e2e tests, in two pytest processes side by side (E2E_GROUPS=1: one), each with its own
# platform; not xdist, whose workers would each run one of the REST fuzz test's schemathesis cases
# (they share one node id). Group b is the files named below, group a every other file, so a new
# e2e file runs in a without being listed. The chaos test times recoveries that a second platform
# would slow, so it runs alone afterwards. Every run goes ahead whatever the others' results;
# `make test` fails if any does. Each line of output says its group. Group b runs in the background,
# where a shell without job control starts commands with SIGINT ignored, which their children
# inherit: a test that stops a CLI with SIGINT, as a user's Ctrl-C (kingpost watch, chains push
# --watch), must be in group a (kingpost up sets its own handlers and works in either).
TEST_WORKERS ?= 2
E2E_GROUPS ?= 2
E2E_ALONE := tests/e2e/test_up_chaos.py
E2E_B := $(addprefix tests/e2e/,test_scale_to_zero.py test_rest_hostile.py test_async.py test_builder_envs.py \
	test_heal.py test_lifecycle.py test_tracing.py test_truss_compat.py test_websockets.py test_up.py test_isolation.py)
E2E_A := $(filter-out $(E2E_B) $(E2E_ALONE),$(sort $(wildcard tests/e2e/test_*.py)))
TEST_ENV := PATH="$(CURDIR)/.tools/node_modules/.bin:$$PATH" KINGPOST_TRITON_HOME="$(CURDIR)/.tools/triton"
E2E := $(TEST_ENV) $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)
test: install .tools/node_modules/.bin/buf .tools/postgres .tools/triton/.installed $(BASETEN_SDK)/.installed
	set -o pipefail; failed=0; \
	$(TEST_ENV) $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests/unit tests/integration $(PYTEST_ARGS) || failed=1; \
	if [ "$(E2E_GROUPS)" = 1 ]; then \
		$(E2E) $(E2E_A) $(E2E_B) || failed=1; \
	else \
		$(E2E) --basetemp=/tmp/kp-e2e-b.$$$$ $(E2E_B) 2>&1 | sed -u 's/^/[e2e b] /' & b=$$!; \
		$(E2E) --basetemp=/tmp/kp-e2e-a.$$$$ $(E2E_A) 2>&1 | sed -u 's/^/[e2e a] /' || failed=1; \
		wait $$b || failed=1; \
		rm -rf /tmp/kp-e2e-a.$$$$ /tmp/kp-e2e-b.$$$$; \
	fi; \
	$(E2E) $(E2E_ALONE) || failed=1; \
	exit $$failed

protos: install
	$(PY) scripts/gen_protos.py

lint: .tools/node_modules/.bin/buf
	.tools/node_modules/.bin/buf lint

bench: install
	$(PY) bench/platform_latency.py

clean:
	rm -rf $(VENV) .tools
