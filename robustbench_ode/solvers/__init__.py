"""Solvers: fixed-step Runge-Kutta tableaux and torchdiffeq's adaptive pairs."""

from .base import AdaptiveSolver, FixedStepSolver, Solver
from .catalog import SOLVERS, register_all
from .solution import Solution, SolveStats
from .tableau import ButcherTableau

__all__ = ["SOLVERS", "AdaptiveSolver", "ButcherTableau", "FixedStepSolver", "Solution",
           "SolveStats", "Solver", "register_all"]
