"""The goal-aware model-free generator for Coq: a ranked list of tactics chosen from the goal's shape.

It reads the goals text the way a model would: when the conclusion still quantifies or implies,
the only sensible first step is to introduce; otherwise it offers structural steps for the
conclusion's and hypotheses' connectives, and the decision procedures that fit the number types in
sight (lia/nia for nat and Z, lra/nra/field/psatz for R, component-wise ring for complex numbers),
then general automation (CoqHammer's sauto, auto, intuition), and last CoqHammer's ``hammer`` step
(premise selection and external ATPs), marked expensive: the search runs it when its cost comes up,
after the cheap tactics of its state and the cheaper states they led to.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from .base import Candidate, Generator
from .coq_numbers import closed_value, equation, exact_root, rational_roots

_SEP = re.compile(r"^=+$", re.M)
_HYP = re.compile(r"^([A-Za-z_][\w', ]*?) : (.*)$")


def _top_level(text: str, op: str) -> bool:
    """Whether ``op`` occurs outside parentheses/brackets in ``text``."""
    depth = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(op, i):
            return True
        i += 1
    return False


@dataclass(frozen=True)
class GoalShape:
    conclusion: str
    hypotheses: tuple[tuple[str, str], ...]  # (names, type)

    @classmethod
    def of(cls, goals: str) -> "GoalShape":
        """Shape of the first goal in coq.py's goals text."""
        parts = _SEP.split(goals, maxsplit=1)
        head, rest = (parts[0], parts[1]) if len(parts) == 2 else ("", goals)
        conclusion = re.split(r"\n\s*\ngoal \d+ is:", rest)[0].strip()
        hyps = []
        for line in head.splitlines():
            m = _HYP.match(line.strip())
            if m:
                hyps.append((m.group(1), m.group(2)))
            elif hyps and line.startswith(" "):  # a hypothesis type wrapped onto the next line
                names, typ = hyps[-1]
                hyps[-1] = (names, typ + " " + line.strip())
        return cls(" ".join(conclusion.split()), tuple(hyps))

    @property
    def text(self) -> str:
        return self.conclusion + " " + " ".join(t for _, t in self.hypotheses)

    def mentions(self, word: str) -> bool:
        return re.search(rf"\b{re.escape(word)}\b", self.text) is not None

    @property
    def introducible(self) -> bool:
        c = self.conclusion
        return c.startswith(("forall ", "~")) or _top_level(c.replace("<->", "<=>"), "->")  # not iff's arrow

    @property
    def iff(self) -> bool:
        return not self.introducible and _top_level(self.conclusion, "<->")

    def variables(self, typ: str) -> list[str]:
        out = []
        for names, t in self.hypotheses:
            if t.strip() == typ:
                out += [n.strip() for n in names.split(",")]
        return out


# Unfolds Rabs and destructs each Rcase_abs, in the goal and in the hypotheses, so that nra sees
# plain inequalities in every case (4 of miniF2F-rocq valid's failures with Rabs).
RABS_CASES = ("unfold Rabs in *; repeat match goal with |- context [Rcase_abs ?x] => destruct (Rcase_abs x) "
              "| H : context [Rcase_abs ?x] |- _ => destruct (Rcase_abs x) end; nra")


# Clears the denominators of every equation and of the goal (field_simplify_eq), proving each
# denominator nonzero from a hypothesis `u <> v` (or by lra), then nra on the polynomial problem: the
# usual first move on competition algebra over R (7 of miniF2F-rocq valid's failures with `/`).
_NONZERO = "first [ assumption | (intro; match goal with Hn : _ <> _ |- _ => apply Hn; lra end) | lra ]"
CLEAR_DENOMINATORS = ("repeat match goal with H : context [ _ / _ ] |- _ => field_simplify_eq in H; "
                      f"[ {_NONZERO} .. | ] end; try (field_simplify_eq; [ | {_NONZERO} .. ]); nra")


# Splits every complex equation (Coquelicot's C = R * R) into its real and imaginary parts, and the
# goal into its components, then nra: 5 of miniF2F-rocq valid's 10 failures over C, one shot.
COMPLEX_PARTS = ("repeat match goal with H : @eq C _ _ |- _ => let a := fresh in let b := fresh in "
                 "assert (a := f_equal fst H); assert (b := f_equal snd H); simpl in a, b; clear H end; "
                 "repeat split; apply injective_projections; simpl; nra")


