"""Solvers: fixed-step Runge-Kutta tableaux, torchdiffeq's adaptive pairs and the exact reference.

Importable without torch (the integrators load on the first solve).
"""

from .base import Kind, Solver, VectorField
from .catalog import SOLVERS, register_all
from .solution import Solution, SolveStats
from .solve import solve
from .tableau import ButcherTableau

__all__ = ["SOLVERS", "ButcherTableau", "Kind", "Solution", "SolveStats", "Solver", "VectorField",
           "register_all", "solve"]
