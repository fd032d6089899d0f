"""Default search budgets of the benchmarks, kept apart from their runners so the CLI parser reads them
without importing a runner (and its file-context machinery) at every start."""

# The held-out library benchmark: 60 s of wall clock per theorem, as in the published runs it is
# compared with. The state cap is only a guard: time ends the search (a cap of 100 stopped 21 of 129
# theorems within 4-39 s, with most of their minute unused).
COQLIB_TIMEOUT = 60.0
COQLIB_MAX_EXPANSIONS = 10_000
# A tactic (by its text) may spend a quarter of that failing or timing out; then the search tries it only
# when nothing else is left. In the 60 s runs without this limit, sauto's 5 s timeouts, slow `vm_compute; reflexivity` failures
# and repeated hammer steps took most of the minute of many failed theorems.
COQLIB_TACTIC_ALLOWANCE = 15.0
