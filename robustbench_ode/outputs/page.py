"""The HTML both pages share (the report, the leaderboard): one self-contained page, its style
sheet, tables in their own scroll containers with a sticky header, figures with captions.

Laid out to fit any width from a phone's (about 400 px) to a desktop's: the page itself never
scrolls sideways; a table wider than the page scrolls inside its container (its header row stays
in view while the container scrolls down), and images shrink to the page's width.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pandas as pd

from ..core.files import read_bytes, write_atomic

CSS = """
*, *::before, *::after { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 1.5em 1em 3em;
       max-width: 1320px; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2em; overflow-wrap: anywhere; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
p { max-width: 60em; }
.table-wrap { overflow: auto; max-width: 100%; max-height: 80vh; margin: 0.5em 0 1em;
              border: 1px solid #ddd; }
table { border-collapse: separate; border-spacing: 0; font-size: 0.85em; }
th, td { border-right: 1px solid #ddd; border-bottom: 1px solid #ddd; padding: 0.25em 0.5em;
         text-align: right; white-space: nowrap; }
thead th { position: sticky; top: 0; z-index: 1; background: #eef0f3; white-space: normal;
           vertical-align: bottom; min-width: 3.5em; }
tbody tr:nth-child(even) td { background: #fafafa; }
.wrap td { white-space: normal; overflow-wrap: anywhere; text-align: left; }
figure { margin: 1em 0 1.5em; }
img { max-width: 100%; height: auto; display: block; }
figcaption { color: #444; font-size: 0.9em; max-width: 60em; margin-top: 0.4em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.muted { color: #666; }
"""


def _text(v) -> str:
    # Formatted here: nullable ints would print <NA>, and floats want 4 significant digits.
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return ""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def table(df: pd.DataFrame, *, wrap: bool = False, table_id: str | None = None) -> str:
    """``df`` as an HTML table in its own scroll container (``wrap``: long cell texts wrap)."""
    body = df.map(_text).to_html(index=False, border=0, escape=True)
    # long column names (train_solver) may break after an underscore: narrower tables
    body = re.sub(r"<th>([^<]*)</th>", lambda m: "<th>" + m.group(1).replace("_", "_<wbr>") + "</th>",
                  body)
    classes = "table-wrap wrap" if wrap else "table-wrap"
    ident = f' id="{html.escape(table_id)}"' if table_id else ""
    return f'<div class="{classes}"{ident}>{body}</div>'


def figure_html(path: Path, caption: str) -> str:
    """A PNG embedded as base64, with its caption under it."""
    data = base64.b64encode(read_bytes(path, 64 << 20, "figure")).decode("ascii")
    return (f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def write_page(path: Path, title: str, parts: list[str]) -> Path:
    """The page, written then renamed (a kill leaves the old page or the new one)."""
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
    return write_atomic(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
