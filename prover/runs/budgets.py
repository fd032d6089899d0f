"""Default search budgets of the benchmarks, kept apart from their runners so the CLI parser reads them
without importing a runner (and its file-context machinery) at every start."""

# The held-out library benchmark: 60 s of wall clock per theorem, as in the published runs it is
# compared with. The state cap is only a guard: time ends the search (a cap of 100 stopped 21 of 129
# theorems within 4-39 s, with most of their minute unused).
COQLIB_TIMEOUT = 60.0
COQLIB_MAX_EXPANSIONS = 10_000
