# Debian 12: Coq 8.16, the libraries miniF2F-rocq needs and whose sources the proof corpus reads
# (Coquelicot, mathcomp, Flocq, Bignums), csdp for psatz, and the ATPs behind CoqHammer's hammer;
# Poly/ML, to compile the Isabelle bridge's ML in the tests where Isabelle is not installed.
APT_PACKAGES = coq libcoq-coquelicot libcoq-mathcomp-ssreflect libcoq-flocq libcoq-bignums libcoq-hammer \
               coinor-csdp eprover z3 cvc4 polyml
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install install-apt install-python models test demo bench isabelle isabelle-statements lean

install: install-apt install-python

install-apt:
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(APT_PACKAGES)

install-python:
	$(PYTHON) -m pip install -q -e '.[dev,cluster]'

# The learned models of the default generator for Coq (combined), of knn and of --priority value:
# traces the installed Coq libraries' training split into ~/.cache/prover (about 10 minutes on
# 2 idle cores, resumable) and builds the k-NN model and the node scorer. A first use does the same.
models:
	$(PYTHON) -m prover models build

test:
	$(PYTHON) -m pytest -q

# Proves the theorems of examples/demo.v with Coq and the CPU default generator, and shows the proofs.
demo:
	@for t in add_zero_r lt_succ_le square_of_sum and_swap subst_then_lia; do \
		prover prove examples/demo.v --theorem $$t --timeout 60 || exit 1; \
	done

bench:
	$(PYTHON) benchmarks/search_overhead.py
	$(PYTHON) benchmarks/repl_suggest_latency.py

# Isabelle for `--backend isabelle` (needs internet; nothing of it runs in CI). Installs curl (apt) if
# missing, downloads the
# Isabelle2025 Linux bundle (~1 GB download, ~3 GB unpacked: JDK, Poly/ML, E, Vampire, Z3, cvc5),
# links `isabelle` into ~/.local/bin, builds the Prover_Base heap (HOL-Library,
# HOL-Computational_Algebra, HOL-Algebra, HOL-Number_Theory and the bridge; about 1 GB of heaps,
# roughly 20-60 min on 4-8 cores with 8+ GB RAM: estimates, not measured here), and writes the
# miniF2F theories. Re-running skips the download; `isabelle build` skips up-to-date heaps.
ISABELLE_VERSION ?= Isabelle2025
ISABELLE_URL ?= https://isabelle.in.tum.de/website-$(ISABELLE_VERSION)/dist/$(ISABELLE_VERSION)_linux.tar.gz
ISABELLE_PREFIX ?= $(HOME)/.local/share/prover
ISABELLE_BIN_DIR ?= $(HOME)/.local/bin
ISABELLE_JOBS ?= 4
ISABELLE_EXE := $(ISABELLE_PREFIX)/$(ISABELLE_VERSION)/bin/isabelle

isabelle:
	@command -v curl >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl; }
	@mkdir -p $(ISABELLE_PREFIX) $(ISABELLE_BIN_DIR)
	@if [ ! -x $(ISABELLE_EXE) ]; then \
		echo "downloading $(ISABELLE_URL)"; \
		curl -fL --retry 3 -o $(ISABELLE_PREFIX)/$(ISABELLE_VERSION).tar.gz $(ISABELLE_URL) && \
		tar -xzf $(ISABELLE_PREFIX)/$(ISABELLE_VERSION).tar.gz -C $(ISABELLE_PREFIX) && \
		rm -f $(ISABELLE_PREFIX)/$(ISABELLE_VERSION).tar.gz; \
	fi
	ln -sf $(ISABELLE_EXE) $(ISABELLE_BIN_DIR)/isabelle
	$(ISABELLE_EXE) version
	$(ISABELLE_EXE) build -b -v -j $(ISABELLE_JOBS) -d isabelle Prover_Base
	$(PYTHON) -m prover isabelle setup
	@echo "Isabelle ready: make sure $(ISABELLE_BIN_DIR) is on PATH, then try 'make isabelle-statements'"

# Checks that every generated miniF2F statement parses and type-checks (proofs are `sorry`).
isabelle-statements:
	$(ISABELLE_EXE) build -v -j $(ISABELLE_JOBS) -d isabelle -d isabelle/minif2f MiniF2F_Valid MiniF2F_Test

# Lean 4 for --backend lean-repl / leandojo (needs internet, ~5 GB): git and curl (apt) if missing,
# elan if missing, the MiniF2F library files, Mathlib's prebuilt cache, then only what the backends
# and the editor need: ProverSuggest and the REPL binary (`lake exe repl` builds it). Neither
# backend needs the 488 MiniF2F files compiled (the REPL elaborates each statement itself;
# `prover lean trace` builds what it traces).
ELAN_BIN := $(HOME)/.elan/bin
lean:
	@command -v git >/dev/null 2>&1 && command -v curl >/dev/null 2>&1 || \
		($(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q git curl)
	@command -v lake >/dev/null 2>&1 || test -x "$(ELAN_BIN)/lake" || \
		(curl -sSfL https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh | \
		 sh -s -- -y --default-toolchain none)
	$(PYTHON) -m prover lean setup
	cd lean_project && export PATH="$(ELAN_BIN):$$PATH" && \
		(test -f lake-manifest.json || lake update) && \
		lake exe cache get && lake build ProverSuggest && lake exe repl < /dev/null
	@echo "Lean ready. Add $(ELAN_BIN) to PATH, then: prover prove --backend lean-repl ..."
