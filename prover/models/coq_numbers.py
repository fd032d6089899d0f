"""Numbers and polynomials read from printed Coq terms: the arithmetic the portfolio does in Python to
write a step with its answer in it (the value of sqrt (2 * 8 - 7), the roots of a quadratic)."""
from __future__ import annotations

import math
import re
from fractions import Fraction

Poly = dict[int, Fraction]  # degree -> coefficient, in one variable


def _poly_mul(p: Poly, q: Poly) -> Poly:
    out: Poly = {}
    for i, a in p.items():
        for j, b in q.items():
            out[i + j] = out.get(i + j, Fraction(0)) + a * b
    return {k: v for k, v in out.items() if v}


def _poly_add(p: Poly, q: Poly, sign: int = 1) -> Poly:  # p + sign * q
    out = dict(p)
    for k, c in q.items():
        out[k] = out.get(k, Fraction(0)) + sign * c
    return {k: v for k, v in out.items() if v}


def polynomial(text: str) -> tuple[str | None, Poly] | None:
    """``text`` as a polynomial with rational coefficients in at most one variable (numerals, one
    name, + - * ^ and division by a number), with that variable's name; None for anything else."""
    tokens = re.findall(r"\d+|[A-Za-z_][\w']*|[-+*/^()]|\S", text)
    pos = 0
    names: set[str] = set()

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def atom() -> Poly:
        t = take()
        if t == "(":
            v = sum_()
            if take() != ")":
                raise ValueError
            return v
        if t == "-":
            return {k: -c for k, c in power().items()}
        if t.isdigit():
            return {0: Fraction(int(t))} if int(t) else {}
        if re.fullmatch(r"[A-Za-z_][\w']*", t):
            names.add(t)
            return {1: Fraction(1)}
        raise ValueError

    def power() -> Poly:
        base = atom()
        if peek() == "^":
            take()
            e = power()
            if set(e) - {0} or e.get(0, 0).denominator != 1 or not 0 <= e.get(0, 0) <= 64:
                raise ValueError
            out: Poly = {0: Fraction(1)}
            for _ in range(int(e.get(0, 0))):
                out = _poly_mul(out, base)
                if max(out, default=0) > 8:
                    raise ValueError
            return out
        return base

    def product() -> Poly:
        v = power()
        while peek() in ("*", "/"):
            if take() == "*":
                v = _poly_mul(v, power())
            else:
                d = power()
                if set(d) != {0}:  # only division by a nonzero number
                    raise ValueError
                v = {k: c / d[0] for k, c in v.items()}
        return v

    def sum_() -> Poly:
        v = product()
        while peek() in ("+", "-"):
            sign = 1 if take() == "+" else -1
            v = _poly_add(v, product(), sign)
        return v

    try:
        v = sum_()
    except (ValueError, IndexError, ZeroDivisionError):
        return None
    if pos != len(tokens) or len(names) > 1:
        return None
    return (names.pop() if names else None), v


def closed_value(text: str) -> Fraction | None:
    """Value of a closed arithmetic expression of numerals (+ - * / ^ and parentheses), else None."""
    parsed = polynomial(text)
    if parsed is None or parsed[0] is not None:
        return None
    return parsed[1].get(0, Fraction(0))


def equation(text: str) -> tuple[str, Poly] | None:
    """``lhs = rhs`` as one polynomial, lhs - rhs, in one variable, with the variable's name."""
    if text.count("=") != 1:
        return None
    lhs, rhs = (polynomial(side) for side in text.split("="))
    if lhs is None or rhs is None or len({lhs[0], rhs[0]} - {None}) != 1:
        return None
    return lhs[0] or rhs[0], _poly_add(lhs[1], rhs[1], -1)


def _divisors(n: int) -> list[int]:
    n = abs(n)
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def rational_roots(p: Poly) -> list[Fraction] | None:
    """All roots of ``p``, with multiplicity, when they are all rational; else None."""
    roots: list[Fraction] = []
    coeffs = [p.get(k, Fraction(0)) for k in range(max(p, default=0) + 1)]  # lowest degree first
    while len(coeffs) > 1 and coeffs[0] == 0:
        roots.append(Fraction(0))
        coeffs = coeffs[1:]
    while len(coeffs) > 1:
        scale = math.lcm(*(c.denominator for c in coeffs))
        ints = [int(c * scale) for c in coeffs]
        if abs(ints[0]) > 10 ** 6 or abs(ints[-1]) > 10 ** 6:
            return None
        root = next((Fraction(sign * a, b) for a in _divisors(ints[0]) for b in _divisors(ints[-1])
                     for sign in (1, -1)
                     if sum(c * Fraction(sign * a, b) ** k for k, c in enumerate(coeffs)) == 0), None)
        if root is None:
            return None
        roots.append(root)
        quotient = [Fraction(0)] * (len(coeffs) - 1)  # synthetic division by (x - root)
        carry = Fraction(0)
        for k in range(len(coeffs) - 1, 0, -1):
            carry = coeffs[k] + carry * root
            quotient[k - 1] = carry
        coeffs = quotient
    return roots


def exact_root(v: Fraction, q: int) -> Fraction | None:
    """The rational q-th root of ``v`` when there is one."""
    if max(v.numerator.bit_length(), v.denominator.bit_length()) > 900:  # past float range
        return None
    num, den = round(v.numerator ** (1 / q)), round(v.denominator ** (1 / q))
    for n in (num - 1, num, num + 1):
        for d in (den - 1, den, den + 1):
            if n >= 0 and d > 0 and Fraction(n, d) ** q == v:
                return Fraction(n, d)
    return None
