"""`prover repl`: the JSON Lines protocol editors and scripts speak (see docs/repl.md)."""