def _once_per_sqrt(t: str) -> str:
    return (f"lazymatch goal with _ : sqrt {t} * sqrt {t} = {t} |- _ => fail | _ => assert (sqrt {t} * sqrt {t} = {t}) "
            f"by (apply sqrt_sqrt; nra); pose proof (sqrt_pos {t}) end")


# States `sqrt t * sqrt t = t` and `0 <= sqrt t` for every square root in sight (each once), then nra:
# what nra needs to see a square root as a number (2 of valid's 23 failures with sqrt, one shot).
SQRT_FACTS = (f"repeat match goal with |- context [sqrt ?t] => {_once_per_sqrt('t')} "
              f"| _ : context [sqrt ?t] |- _ => {_once_per_sqrt('t')} end; subst; nra")


# Logarithms of products, powers and exponentials taken apart (Rpower and logb unfolded), then lra,
# or field with each `ln c <> 0` from c > 1 (2 of valid's 13 failures with ln/logb/Rpower, one shot).
LOGARITHMS = ("try unfold logb in *; unfold Rpower in *; "
              "repeat (rewrite ln_mult in * by (try apply pow_lt; try apply exp_pos; nra)); "
              "repeat (rewrite ln_pow in * by nra); repeat rewrite ln_exp in *; simpl INR in *; "
              "first [ lra | field; repeat split; apply Rgt_not_eq; rewrite <- ln_1; apply ln_increasing; lra ]")


def _name_literal(where: str) -> str:
    return (f"{where} => let v := eval vm_compute in (Z.of_nat (Nat.of_num_uint x)) in let k := fresh in "
            "set (k := Nat.of_num_uint x) in *; assert (Z.of_nat k = v) by (subst k; vm_compute; reflexivity); "
            "clearbody k")


# A nat literal of 5000 or more is parsed (and printed) as `Nat.of_num_uint ...`, which zify cannot
# read, so lia sees an unknown. Each one becomes a variable with its value in Z stated, then lia.
LARGE_NAT_LITERALS = (f"repeat match goal with {_name_literal('H : context [Nat.of_num_uint ?x] |- _')} "
                      f"| {_name_literal('|- context [Nat.of_num_uint ?x]')} end; lia")


# A nat variable that nia bounds (by 12, else 40) is split into its cases, each closed by nia: the
# "case on the small unknown" of competition number theory (2 of valid's failures, one shot).
BOUNDED_NAT_CASES = ("match goal with v : nat |- _ => first [ assert (v <= 12) by nia | assert (v <= 40) by nia ]; "
                     "let rec go v := destruct v as [|v]; [ nia | first [ lia | go v ] ] in go v end")

# Functions given by equations are rewritten under `map`, then the closed list is computed.
DEFINITIONS_UNDER_MAP = ("repeat match goal with H : forall n, ?f n = _ |- context [map ?f ?l] => "
                         "rewrite (map_ext _ _ H) end; vm_compute; reflexivity")

# Closed folds over lists in the hypotheses (sums of `seq`) computed to their value, then lia.
CLOSED_FOLDS = ("repeat match goal with H : exists _, _ |- _ => destruct H end; "
                "repeat match goal with H : context [fold_right ?f ?a ?l] |- _ => "
                "let v := eval vm_compute in (fold_right f a l) in change (fold_right f a l) with v in H end; lia")

# A polynomial identity over R (`forall x, p x = q x`) read at five points, the function
# definitions rewritten in them, then nra: coefficients compared (4 of valid's failures, one shot).
# All of it inside the match, so that a failure tries the next such hypothesis.
IDENTITY_AT_POINTS = ("match goal with H : forall x : R, _ |- _ => pose proof (H 0) as P0; pose proof (H 1) as P1; "
                      "pose proof (H (-1)) as P2; pose proof (H 2) as P3; pose proof (H (-2)) as P4; "
                      "repeat match goal with D : forall x : R, ?f x = _ |- _ => rewrite ?D in *; clear D end; nra end")

