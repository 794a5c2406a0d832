import os
import sys

# ``python -m`` puts the current directory first on sys.path: a module named there (os.py, a
# factory module of a suite from someone else) would shadow or join the installed ones. The
# package never searches it implicitly (docs/reliability.md, "Security model"); PYTHONPATH still
# adds it for whoever asks.
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from .cli import main  # noqa: E402 - after the path is cleaned

sys.exit(main())
