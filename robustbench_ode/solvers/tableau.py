"""Explicit Runge-Kutta methods as data: a Butcher tableau and an order."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class ButcherTableau:
    """``c`` nodes, ``a`` the strictly lower-triangular coefficients (row i has i entries), ``b`` weights."""

    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]

    def __post_init__(self) -> None:
        s = len(self.b)
        if len(self.c) != s or len(self.a) != s:
            raise ValueError("c, a and b must have one entry per stage")
        for i, row in enumerate(self.a):
            if len(row) != i:
                raise ValueError(f"row {i} of a must have {i} entries (explicit method)")
            # Consistency (row sums equal the nodes) is what makes non-autonomous f right.
            if abs(sum(row) - self.c[i]) > 1e-12:
                raise ValueError(f"row {i} of a does not sum to c[{i}]")
        if abs(sum(self.b) - 1.0) > 1e-12:
            raise ValueError("weights b must sum to 1")

    @property
    def stages(self) -> int:
        return len(self.b)


def _t(c, a, b) -> ButcherTableau:
    f = lambda xs: tuple(float(Fraction(x)) for x in xs)  # noqa: E731 - exact fractions, then floats
    return ButcherTableau(f(c), tuple(f(row) for row in a), f(b))


EULER = _t(["0"], [[]], ["1"])
MIDPOINT = _t(["0", "1/2"], [[], ["1/2"]], ["0", "1"])
# Heun's method (explicit trapezoidal rule), order 2.
HEUN = _t(["0", "1"], [[], ["1"]], ["1/2", "1/2"])
# The classical Runge-Kutta method of order 4.
RK4 = _t(
    ["0", "1/2", "1/2", "1"],
    [[], ["1/2"], ["0", "1/2"], ["0", "0", "1"]],
    ["1/6", "1/3", "1/3", "1/6"],
)
# Kutta's 3/8 rule, order 4: what torchdiffeq calls "rk4".
RK4_38 = _t(
    ["0", "1/3", "2/3", "1"],
    [[], ["1/3"], ["-1/3", "1"], ["1", "-1", "1"]],
    ["1/8", "3/8", "3/8", "1/8"],
)