# 3 < PI < 3.34: the stdlib states PI only by its series (PI_ineq) and 3/2 < PI/2 (PI2_3_2).
PI_BOUNDS = ("assert (Hpi : 3 < PI < 167 / 50) by (pose proof PI2_3_2; pose proof (PI_ineq 2) as Hpi; "
             "unfold tg_alt, PI_tg in Hpi; simpl in Hpi; lra)")
# A closed form of a real sum, by induction on its bound: the last term split off (sum_f_R0 is
# defined that way), the hypothesis rewritten, INR pushed through S, + and *, then field. A bound
# n - 1 or pred n under 1 <= n (0 < n) is shifted to n first.
SUM_INDUCTION = (
    "let shift n := (destruct n as [|n]; [lia|]; try replace (S n - 1)%nat with n in * by lia; "
    "try replace (pred (S n)) with n in * by lia) in "
    "try match goal with |- context [sum_f_R0 _ (?n - 1)%nat] => shift n "
    "| |- context [sum_f_R0 _ (pred ?n)] => shift n end; "
    "match goal with |- context [sum_f_R0 _ ?n] => is_var n; "
    "repeat match goal with H : context [n] |- _ => clear H end; "
    "induction n as [|n IH]; cbn [sum_f_R0]; [ | rewrite IH ]; "
    "repeat rewrite ?S_INR, ?plus_INR, ?mult_INR, ?pow_INR, ?minus_INR in * by lia; "
    "rewrite <- ?tech_pow_Rmult in *; change (INR 0) with 0 in *; try pose proof (pos_INR n); "
    "field; repeat split; first [ lra | apply pow_nonzero; lra ] end")
# A function and its inverse (f (g x) = x): each known value of one gives a value of the other
# (g c = d gives f d = c), the values are rewritten in the goal, and a goal g c = d is read as
# g (f d) = d when f's definition computes f d = c.
INVERSE_FUNCTIONS = (
    "repeat match goal with Hl : forall x, ?f (?g x) = x, Hv : ?g ?c = ?d |- _ => "
    "lazymatch goal with _ : f d = c |- _ => fail | _ => assert (f d = c) by (rewrite <- Hv; apply Hl) end end; "
    "do 5 try (match goal with E : ?f ?c = ?d |- context [?f ?c] => rewrite E end); "
    "try (match goal with Hl : forall x, ?g (?f x) = x |- ?g ?c = ?d => replace c with (f d) by "
    "(match goal with Hd : forall y, f y = _ |- _ => rewrite Hd end; lra); apply Hl end)")
_INVERSE_LAW = re.compile(r"forall (\w+) : \S+, \S+ \(\S+ \1\) = \1")
# Induction on a nat variable, both cases by nia (sums with a closed form).
INDUCTION_ARITH = "match goal with n : nat |- _ => induction n; simpl in *; nia end"


def _mod_of(op: str, lemma: str) -> str:  # rewrites (x op y) mod m once, not again inside its result
    return (f"|- context [((?x {op} ?y) mod ?m)%Z] => lazymatch x with (_ mod _)%Z => fail "
            f"| _ => rewrite ({lemma} x y m) by lia end")


# An integer goal about `... mod m` (m at most 7): products and sums taken mod m, then a case for
# each remainder of the variable, each computed.
Z_REMAINDER_CASES = ("rewrite ?Z.pow_2_r in *; repeat match goal with "
                     f"{_mod_of('*', 'Z.mul_mod')} | {_mod_of('+', 'Z.add_mod')} end; "
                     "match goal with |- context [(?a mod ?m)%Z] => is_var a; "
                     "pose proof (Z.mod_pos_bound a m ltac:(lia)); generalize dependent (a mod m); intros r ?; "
                     "assert (r = 0 \\/ r = 1 \\/ r = 2 \\/ r = 3 \\/ r = 4 \\/ r = 5 \\/ r = 6) as hr by lia; "
                     "repeat destruct hr as [hr|hr]; subst r; vm_compute; auto end")


def _witness(mul: str, scope: str) -> str:  # `exists k, L = m * k` (or `k * m`): the witness is L / m
    return f"|- exists k, ?L = ({mul})%{scope} => exists (L / m)%{scope}"


