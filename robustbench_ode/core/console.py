"""The terminal: how the command line shows the package's log (``logging``, one logger per module
under ``robustbench_ode``).

:func:`configure` gives the package logger one handler: messages below WARNING (status lines,
the run's summary table, ``-v``'s debug detail) go to stdout as they are; warnings and errors go
to stderr as one line, ``robustbench-ode: warning: TEXT``. The verbosity is ``-q`` (-1: warnings
and errors only), the default (0: also the status lines and the summary) or ``-v`` (1: also
debug detail). The streams are looked up when a message is written, not when the handler is made,
so a test's captured stdout (or a redirected one) receives what is written while it is in place.
A library caller that never configures sees warnings through Python's last-resort handler.
"""

from __future__ import annotations

import logging
import sys

PACKAGE = "robustbench_ode"
LEVELS = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}
MAX_WARNING = 299  # a warning is one line of at most this many characters (as an error is)


class TerminalHandler(logging.Handler):
    """Below WARNING to stdout as is; WARNING and above to stderr, one prefixed, clipped line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if record.levelno >= logging.WARNING:
                line = " ".join(text.split())  # one line, whatever the message held
                stream, text = sys.stderr, f"robustbench-ode: {record.levelname.lower()}: {line}"
                text = text[:MAX_WARNING]
            else:
                stream = sys.stdout
            print(text, file=stream, flush=True)
        except BrokenPipeError:
            raise  # the command line ends quietly on a closed pipe (cli.py)
        except Exception:  # noqa: BLE001 - logging's own contract: a handler never raises
            self.handleError(record)


def configure(verbosity: int = 0) -> logging.Logger:
    """Show the package's log on the terminal at ``verbosity`` (module docstring); calling it
    again replaces the handler, never adds a second one."""
    logger = logging.getLogger(PACKAGE)
    for old in [h for h in logger.handlers if isinstance(h, TerminalHandler)]:
        logger.removeHandler(old)
    logger.addHandler(TerminalHandler())
    logger.setLevel(LEVELS[max(-1, min(1, verbosity))])
    return logger
