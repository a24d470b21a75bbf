# Two commands on a fresh Debian/Ubuntu machine (see README):
#   make report   set up, then run the bundled default job offline
#   make test     set up (with test extras and the CPU torch for the meta-device
#                 cross-check), then run the test suite
# Both are idempotent: a second call only re-checks the system libraries and
# the venv stamp, then goes straight to the work.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.reportgen-installed
ORACLE_STAMP = $(VENV)/.reportgen-oracle-installed
# timm (Gemma-3n's vision tower) + the torchvision that pins torch 2.13.0, for the oracle only
TIMM_DIR   = $(VENV)/oracle-timm
TIMM_STAMP = $(TIMM_DIR)/.reportgen-installed
TIMM_PINS  = timm==1.0.29 torchvision==0.28.0

.PHONY: report test oracle setup setup-test sysdeps sysdeps-test clean

report: setup
	HF_HUB_OFFLINE=1 $(PY) -m reportgen run model_lists/default.toml

test: setup-test
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

# Only the meta-device cross-checks (part of `make test` too), e.g. ORACLE_EXAMPLES=1000 make oracle
oracle: setup-test
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests/test_arch_oracle.py $(wildcard tests/test_oracle_*.py)

setup: sysdeps $(STAMP)

setup-test: sysdeps-test $(STAMP) $(ORACLE_STAMP) $(TIMM_STAMP)

sysdeps:
	@sh scripts/install-system-deps.sh runtime

sysdeps-test:
	@sh scripts/install-system-deps.sh test

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	@touch $(STAMP)

# the oracle extra (torch==2.13.0, CPU, from this machine kind's local disk) for the meta-device
# cross-check: tests only, so `make report` never installs it.
$(ORACLE_STAMP): $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e '.[test,oracle]'
	@touch $(ORACLE_STAMP)

# timm + torchvision for Gemma-3n's oracle (tests/test_gemma3n_mm.py, scripts/timm_towers.py), installed
# beside site-packages, not in it: torchvision 0.28.0 is a CUDA build whose compiled ops cannot load beside
# the CPU torch, and transformers imports it whenever it is installed (its import then fails).  Only the
# test session adds this folder to sys.path (tests/conftest.py -> scripts/timm_towers.py: enable_timm, which
# also gets torchvision's pure-Python part imported without its ops).  timm's other dependencies (pyyaml,
# huggingface_hub, safetensors) come with transformers.
$(TIMM_STAMP): $(ORACLE_STAMP) Makefile
	rm -rf $(TIMM_DIR)
	$(PY) -m pip install -q --no-deps --target $(TIMM_DIR) $(TIMM_PINS)
	@touch $(TIMM_STAMP)

clean:
	rm -rf $(VENV) build dist *.egg-info