# `m divides f n` (nat or Z, as `exists k` or `divide`) by induction on n, with the quotient L / m as
# the witness in each case: lia reasons about division by a constant, so the step case follows from
# the hypothesis once powers are split (a^(S n) = a * a^n). A premise on n (0 < n) that the
# hypothesis needs is met by a case on n.
DIVISIBILITY_INDUCTION = (
    "intros; try unfold Nat.divide in *; try unfold Z.divide in *; "
    "match goal with n : nat |- _ => induction n as [|n IH] end; "
    "[ | try (match goal with IH : _ -> exists _, _ |- _ => "
    "destruct n; [ clear IH | specialize (IH ltac:(lia)) ] end) ]; "
    "repeat match goal with H : exists _, _ |- _ => destruct H end; "
    f"match goal with {_witness('?m * k', 'nat')} | {_witness('k * ?m', 'nat')} "
    f"| {_witness('?m * k', 'Z')} | {_witness('k * ?m', 'Z')} end; "
    "first [ vm_compute; reflexivity | exfalso; lia "
    "| rewrite ?Nat.pow_add_r, ?Nat.pow_mul_r, ?Nat.pow_succ_r', ?Nat2Z.inj_succ in *; "
    "rewrite ?Z.pow_succ_r in * by lia; nia ]")


# A closed nat equation with large powers: unary nat cannot compute 1999 ^ 2000, so the equation is
# carried to Z (binary), where vm_compute does it; its literals made binary first (rewriting and lia
# are 4x slower on unary ones); mod m taken through sums and products, then each power mod m by
# modular exponentiation (Zpow_facts comes with CoqHammer's Tactics in the prelude).
CLOSED_NAT_IN_Z = ("apply Nat2Z.inj; repeat progress rewrite ?Nat2Z.inj_mod, ?Nat2Z.inj_div, ?Nat2Z.inj_pow, "
                   "?Nat2Z.inj_mul, ?Nat2Z.inj_add; repeat match goal with |- context [Z.of_nat ?n] => "
                   "lazymatch n with S _ => idtac | O => idtac end; let v := eval vm_compute in (Z.of_nat n) in "
                   "change (Z.of_nat n) with v end; "
                   f"repeat match goal with {_mod_of('+', 'Z.add_mod')} | {_mod_of('*', 'Z.mul_mod')} end; "
                   "rewrite <- ?Zpow_facts.Zpow_mod_correct by lia; vm_compute; reflexivity")
# The same after a closed list (seq, map, folds) is unfolded into its sum of terms.
CLOSED_LIST_IN_Z = "cbn [List.seq List.map List.fold_right List.fold_left]; " + CLOSED_NAT_IN_Z


def roots_of_equations(shape: GoalShape) -> str | None:
    """For a hypothesis that is a polynomial equation in one real variable whose roots are all rational
    (a ^ 2 + 4 * a + 6 = 1 / 2 * a ^ 2 + a + 6), one case per root with the variable replaced by it:
    solving the equation, the usual step before the rest is arithmetic. One equation a step."""
    reals = set(shape.variables("R"))
    for name, typ in shape.hypotheses:
        if "," in name or any(op in typ for op in ("<", ">")):
            continue
        solved = equation(typ)
        if solved is None or solved[0] not in reals or max(solved[1], default=0) < 2:
            continue
        var, poly = solved
        roots = rational_roots(poly)
        if roots:
            product = " * ".join(f"({var} - {_real(r)})" for r in roots)
            return (f"assert (Hr : {product} = 0) by nra; clear {name}; "
                    "repeat (apply Rmult_integral in Hr; destruct Hr as [Hr|Hr]); "
                    f"apply Rminus_diag_uniq in Hr; subst {var}; try lra")
    return None


def _atom_at(text: str, i: int) -> tuple[str, int] | None:
    """The numeral or parenthesised expression starting at ``text[i]`` (its inside), and where it ends."""
    if i < len(text) and text[i] == "(":
        depth = 0
        for j in range(i, len(text)):
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            if depth == 0:
                return text[i + 1:j], j + 1
        return None
    num = re.match(r"\d+", text[i:])
    return (num.group(), i + num.end()) if num else None


