# Two commands work on a fresh machine with Python, a C compiler and make:
#   make demo   the seed 002 echo scenario on treadle and on stock asyncio
#   make test   ruff, mypy and the test suite
# Each builds what it needs: a virtual environment in .venv with the package.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest clean test-versions

$(STAMP): pyproject.toml
	@# redis-server: the real peer of the redis-py test (Debian's package).
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; \
	  else echo "note: redis-server is not installed (sudo apt-get install redis-server); its test will fail"; fi; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m treadle demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .venv-* build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

# The suite on every CPython 3.11+ this machine has (pyenv's or on PATH), each in
# its own virtual environment .venv-X.Y.  Not part of `make test`.
test-versions:
	@seen=""; for py in $$(ls -d $$HOME/.pyenv/versions/3.1[1-9]*/bin/python3 2>/dev/null) $$(command -v python3.11 python3.12 python3.13 python3.14 2>/dev/null); do \
	  ver=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  case " $$seen " in *" $$ver "*) continue;; esac; seen="$$seen $$ver"; \
	  echo "== $$py ($$ver)"; \
	  [ .venv-$$ver/.stamp -nt pyproject.toml ] || { $$py -m venv .venv-$$ver && .venv-$$ver/bin/python -m pip install --quiet -e '.[test]' && touch .venv-$$ver/.stamp; } || exit 1; \
	  .venv-$$ver/bin/python -m pytest -q $(PYTEST_ARGS) || exit 1; \
	done
