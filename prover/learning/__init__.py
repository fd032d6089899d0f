"""Learned parts of the search: features of proof states, the k-NN tactic generator, the node scorer."""