def _arguments(text: str, head: str, count: int) -> list[tuple[str, ...]]:
    """The first ``count`` arguments of each application of ``head`` whose arguments are atoms."""
    out = []
    for m in re.finditer(rf"\b{head}\s+", text):
        args, i = [], m.end()
        for _ in range(count):
            atom = _atom_at(text, i)
            if atom is None:
                break
            args.append(atom[0])
            i = atom[1] + 1
        if len(args) == count:
            out.append(tuple(args))
    return out


def _real(v: Fraction) -> str:
    return f"({v.numerator})%R" if v.denominator == 1 else f"({v.numerator} / {v.denominator})%R"


def closed_roots(shape: GoalShape) -> str | None:
    """Rewrites each root of a number that is exact to its value, everywhere: sqrt (2 * 8 - 7) is 3,
    Rpower 8 (2/3) is 2 ^ 2. A step of evaluating a function at a point; a root that appears once an
    inner one is gone is rewritten on the next state."""
    steps = []
    for (arg,) in dict.fromkeys(_arguments(shape.text, "sqrt", 1)):
        v = closed_value(arg)
        root = exact_root(v, 2) if v is not None and v >= 0 else None
        if root is not None:
            steps.append(f"rewrite (sqrt_lem_1 ({arg})%R {_real(root)}) in * by lra")
    for base, exponent in dict.fromkeys(_arguments(shape.text, "Rpower", 2)):
        a, b = closed_value(base), closed_value(exponent)
        if a is None or b is None or a <= 0 or b < 0 or b.denominator > 12:
            continue
        r = exact_root(a, b.denominator)
        if r is None or r == 0:
            continue
        p = b.numerator  # Rpower a (p/q) = r ^ p where a = r ^ q, by Rpower_mult and Rpower_pow
        as_power = (f"replace ({base})%R with (Rpower {_real(r)} (INR {b.denominator})) "
                    "by (rewrite Rpower_pow by lra; lra); rewrite Rpower_mult; " if b.denominator > 1 else "")
        steps.append(f"replace (Rpower ({base})%R ({exponent})%R) with ({_real(r)} ^ {p})%R in * by "
                     f"(rewrite <- (Rpower_pow {p} {_real(r)}) by lra; {as_power}f_equal; simpl; lra)")
    return "; ".join(steps) or None


def integer_parts(shape: GoalShape) -> str | None:
    """The integer part of a number or of its square root (`up`, `Int_part`, Coquelicot's `floor`)
    computed and rewritten everywhere, each proved from its defining bounds: floor (9 / 160 * 100) = 5,
    up (sqrt 27) = 6."""
    steps = []
    for head in ("up", "Int_part", "floor"):
        for (arg,) in dict.fromkeys(_arguments(shape.text, head, 1)):
            v, facts, arith = closed_value(arg), "", "lra"
            root = re.fullmatch(r"sqrt\s*(.+)", arg.strip())
            atom = _atom_at(root.group(1), 0) if root else None
            # the square root of a number: floor (sqrt x) = isqrt (floor x); sqrt's argument is one
            # atom, so `sqrt 2 * 3` is (sqrt 2) * 3 and not read here
            if v is None and atom and atom[1] == len(root.group(1)):
                inner = root.group(1)  # a numeral or a parenthesised expression, as written
                x = closed_value(atom[0])
                if x is None or x < 0 or x.numerator.bit_length() > 200:
                    continue
                v = Fraction(math.isqrt(math.floor(x)))
                # its bounds follow from sqrt x * sqrt x = x and 0 <= sqrt x, by nra
                facts = f"pose proof (sqrt_pos {inner}); pose proof (sqrt_sqrt {inner} ltac:(lra)); "
                arith = "nra"
            if v is None:
                continue
            k = math.floor(v)
            if head == "up":  # up x is the least integer above x
                value, proof = k + 1, f"symmetry; apply tech_up; {facts}{arith}"
            elif head == "Int_part":
                value, proof = k, (f"unfold Int_part; enough (up ({arg})%R = ({k + 1})%Z) by lia; "
                                   f"symmetry; apply tech_up; {facts}{arith}")
            else:  # k - 1 < n < k + 1 for the n with IZR n <= x < IZR n + 1
                value, proof = k, (f"unfold floor; destruct (floor_ex ({arg})%R) as [n Hn]; simpl; {facts}"
                                   f"assert (A1 : IZR n < IZR ({k + 1})) by {arith}; "
                                   f"assert (A2 : IZR ({k - 1}) < IZR n) by {arith}; "
                                   "apply lt_IZR in A1; apply lt_IZR in A2; lia")
            e = f"E{len(steps)}"
            steps.append(f"assert ({e} : {head} ({arg})%R = ({value})%Z) by ({proof}); rewrite {e} in *; clear {e}")
    return "; ".join(steps) or None


