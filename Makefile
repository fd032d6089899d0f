# Debian 12: Coq 8.16 and the libraries miniF2F-rocq needs, plus csdp for psatz.
APT_PACKAGES = coq libcoq-coquelicot libcoq-mathcomp-ssreflect libcoq-hammer coinor-csdp
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install install-apt install-python test demo bench

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
	$(PYTHON) benchmarks/repl_suggest_latency.py
