"""The generator interface: goals text in, ranked tactic candidates out."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """One proposed tactic with its model log-probability."""

    tactic: str
    logprob: float  # sum of the tactic's token log-probs (true, unwarped)
    num_tokens: int = 1
    # A step that runs under the backend's own budget (Coq's hammer: ATPs, then reconstruction):
    # the search tries it when its cost comes up in best-first order, not with its state's cheap
    # candidates, and gives it the time left rather than the per-tactic limit.
    expensive: bool = False

    @property
    def score(self) -> float:
        """Length-normalised log-prob: Llemma's per-candidate score."""
        return self.logprob / max(1, self.num_tokens)


class GeneratorError(RuntimeError):
    """The model failed on a request (it stays up: other requests go on)."""


class GeneratorUnavailable(RuntimeError):
    """The model is out of reach: its service process or actor died or never started. A run stops
    cleanly on it; the REPL answers the request with an error and starts the service again."""


class Generator(ABC):
    """Proposes tactics for a goal. Implementations: the portfolio, the Hugging Face LM, mixes."""

    name: str = "generator"
    model_id: str | None = None
    concurrent: bool = False  # whether several threads may call it at once (a served model: yes)

    @abstractmethod
    def generate(self, goals: str, n: int) -> list[Candidate]:
        """Up to ``n`` distinct candidates, best first."""

    def generate_batch(self, goals: list[str], n: int) -> list[list[Candidate]]:
        """Candidates for several open states at once; models override this to batch on the GPU."""
        return [self.generate(g, n) for g in goals]

    def learn(self, steps: list[tuple[str, str]]) -> int:
        """Online learning: the (goals, tactic) steps of a proof found during the run. Generators that
        cannot learn ignore them; returns how many steps were taken in."""
        return 0

    def learn_lemmas(self, lemmas: list[tuple[str, str]]) -> int:
        """The lemmas proved before a theorem in its file, as (name, the state their proof starts from):
        generators that can use a lemma by name take them in; returns how many."""
        return 0

    def checkpoint(self) -> object:
        """A mark of what the generator has learned so far (see ``rollback``)."""
        return None

    def rollback(self, mark: object) -> None:
        """Forget what was learned since ``mark``: steps learned for one theorem only (its file's
        earlier proofs) must not stay for the next."""

    def close(self) -> None:
        """Release what the generator holds (a served model: its service process)."""


def rank_candidates(candidates: list[Candidate], n: int) -> list[Candidate]:
    """Drop empty and duplicate tactics (keeping the best score), sort best first, keep ``n``."""
    best: dict[str, Candidate] = {}
    for c in candidates:
        t = c.tactic.strip()
        if not t:
            continue
        if t not in best or c.score > best[t].score:
            best[t] = Candidate(t, c.logprob, c.num_tokens, c.expensive)
    return sorted(best.values(), key=lambda c: -c.score)[:n]
