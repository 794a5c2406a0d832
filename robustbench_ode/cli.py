"""Command line of robustbench_ode: ``python -m robustbench_ode COMMAND`` (alias ``robustbench-ode``).

Bad input (a bad suite file, an unknown name, a bad option, a file that cannot be read or
written) prints one line of at most :data:`MAX_LINE` characters naming the problem and exits
with code 2, never a traceback; a closed stdout pipe (``compare A B | head``) ends quietly with
code 141; Ctrl-C, SIGTERM and SIGHUP end a command with one line and code 128 + the signal's
number (:mod:`.core.signals`). ``--help``, ``list`` and ``validate`` never import torch (they
answer in well under a second); the other commands load their handlers from
:mod:`robustbench_ode.commands`.
"""

from __future__ import annotations

import argparse
import os
import sys

# These imports are torch-free: the registries, the suite configs and the test grid.
from .config import load_suite  # (with --set overrides: config/overrides.py)
from .core import imports
from .core.console import configure
from .core.context import DEVICES, on_gpu
from .core.errors import SuiteError
from .core.files import os_error, show_path
from .core.parameters import parameter_items
from .core.preview import clip
from .core.registry import load
from .core.signals import exit_code, signal_of, stopping
from .core.version import __version__
from .datasets import DATASETS
from .harness.cost import admit
from .models import MODELS
from .run.threads import MAX_THREADS
from .solvers import SOLVERS

EXIT_BAD_INPUT = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a program the signal ended
MAX_LINE = 300  # an error is one line of at most this many characters (the tail is cut)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        self.exit(EXIT_BAD_INPUT, clip(f"{self.prog}: error: {message}", MAX_LINE - 1) + "\n")


# ``list solver`` and ``list solvers`` name the same axis
AXES = {"solvers": SOLVERS, "models": MODELS, "datasets": DATASETS}
AXIS_NOUNS = {**{a: a for a in AXES}, **{a.removesuffix("s"): a for a in AXES}}
LIST_WIDTH = 100  # parameter lines wrap at this many columns


def _packed(items: list[str], indent: int) -> str:
    """Items joined by "; " into lines of at most LIST_WIDTH columns, never splitting an item
    (textwrap would break "width: int = 32" at its spaces); continuation lines indented 2 more."""
    lines, line = [], ""
    for item in items:
        if line and indent + 2 + len(line) + 2 + len(item) > LIST_WIDTH:
            lines.append(line + ";")
            line = ""
        line = f"{line}; {item}" if line else item
    lines.append(line)
    return "\n".join(" " * (indent + 2 * (i > 0)) + text for i, text in enumerate(lines))


def _grid_keys(solver) -> list[str]:
    """What a suite's train and test entries give this solver (config/suite.py's entries)."""
    if solver.gridless:
        return [f"test only, no grid: {{solver: {solver.name}}}"]
    if not solver.adaptive:
        return ["train: steps", "test: steps | step_factors"]
    control = [f"control: {' | '.join(solver.controls)}"] if len(solver.controls) > 1 else []
    return ["train: tol", "test: tol | tol_factors | steps (a fixed grid)", *control]


def _list(args: argparse.Namespace) -> int:
    """Each entry with its description, then what a suite gives it: a model's or dataset's
    parameters (name: type = default, from the entry's params model), a solver's grid keys."""
    for axis in [AXIS_NOUNS[args.axis]] if args.axis else list(AXES):
        entries = AXES[axis].entries(args.pattern)
        width = max((len(e.name) for e in entries), default=0)
        if axis != "solvers":
            print(f"{axis} (name, description; then its parameters, name: type = default):")
            for e in entries:
                print(f"  {e.name:<{width}}  {e.description}")
                print(_packed(parameter_items(e.meta.params), width + 4))
            continue
        # solvers: a backend column (who implements the method), and whether it is installed here
        backends = [e.meta.backend for e in entries]
        bw = max((len(b) for b in backends), default=0)
        print(f"solvers ({'name':<{max(4, width - 7)}}  {'backend':<{bw}}  description; then a suite "
              "entry's keys):")
        for e, backend in zip(entries, backends):
            missing = " (not installed here)" if e.meta.missing() else ""
            print(f"  {e.name:<{width}}  {backend:<{bw}}  {e.description}{missing}")
            print(_packed(_grid_keys(e.meta), width + 4))
    return 0


