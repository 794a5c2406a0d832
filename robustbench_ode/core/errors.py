"""The one error type of bad input: a bad suite file, option or argument.

Its message is one line naming the key path and what is allowed; the command line prints it and
exits with code 2, never a traceback.
"""


class SuiteError(ValueError):
    """A bad suite or option: one line naming the key path and what is allowed."""
