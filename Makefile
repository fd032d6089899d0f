# Debian 12: Coq 8.16 and the libraries miniF2F-rocq needs, plus csdp for psatz.
APT_PACKAGES = coq libcoq-coquelicot libcoq-mathcomp-ssreflect libcoq-hammer coinor-csdp
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install install-apt install-python test demo bench lean

install: install-apt install-python

install-apt:
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(APT_PACKAGES)

install-python:
	$(PYTHON) -m pip install -q -e '.[dev]'

test:
	$(PYTHON) -m pytest -q

# Proves the theorems of examples/demo.v with Coq and the CPU default generator, and shows the proofs.
demo:
	@for t in add_zero_r lt_succ_le square_of_sum and_swap subst_then_lia; do \
		prover prove examples/demo.v --theorem $$t --timeout 60 || exit 1; \
	done

bench:
	$(PYTHON) benchmarks/search_overhead.py

# Lean 4 for --backend lean-repl / leandojo (needs internet, ~5 GB): elan if missing, the MiniF2F
# library, Mathlib's prebuilt cache, the build, and the REPL binary (`lake exe repl` builds it).
ELAN_BIN := $(HOME)/.elan/bin
lean:
	@command -v lake >/dev/null 2>&1 || test -x "$(ELAN_BIN)/lake" || \
		(curl -sSfL https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh | \
		 sh -s -- -y --default-toolchain none)
	$(PYTHON) -m prover lean setup
	cd lean_project && export PATH="$(ELAN_BIN):$$PATH" && \
		(test -f lake-manifest.json || lake update) && \
		lake exe cache get && lake build && lake exe repl < /dev/null
	@echo "Lean ready. Add $(ELAN_BIN) to PATH, then: prover prove --backend lean-repl ..."