# Signs that a goal is about numbers lia can read, though no number type is named in it: numerals,
# the other binary number types, and the functions that count.
_NUMBER_SIGNS = re.compile(r"\b(\d+|N|positive|Qc|length|Zlength|cardinal|size|count_occ|Nat\.\w+|N\.\w+|Pos\.\w+)\b"
                           r"|%(N|positive|Q|int|uint)\b")
# The integer deciders; on a goal over abstract types only (a module's t and its setoid ==) they
# fail, so there they are not offered: they would take slots the search's candidate cut leaves to
# the retrieved tactics.
_INTEGER_DECIDERS = ("lia", "nia", "vm_compute; reflexivity", "simpl; lia")

_REAL_FUNCTIONS = ("INR", "IZR", "sum_f_R0", "prod_f_R0", "Rabs", "sqrt", "PI", "ln", "exp", "Rpower",
                   "sin", "cos", "tan", "Rsqr")


def coq_tactics(shape: GoalShape) -> list[str]:
    """Ranked tactics for one goal shape."""
    if shape.introducible:  # introduce first; only cheap closers that introduce by themselves
        return ["intros", "lia", "easy"]
    c = shape.conclusion
    # A goal over nat variables can still be an equation of reals (sum_f_R0 f n = INR n / 2).
    real = (shape.mentions("R") or "%R" in shape.text
            or any(shape.mentions(f) for f in _REAL_FUNCTIONS))
    integer = shape.mentions("Z") or shape.mentions("nat") or "%Z" in shape.text or "%nat" in shape.text
    complex_ = shape.mentions("C") or shape.mentions("Ci") or shape.mentions("RtoC") or "%C" in shape.text
    hyp_types = " ".join(t for _, t in shape.hypotheses)
    numbers = integer or real or complex_ or _NUMBER_SIGNS.search(shape.text) is not None
    if shape.iff:  # split first: automation on both directions at once costs more than it proves
        return ["split", "lia", "easy"] if numbers else ["split", "easy"]  # (held-out library's iffs)
    out: list[str] = []
    roots = closed_roots(shape)
    if roots:  # evaluating an exact root is always progress, and cheap
        out.append(roots)
    parts = integer_parts(shape)
    if parts:  # so is an integer part
        out.append(parts)
    if complex_:
        out.append(COMPLEX_PARTS)
    if not shape.hypotheses and not real and re.search(r"\^|\bmod\b", c):  # before lia, which can take long
        closed_list = any(shape.mentions(w) for w in ("seq", "map", "fold_right", "fold_left"))
        out.append(CLOSED_LIST_IN_Z if closed_list else CLOSED_NAT_IN_Z)
    if integer or not real:
        out += ["lia", "nia"]
    if "Nat.of_num_uint" in shape.text:
        out.append(LARGE_NAT_LITERALS)
    nats = shape.variables("nat")
    if nats:
        out.append(BOUNDED_NAT_CASES)
    if shape.mentions("mod") and shape.mentions("Z"):
        out.append(Z_REMAINDER_CASES)
    if shape.mentions("map"):
        out.append(DEFINITIONS_UNDER_MAP)
    if shape.mentions("fold_right"):
        out.append(CLOSED_FOLDS)
    if nats and (c.startswith("exists") or "divide" in c or re.search(r"\(\S+ \| ", c)):
        out.append(DIVISIBILITY_INDUCTION)
    if real:
        out.append("lra")
        solved = roots_of_equations(shape)
        if solved:
            out.append(solved)
        out += ["field", "nra"]
        if "/" in shape.text:
            out.append(CLEAR_DENOMINATORS)
        if any(t.startswith("forall") and ": R," in t for _, t in shape.hypotheses):
            out.append(IDENTITY_AT_POINTS)
        if shape.mentions("sum_f_R0") and nats:
            out.append(SUM_INDUCTION)
        if shape.mentions("PI") and "Hpi" not in {n for n, _ in shape.hypotheses}:
            out.append(PI_BOUNDS)
    out += ["reflexivity", "ring"]
    if complex_:
        out += ["apply injective_projections; simpl; lra", "apply injective_projections; simpl; ring",
                "apply injective_projections; simpl; field"]
    if _top_level(c, "/\\"):
        out += ["split", "repeat split"]
    if any(re.search(r"\w+ = ", t) for _, t in shape.hypotheses):
        out.append("subst")
    defs = [names for names, t in shape.hypotheses  # definitions given as equations
            if t.startswith("forall") and " = " in t and "," not in names]
    if len(defs) > 1:
        out += [f"rewrite ?{', ?'.join(defs)}", f"rewrite ?{', ?'.join(defs)} in *"]
    if any(_INVERSE_LAW.fullmatch(t) for _, t in shape.hypotheses):
        out.append(INVERSE_FUNCTIONS)
    if real and any("->" in t for names, t in shape.hypotheses if names in defs):
        # a definition by cases: the case whose conditions lra proves
        out.append(f"rewrite ?{', ?'.join(defs)} by lra")
    for name in defs:
        out += [f"rewrite !{name}", f"rewrite !{name} in *"]
    if _top_level(hyp_types, "/\\") or "/\\" in hyp_types:
        out.append("match goal with H : _ /\\ _ |- _ => destruct H end")
    if "exists" in hyp_types:
        out.append("match goal with H : exists _, _ |- _ => destruct H end")
    if "\\/" in hyp_types:
        out.append("match goal with H : _ \\/ _ |- _ => destruct H end")
    if _top_level(c, "\\/"):
        out += ["left", "right"]
    if real:
        out += ["psatz R 2", "field_simplify; lra", "field_simplify; nra"]
    if re.match(r"sqrt\b.* = ", c):  # sqrt x = y from y * y = x, 0 <= x, 0 <= y
        out.append("apply sqrt_lem_1; nra")
    if shape.mentions("sqrt"):
        out.append(SQRT_FACTS)
    if shape.mentions("ln") or shape.mentions("logb") or shape.mentions("Rpower"):
        out.append(LOGARITHMS)
    if shape.mentions("Rabs"):  # every absolute value split into its two cases, then arithmetic
        out.append(RABS_CASES)
    out += ["vm_compute; reflexivity", "simpl; lia", "easy", "sauto", "auto with *", "intuition",
            "simpl in *", "exfalso"]
    if nats:
        out.append(INDUCTION_ARITH)
    for var in nats[:2]:
        out.append(f"induction {var}")
    if c.startswith("exists"):
        out.append("eexists")
    if not numbers:
        out = [t for t in out if t not in _INTEGER_DECIDERS]
    seen: list[str] = []
    for t in out:
        if t not in seen:
            seen.append(t)
    return seen


HAMMER = "hammer"  # the backend's hammer step (backends/coq/hammer.py)


class CoqPortfolio(Generator):
    """Zipf-scored tactics from ``coq_tactics``: a higher rank is a likelier step. ``hammer`` comes last
    on goals that need no introduction (an introducible goal gets it after ``intros``)."""

    name = "portfolio"

    def __init__(self, hammer: bool = True) -> None:
        self.hammer = hammer

    def generate(self, goals: str, n: int) -> list[Candidate]:
        shape = GoalShape.of(goals)
        tactics = coq_tactics(shape)
        if self.hammer and not (shape.introducible or shape.iff):
            tactics = tactics + [HAMMER]
        tactics = tactics[:n]
        total = sum(1.0 / (i + 1) for i in range(len(tactics)))
        return [Candidate(t, math.log(1.0 / (i + 1) / total), expensive=t == HAMMER)
                for i, t in enumerate(tactics)]


class HammerGenerator(Generator):
    """CoqHammer alone (the peer baseline): ``hammer`` on every state."""

    name = "hammer"

    def generate(self, goals: str, n: int) -> list[Candidate]:
        return [Candidate(HAMMER, 0.0, expensive=True)]
