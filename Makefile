# Two commands on a fresh Debian/Ubuntu machine (see README):
#   make report   set up, then run the bundled default job offline
#   make test     set up (with test extras), then run the test suite
# Both are idempotent: a second call only re-checks the system libraries and
# the venv stamp, then goes straight to the work.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.reportgen-installed

.PHONY: report test setup setup-test sysdeps sysdeps-test clean

report: setup
	HF_HUB_OFFLINE=1 $(PY) -m reportgen run model_lists/default.toml

test: setup-test
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

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
	rm -rf $(VENV) build dist *.egg-info
