"""Request validation and the editor-buffer reading, without a prover."""
from __future__ import annotations

import json

import pytest

from prover.components import BackendOptions
from prover.repl.commands import theorem_from_source
from prover.repl.protocol import (CancelRequest, CheckRequest, Defaults, ErrorReply, ProveRequest, RequestError,
                                  Suggestion, SuggestionsReply, SuggestRequest, encode, parse_request)
from prover.search.best_first import SearchConfig


def _parse(obj, defaults: Defaults | None = None):
    return parse_request(json.dumps(obj), defaults)


def test_prove_fields_fill_from_the_defaults_and_override_them() -> None:
    d = Defaults(SearchConfig(max_expansions=7, timeout=30.0), BackendOptions(check_timeout=99.0, memory_mb=512),
                 generator="portfolio", tactics_file="/tmp/t.txt")
    r = _parse({"id": 1, "cmd": "prove", "statement": "Theorem t : True.", "candidates": 4, "memory_mb": 1024}, d)
    assert isinstance(r, ProveRequest)
    assert (r.search.max_expansions, r.search.candidates, r.search.timeout) == (7, 4, 30.0)
    assert (r.options.check_timeout, r.options.memory_mb) == (99.0, 1024)
    assert (r.tactics_file, r.theorem.statement, r.progress) == ("/tmp/t.txt", "Theorem t : True.", True)


@pytest.mark.parametrize("obj, id, fragment", [
    ({"id": 1, "cmd": "prove"}, 1, "missing field 'statement'"),
    ({"id": 1, "cmd": "prove", "file": "a.v"}, 1, "'file' needs 'theorem'"),
    ({"id": 1, "cmd": "prove", "statement": "Theorem t : True.", "file": "a.v", "theorem": "t"}, 1, "not statement"),
    ({"id": 1, "cmd": "prove", "statement": "T.", "priority": "fastest"}, 1, "priority"),
    ({"id": 1, "cmd": "prove", "statement": "T.", "timeout": -3}, 1, "positive number"),
    ({"id": 1, "cmd": "prove", "statement": "T.", "max_expansions": 2.5}, 1, "positive integer"),
    ({"id": 1, "cmd": "prove", "statement": "T.", "progress": "yes"}, 1, "true or false"),
    ({"id": "s", "cmd": "suggest"}, "s", "missing field 'goal'"),
    ({"id": "s", "cmd": "suggest", "goal": "g", "check": True}, "s", "cannot be run"),
    ({"id": "s", "cmd": "suggest", "goal": "g", "statement": "Theorem t : True."}, "s", "not both"),
    ({"id": "s", "cmd": "suggest", "source": "Theorem t : True.", "tactics": ["auto"]}, "s", "drop 'tactics'"),
    ({"id": "s", "cmd": "suggest", "goal": "g", "tactics": "intros"}, "s", "list of strings"),
    ({"id": 2.5, "cmd": "check", "statement": "Theorem t : True."}, 2.5, "missing field 'tactics'"),
    ({"id": 3, "cmd": "prove", "source": "Theorem t : True."}, 3, "suggest only"),
    ({"id": 3, "cmd": "cancel"}, 3, "missing field 'target'"),
    ({"id": 3, "cmd": "cancel", "target": [1]}, 3, "string or a number"),
    ({"id": 3, "cmd": "shutdown", "now": True}, 3, "unknown field 'now'"),
    ({"id": None, "cmd": "shutdown"}, None, "field 'id'"),
    ({"id": {"a": 1}, "cmd": "shutdown"}, None, "field 'id'"),
])
def test_bad_requests_name_the_problem_and_keep_the_id(obj, id, fragment) -> None:
    with pytest.raises(RequestError) as e:
        _parse(obj)
    assert e.value.id == id and fragment in e.value.message and e.value.code == "bad_request"


def test_ids_of_every_json_kind_round_trip() -> None:
    for rid in ("a", 0, -4, 2.5, ""):
        r = _parse({"id": rid, "cmd": "check", "statement": "Theorem t : True.", "tactics": ["auto"]})
        assert isinstance(r, CheckRequest) and r.id == rid and r.tactics == ("auto",)
    c = _parse({"id": 5, "cmd": "cancel", "target": "a"})
    assert c == CancelRequest(5, "a")


def test_suggest_defaults() -> None:
    r = _parse({"id": 1, "cmd": "suggest", "goal": "x = x"})
    assert isinstance(r, SuggestRequest) and (r.n, r.check, r.theorem, r.tactics) == (8, False, None, ())


def test_responses_are_single_ascii_lines() -> None:
    reply = SuggestionsReply("i", "x : ℝ\n====\nx = x", (Suggestion("rfl", -0.5, "", True), Suggestion("simp", -1.0)),
                             True, 2, 0.01)
    line = encode(reply)
    assert "\n" not in line and line.isascii()
    d = json.loads(line)
    assert d["type"] == "suggestions" and d["goals"].startswith("x : ℝ")
    assert d["candidates"] == [{"tactic": "rfl", "score": -0.5, "goals": "", "complete": True},
                               {"tactic": "simp", "score": -1.0}]
    assert json.loads(encode(ErrorReply(None, "parse_error", "bad"))) == {
        "id": None, "type": "error", "code": "parse_error", "message": "bad"}


def test_editor_buffer_gives_the_last_theorem_and_its_proof_so_far() -> None:
    source = ("Require Import Arith.\nLemma first : True.\nProof. exact I. Qed.\n"
              "(* the one we are in *)\nTheorem second (n : nat) :\n  n + 0 = n.\nProof.\n"
              "  induction n.\n  - reflexivity.\n  - simpl. { rewrite IHn. reflexivity. } \n  - sim")
    theorem, tactics = theorem_from_source(source, (), 1)
    assert theorem.name == "second" and theorem.statement.startswith("Theorem second")
    assert theorem.header.startswith("Require Import Arith.") and "Qed." in theorem.header
    assert tactics == ("induction n.", "reflexivity.", "simpl.", "rewrite IHn.", "reflexivity.")
    with pytest.raises(RequestError):
        theorem_from_source("Require Import Arith.\n", (), 1)
