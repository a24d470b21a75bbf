# Two commands on a fresh Debian/Ubuntu machine (see README):
#   make report   set up, then run the bundled default job offline
#   make test     set up (with test extras), then run the test suite
# Both are idempotent: a second call only re-checks the system libraries and
# the venv stamp, then goes straight to the work.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.reportgen-installed

.PHONY: report test oracle setup setup-test sysdeps sysdeps-test clean

report: setup
	HF_HUB_OFFLINE=1 $(PY) -m reportgen run model_lists/default.toml

test: setup-test
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

# Optional: cross-check exact parameter counts against torch's meta device, in a separate venv
# (torch is never a runtime dependency; torch==2.13.0 is the CPU build on this machine kind's disk).
oracle: sysdeps-test
	@test -x .venv-oracle/bin/python || $(PYTHON) -m venv .venv-oracle
	.venv-oracle/bin/python -m pip install -q torch==2.13.0 -e '.[test]'
	HF_HUB_OFFLINE=1 .venv-oracle/bin/python -m pytest -q tests/test_arch_oracle.py

setup: sysdeps $(STAMP)

setup-test: sysdeps-test $(STAMP)

sysdeps:
	@sh scripts/install-system-deps.sh runtime

sysdeps-test:
	@sh scripts/install-system-deps.sh test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .venv-oracle build dist *.egg-info