def _validate(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite, args.overrides)
    line = admit(suite, args.force, show_path(args.suite), gpu=on_gpu(args.device))
    with_sets = f" (with {len(args.overrides)} --set)" if args.overrides else ""
    print(f"{show_path(args.suite)}{with_sets}: ok: suite {suite.name!r}, {line}")
    return 0


SET_HELP = ("change the suite before validation, e.g. --set training.iterations=500, --set model.0.width=16, "
            "--set train.seeds=[0,1] (VALUE read as YAML; repeatable)")


ALLOW_HELP = ("let the suite name factories in MODULE (and its submodules) by import path, "
              "MODULE:factory; importing runs the module's code, so nothing else is imported (repeatable)")


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"{text}: must be a finite number >= 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    if value > MAX_THREADS:  # a thread or worker count: 10**20 would overflow deep inside torch
        raise argparse.ArgumentTypeError(f"{clip(text, 30)}: at most {MAX_THREADS}")
    return value


def _add_verbosity(parser: argparse.ArgumentParser, default) -> None:
    """-q / -v (core/console.py): before the command (the default 0) or after it (SUPPRESS: the
    main parser's value stands unless given there)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1, default=default,
                       help="only warnings and errors (no status lines, no summary table, no progress bars)")
    group.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1, default=default,
                       help="also debug detail (what the run plans, each finished cell)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="robustbench-ode", description=__doc__.splitlines()[0])
    _add_verbosity(parser, 0)
    # the installed package's metadata version (core/version.py: pyproject.toml's, the one literal)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("list", help="list registered solvers, models or datasets with their parameters")
    p.add_argument("axis", nargs="?", choices=list(AXIS_NOUNS), metavar="{solvers,models,datasets}",
                   help="one axis (singular or plural); default all three")
    p.add_argument("--pattern", default="*", help="glob filter on names, e.g. 'rk*'")
    p.set_defaults(func=_list)
    p = sub.add_parser("validate", help="check a suite file and estimate its cost without running it")
    p.add_argument("suite")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help=SET_HELP)
    p.add_argument("--allow-import", action="append", default=[], metavar="MODULE", help=ALLOW_HELP)
    p.add_argument("--device", default="cpu", choices=DEVICES,
                   help="where it will run (as run --device): the cost limits are a CPU's; on CUDA "
                        "they are skipped")
    p.add_argument("--force", action="store_true", help="accept a suite beyond the cost limit")
    p.set_defaults(func=_validate)
    p = sub.add_parser("run", help="train and test every cell of a suite")
    p.add_argument("suite")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help=SET_HELP + "; suite.yaml in the run folder records the suite as run")
    p.add_argument("--allow-import", action="append", default=[], metavar="MODULE", help=ALLOW_HELP)
    p.add_argument("--out", help="output directory (default results/<suite name>)")
    p.add_argument("--device", default="cpu", choices=DEVICES,
                   help="cpu, cuda, or auto: CUDA where it is available")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (default: shown where stderr is a terminal)")
    p.add_argument("--data-root", help="image data folder (default $ROBUSTBENCH_ODE_DATA or ./data)")
    p.add_argument("--fresh", action="store_true", help="recompute every cell, ignoring stored ones")
    p.add_argument("--update", action="store_true",
                   help="move an --out folder holding another version of the suite to this one (stored "
                        "cells are kept, its previous tables moved to DIR/previous/<time>/)")
    p.add_argument("--force", action="store_true", help="run a suite beyond the cost limit")
    p.add_argument("--strict", action="store_true", help="exit 1 if any cell or test row failed")
    p.add_argument("--executor", default="local",  # an EXECUTORS entry (run/executors.py: torch)
                   help="where cells run: local (the default, in this process), process, ray, or any "
                        "other entry of run/executors.py EXECUTORS")
    p.add_argument("--workers", type=_positive_int, default=1,
                   help="parallel cells: a local process pool, or the CPUs of a local Ray instance")
    p.add_argument("--address", help="Ray cluster to join: 'auto' or HOST:PORT (--executor ray)")
    p.add_argument("--gpus-per-cell", type=_non_negative, default=0.0, help="GPUs each Ray task declares")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="intra-op threads per worker (default: $OMP_NUM_THREADS, else the cores / workers)")
    p.set_defaults(func="robustbench_ode.commands:run", resumes=True)
    p = sub.add_parser("xor-fan", help="run a suite, then write trajectories and the fan pictures")
    p.add_argument("suite", nargs="?", default="suites/xor_fan.yaml")
    p.add_argument("--out", help="output directory (default results/<suite name>)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (default: shown where stderr is a terminal)")
    p.add_argument("--update", action="store_true",
                   help="move an --out folder holding another version of the suite to this one")
    p.add_argument("--force", action="store_true", help="run a suite beyond the cost limit")
    p.set_defaults(func="robustbench_ode.commands:xor_fan", resumes=True)
    _add_analysis(sub)
    for command in sub.choices.values():
        _add_verbosity(command, argparse.SUPPRESS)
    return parser


def _add_analysis(sub) -> None:
    """The subcommands that read finished runs: report, verify, migrate, leaderboard, regress,
    compare, critical."""
    p = sub.add_parser("report", help="write DIR/report.html (and summary.csv) from a run")
    p.add_argument("dir")
    p.add_argument("--out", help="where the report goes (default DIR; another folder re-reports a "
                                 "read-only run)")
    p.set_defaults(func="robustbench_ode.commands:report")
    p = sub.add_parser("verify", help="check a run folder's stored cells against their manifests and "
                                      "its owner record; exit 1 listing damaged and missing ones")
    p.add_argument("dir")
    p.set_defaults(func="robustbench_ode.commands:verify")
    p = sub.add_parser("migrate", help="once, for a store written before manifests: check each cell "
                                       "without one and give it one; exit 1 listing those that fail")
    p.add_argument("dir")
    p.set_defaults(func="robustbench_ode.commands:migrate")
    p = sub.add_parser("leaderboard", help="rank trained configurations of runs, per dataset")
    p.add_argument("dirs", nargs="+")
    p.add_argument("--out", default=".", help="where leaderboard.md, .csv and .html go (default .)")
    p.set_defaults(func="robustbench_ode.commands:leaderboard")
    p = sub.add_parser("regress", help="exit 1 listing regressions of a run against a baseline")
    p.add_argument("dir")
    p.add_argument("--baseline", required=True, help="a results.csv to compare with")
    p.add_argument("--acc-tol", type=_non_negative, default=0.02, help="allowed accuracy drop (absolute)")
    p.add_argument("--nfe-tol", type=_non_negative, default=0.10, help="allowed NFE rise (relative)")
    p.add_argument("--mse-tol", type=_non_negative, default=0.10,
                   help="allowed trajectory-MSE rise (relative; time-series suites)")
    p.set_defaults(func="robustbench_ode.commands:regress")
    p = sub.add_parser("compare", help="print two runs' results side by side")
    p.add_argument("a")
    p.add_argument("b")
    p.set_defaults(func="robustbench_ode.commands:compare")
    p = sub.add_parser("critical", help="critical step count from a sweep's results.csv")
    p.add_argument("results", help="results.csv of a suite that sweeps train step counts")
    p.add_argument("--adapted", help="results.csv of an adapted run to compare with it")
    p.add_argument("--tol", type=_non_negative, default=0.02, help="allowed accuracy drop (default 0.02)")
    p.set_defaults(func="robustbench_ode.commands:critical")


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a bad option (2, one line already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    configure(args.verbosity)  # the package's log on the terminal (core/console.py)
    try:
        handler = load(args.func) if isinstance(args.func, str) else args.func
        imports.allow(*getattr(args, "allow_import", ()))  # core/imports.py: nothing else is imported
        with stopping():  # SIGTERM / SIGHUP end a command as Ctrl-C does (core/signals.py)
            return handler(args)
    except SuiteError as exc:
        return _fail(str(exc))
    except BrokenPipeError:  # `compare A B | head`: the reader left; end quietly, as cat does
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # a file the user named or a run writes: missing, read-only, disk full
        return _fail(os_error(exc))
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP inside stopping()
        kept = "; finished cells and checkpoints are kept: the same command resumes" \
            if getattr(args, "resumes", False) else ""
        print(f"robustbench-ode: stopped by {signal_of(exc).name}{kept}", file=sys.stderr)
        return exit_code(exc)


def _fail(message: str) -> int:
    print(clip(f"robustbench-ode: error: {message}", MAX_LINE - 1), file=sys.stderr)
    return EXIT_BAD_INPUT


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would print "Exception ignored ... BrokenPipeError":
    # point the real stdout at /dev/null first (only the real one: never a test's capture).
    if sys.stdout is not sys.__stdout__:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
