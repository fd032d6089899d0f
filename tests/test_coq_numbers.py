"""Numbers and polynomials read from printed Coq terms (pure Python)."""
from fractions import Fraction as F

import pytest

from prover.models.coq_numbers import closed_value, equation, exact_root, polynomial, rational_roots


@pytest.mark.parametrize("text,value", [
    ("2 * 8 - 7", F(9)), ("4 ^ 2 - 4 * 2 + 1", F(9)), ("-3 / 4", F(-3, 4)), ("(1 / 4)", F(1, 4)),
    ("2 ^ 3 ^ 2", F(512)),  # ^ is right-associative, as in Coq
    ("- 2 ^ 2", F(-4)),  # the power binds tighter than the sign
    ("1 - 2 - 3", F(-4)), ("12 / 2 / 3", F(2)),
])
def test_closed_values(text, value):
    assert closed_value(text) == value


@pytest.mark.parametrize("text", ["x + 1", "f 3", "1 / 0", "2 ^ 100000", "(1 + 2", "1 +", "sqrt 4", "/ 2"])
def test_anything_else_has_no_value(text):
    assert closed_value(text) is None


def test_polynomials_in_one_variable():
    assert polynomial("(a + 1) ^ 2 - 2 * a") == ("a", {2: F(1), 0: F(1)})
    assert polynomial("a * b") is None  # two variables
    assert polynomial("a / a") is None  # division by a variable
    assert polynomial("a ^ 9") is None  # degree over 8
    assert equation("a ^ 2 + 4 * a + 6 = 1 / 2 * a ^ 2 + a + 6") == ("a", {2: F(1, 2), 1: F(3)})
    assert equation("a = b + 1") is None and equation("a <= 2") is None


@pytest.mark.parametrize("coefficients,roots", [
    ({2: F(1), 1: F(-5), 0: F(6)}, [F(2), F(3)]),
    ({2: F(4), 0: F(-9)}, [F(-3, 2), F(3, 2)]),
    ({3: F(1), 2: F(-2), 1: F(1)}, [F(0), F(1), F(1)]),  # a double root counted twice
    ({2: F(1), 0: F(-2)}, None),  # irrational roots
    ({3: F(1), 0: F(-8)}, None),  # one rational root, two complex ones
])
def test_rational_roots(coefficients, roots):
    found = rational_roots(coefficients)
    assert (sorted(found) if found is not None else None) == roots


def test_exact_roots():
    assert exact_root(F(49), 2) == 7 and exact_root(F(27, 8), 3) == F(3, 2)
    assert exact_root(F(10 ** 30), 3) == 10 ** 10
    assert exact_root(F(2), 2) is None and exact_root(F(10 ** 400), 2) is None  # past float range


def test_integer_parts_of_square_roots_read_sqrt_of_one_atom():
    from prover.models.coq_portfolio import GoalShape, integer_parts

    def step(goal):
        return integer_parts(GoalShape.of(f"============================\n{goal}"))
    assert "up (sqrt 27)%R = (6)%Z" in step("up (sqrt 27) = 6%Z")
    assert "up (sqrt (2 * 5))%R = (4)%Z" in step("Int_part (sqrt (2 * 5)) = 3%Z")  # Int_part via up
    assert step("up (sqrt 2 * 3) = 5%Z") is None  # (sqrt 2) * 3, not sqrt 6: no value read
