"""Proof corpora: tactic steps traced from real Coq files, the held-out split, reading and writing."""
