"""The report, the summary table and the leaderboard of a real (smoke) run; the figures' axes; the
report and the leaderboard page rendered in headless Chromium at a desktop and a phone's width."""

import html
import json
import os
import re
import shutil
import subprocess

import matplotlib.colors
import matplotlib.image
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from robustbench_ode.cli import main
from robustbench_ode.outputs.figures import FIGURES, Sources
from robustbench_ode.outputs.figures.style import ACCURACY_RANGE
from robustbench_ode.outputs.summary import ID_COLUMNS
from robustbench_ode.outputs.tables import read_table, read_training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def run_dir(request, tmp_path_factory):
    """The session's smoke run when conftest provides one, else a run of its own."""
    try:
        return request.getfixturevalue("smoke_run")
    except pytest.FixtureLookupError:
        out = tmp_path_factory.mktemp("smoke_report")
        assert main(["run", os.path.join(ROOT, "suites", "smoke.yaml"), "--out", str(out),
                     "--no-progress"]) == 0
        return out


def test_run_writes_report_and_summary(run_dir):
    page = (run_dir / "report.html").read_text()
    assert page.count("<table") >= 2  # summary and environment (failed cells: none here)
    images = re.findall(r'<img [^>]*src="([^"]*)"', page)
    assert len(images) >= 3 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "src=\"http" not in page and "href=" not in page  # self-contained
    # every figure with its caption under it
    figures = re.findall(r"<figure>(.*?)</figure>", page, re.S)
    assert len(figures) == len(images)
    captions = [html.unescape(c) for f in figures for c in re.findall(r"<figcaption>(.*?)</figcaption>", f)]
    assert len(captions) == len(figures) and set(captions) <= {f.caption for f in FIGURES}
    assert next(f.caption for f in FIGURES if f.file == "accuracy_vs_steps.png") in captions
    results = pd.read_csv(run_dir / "results.csv")
    summary = pd.read_csv(run_dir / "summary.csv")
    assert len(summary) == results["cell"].nunique()
    for col in [*ID_COLUMNS, "acc_train", "acc_ref", "ode_gap", "worst_drop", "nfe_train",
                "nfe_ref", "drift", "n_failed"]:
        assert col in summary.columns
    assert summary["acc_ref"].notna().all() and summary["drift"].notna().all()
    assert (results.groupby("cell")["is_reference"].sum() == 1).all()
    # the legend names the reference solve once, by solver and tolerance
    ref = results[results["is_reference"].astype(bool)].iloc[0]
    assert f"the reference solve is {ref['test_solver']} at tol {ref['test_tol']:g}." in page
    assert "the reference solve is the reference solve" not in page


def test_report_command_rebuilds_the_page(run_dir, capsys):
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").stat().st_size > 10_000
    assert "report.html" in capsys.readouterr().out


def test_a_compressed_training_log_is_read_and_a_damaged_one_is_one_line(run_dir, tmp_path, capsys):
    """A committed run keeps a large log as training.csv.gz only: the report draws the same
    training curves from it; a cut-off one is a one-line error naming it (exit 2)."""
    import gzip

    from robustbench_ode.outputs.figures.training import training_curves

    plain, packed = tmp_path / "plain", tmp_path / "packed"
    shutil.copytree(run_dir, packed, ignore=shutil.ignore_patterns("cells", "checkpoints", "*.png"))
    log = packed / "training.csv"
    (packed / "training.csv.gz").write_bytes(gzip.compress(log.read_bytes()))
    log.unlink()
    assert main(["report", str(packed)]) == 0
    training_curves(read_training(run_dir / "training.csv"), plain.with_suffix(".png"))
    drawn = matplotlib.image.imread(packed / "training_curves.png")
    assert drawn.shape == matplotlib.image.imread(plain.with_suffix(".png")).shape
    data = (packed / "training.csv.gz").read_bytes()
    (packed / "training.csv.gz").write_bytes(data[: len(data) // 2])
    capsys.readouterr()
    assert main(["report", str(packed)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "training.csv.gz" in err and "gzip" in err and "Traceback" not in err


def test_report_of_missing_dir_is_bad_input(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in capsys.readouterr().err


def test_leaderboard_ranks_by_reference_accuracy(run_dir, tmp_path, capsys):
    assert main(["leaderboard", str(run_dir), "--out", str(tmp_path)]) == 0
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    md = (tmp_path / "leaderboard.md").read_text()
    assert md.startswith("## sphere2") and md.count("\n| ") == len(board) + 1
    page = (tmp_path / "leaderboard.html").read_text()
    assert page.count("<table") == board["dataset"].nunique() and "<thead>" in page
    assert page.count("<tr") == len(board) + board["dataset"].nunique()  # header + rows
    assert "src=\"http" not in page and "href=" not in page  # self-contained
    assert "leaderboard.html" in capsys.readouterr().out
    assert list(board["rank"]) == list(range(1, len(board) + 1))
    assert board["acc_ref"].is_monotonic_decreasing
    assert len(board) == pd.read_csv(run_dir / "summary.csv")["cell"].nunique()


def drawn_figures(run_dir, tmp_path, monkeypatch):
    """Every figure of the report drawn from the run's tables, as matplotlib figures (caught at
    plt.close), by file name."""
    caught = []
    monkeypatch.setattr(plt, "close", lambda fig=None: caught.append(fig))
    sources = Sources(read_table(run_dir / "results.csv"), read_training(run_dir / "training.csv"))
    out = {}
    for figure in FIGURES:
        if figure.draw(sources, tmp_path / figure.file) is not None:
            out[figure.file] = caught[-1]
    return out


def chance_lines(ax):
    return [ln for ln in ax.get_lines() if ln.get_label().startswith("chance")]


def test_accuracy_axes_are_fixed_and_show_chance(run_dir, tmp_path, monkeypatch):
    figs = drawn_figures(run_dir, tmp_path, monkeypatch)
    chance = pd.read_csv(run_dir / "results.csv")["chance"].max()
    for name in ("accuracy_vs_steps.png", "work_precision.png"):
        axes = [ax for ax in figs[name].axes if ax.get_visible()]
        assert len(axes) >= 3
        for ax in axes:
            assert ax.get_ylim() == pytest.approx(ACCURACY_RANGE)  # [0, 1], not zoomed on noise
            level = chance if name == "accuracy_vs_steps.png" else 1 - chance  # error = 1 - acc.
            assert [ln.get_ydata()[0] for ln in chance_lines(ax)] == pytest.approx([level])
    curves = {ax.get_title(): ax for ax in figs["training_curves.png"].axes}
    assert "accuracy on the training batch" in curves and "loss on the training batch" in curves
    acc = curves["accuracy on the training batch"]
    assert acc.get_ylim() == pytest.approx(ACCURACY_RANGE) and len(chance_lines(acc)) == 1
    # coinciding lines stay visible: every line of a panel its own marker and size / line style
    for ax in figs["accuracy_vs_steps.png"].axes:
        drawn = [ln for ln in ax.get_lines() if not ln.get_label().startswith(("chance", "_"))]
        styles = [(ln.get_marker(), ln.get_markersize()) for ln in drawn]
        assert len(set(styles)) == len(styles)
    drawn = [ln for ln in acc.get_lines() if not ln.get_label().startswith(("chance", "_"))]
    assert len({(ln.get_linestyle(), ln.get_linewidth()) for ln in drawn}) == len(drawn) >= 2


def test_a_train_configuration_has_one_colour_in_every_figure(run_dir, tmp_path, monkeypatch):
    """The report's figures share one palette fixed by the suite's order: a train configuration
    drawn in two figures has the same colour in both."""
    figs = drawn_figures(run_dir, tmp_path, monkeypatch)
    seen: dict[str, dict[str, tuple]] = {}
    for name in ("accuracy_vs_steps.png", "training_curves.png", "nfe_over_training.png"):
        for ax in figs.get(name, plt.figure()).axes:
            for ln in ax.get_lines():
                if not ln.get_label().startswith(("chance", "_")):
                    colour = tuple(round(v, 6) for v in matplotlib.colors.to_rgb(ln.get_color()))
                    seen.setdefault(ln.get_label(), {}).setdefault(name, colour)
    shared = {label: by_fig for label, by_fig in seen.items() if len(by_fig) >= 2}
    assert len(shared) >= 2, seen  # the smoke run's configurations appear in several figures
    for label, by_fig in shared.items():
        assert len(set(by_fig.values())) == 1, (label, by_fig)


def _many_configurations(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """The table's Euler-trained rows as ``n`` train configurations of five seeds each (their
    accuracies shifted apart)."""
    base = table[(table["train_solver"] == "euler") & (table["train_steps"] == 2)]
    parts = []
    for i in range(n):
        for seed, shift in enumerate((0.0, -0.1, -0.03, -0.07, -0.2)):
            part = base.assign(train_steps=i + 1, seed=seed)
            if "accuracy" in part.columns:
                part = part.assign(accuracy=part["accuracy"] + shift)
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_seed_bands_are_the_seeds_range_reproducible_and_many_configurations_are_small_multiples(
        run_dir, tmp_path, monkeypatch):
    """The band around a configuration's mean spans its seeds' lowest to highest value, the same
    on every draw (a bootstrapped band resamples at random), and 26 configurations are drawn as
    rows of small multiples, each panel with at most MAX_LINES of them and each row as tall as
    the two-configuration figure's only row (the legend in columns never squashes the panels)."""
    from robustbench_ode.outputs.figures.layout import MAX_LINES
    from robustbench_ode.outputs.figures.results import accuracy_vs_test_steps
    from robustbench_ode.outputs.figures.training import training_curves

    results, training = read_table(run_dir / "results.csv"), read_training(run_dir / "training.csv")
    heights, rows = {}, {}
    for n in (2, 26):
        many = _many_configurations(results, n)
        for name, draw, table in (("accuracy", accuracy_vs_test_steps, many),
                                  ("training", training_curves, _many_configurations(training, n))):
            first, second = tmp_path / f"{name}{n}a.png", tmp_path / f"{name}{n}b.png"
            caught = []
            with monkeypatch.context() as m:
                m.setattr(plt, "close", lambda fig=None, caught=caught: caught.append(fig))
                draw(table, first)
            fig = caught[-1]
            panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_lines()]
            drawn = [[ln for ln in ax.get_lines() if not ln.get_label().startswith(("chance", "_"))]
                     for ax in panels]
            assert all(len(lines) <= MAX_LINES for lines in drawn), [len(x) for x in drawn]
            rows[name, n] = len({ax.get_subplotspec().rowspan.start for ax in fig.axes})
            if n == 26:
                draw(table, second)
                assert first.read_bytes() == second.read_bytes(), f"{name}: two draws differ"
            heights[name, n] = matplotlib.image.imread(first).shape[0]
    for name in ("accuracy", "training"):
        assert rows[name, 2] == 1 and rows[name, 26] >= 3, rows
        assert heights[name, 26] <= 1.1 * rows[name, 26] * heights[name, 2], heights

    caught = []
    monkeypatch.setattr(plt, "close", lambda fig=None: caught.append(fig))
    many = _many_configurations(results, 2)
    accuracy_vs_test_steps(many, tmp_path / "caught.png")
    ax = caught[-1].axes[0]  # the Euler panel
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "euler 1")
    rows = many[(many["train_steps"] == 1) & (many["test_solver"] == "euler") & (many["status"] == "ok")]
    by_step = rows.groupby("test_steps")["accuracy"]
    assert list(line.get_ydata()) == pytest.approx(list(by_step.mean()))
    colour = matplotlib.colors.to_rgb(line.get_color())
    (band,) = [c for c in ax.collections if tuple(c.get_facecolor()[0][:3]) == pytest.approx(colour)]
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(by_step.min().min()) and ys.max() == pytest.approx(by_step.max().max())


def screenshot(html_path, png_path, tmp_path, height=2400, width=1280):
    cmd = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}",
           f"--screenshot={png_path}", f"--window-size={width},{height}", f"file://{html_path}"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return matplotlib.image.imread(png_path)


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]
WIDTHS = (1400, 420)  # a desktop window and a phone
LEGIBLE_WIDTHS = (1400, 800)  # page widths at which a figure's tick labels must stay legible
MIN_TICK_PX = 9  # smallest tick label height (CSS px) we call legible
# Measures a page laid out in iframes of the given widths (a headless window cannot be narrower
# than 500 px; an iframe can): the page's width and scroll width, each table container and its
# last column header, each image.
_MEASURE = """
function measure(win) {
  const doc = win.document, root = doc.documentElement;
  const out = {inner: win.innerWidth, client: root.clientWidth, scroll: root.scrollWidth,
               tables: [], images: []};
  for (const wrap of doc.querySelectorAll(".table-wrap")) {
    const ths = wrap.querySelectorAll("thead th"), last = ths[ths.length - 1];
    const w = wrap.getBoundingClientRect(), l = last.getBoundingClientRect();
    out.tables.push({id: wrap.id, right: w.right, client: wrap.clientWidth, scroll: wrap.scrollWidth,
                     last_right: l.right - w.left + wrap.scrollLeft, last: last.textContent,
                     overflow: win.getComputedStyle(wrap).overflowX,
                     header: win.getComputedStyle(ths[0]).position});
  }
  for (const img of doc.images) {
    const r = img.getBoundingClientRect();
    out.images.push({natural: img.naturalWidth, width: r.width, right: r.right});
  }
  return out;
}
window.addEventListener("load", () => {
  const got = [...document.querySelectorAll("iframe")].map(f => measure(f.contentWindow));
  const pre = document.createElement("pre");
  pre.id = "layout";
  pre.textContent = JSON.stringify(got);
  document.body.appendChild(pre);
});
"""


def layout(html_path, tmp_path, widths=WIDTHS):
    """The page's measurements at each of ``widths``, from one headless Chromium run."""
    page = html_path.read_text()
    frames = "".join(f'<iframe style="display:block;border:0;width:{w}px;height:900px" '
                     f'srcdoc="{html.escape(page)}"></iframe>' for w in widths)
    harness = tmp_path / f"{html_path.stem}_layout.html"
    harness.write_text(f"<!DOCTYPE html><html><body style=\"margin:0\">{frames}"
                       f"<script>{_MEASURE}</script></body></html>")
    cmd = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-layout'}",
           f"--window-size={max(WIDTHS) + 100},2000", "--virtual-time-budget=10000", "--dump-dom",
           f"file://{harness}"]
    dom = subprocess.run(cmd, check=True, capture_output=True, timeout=120, text=True).stdout
    found = re.search(r'<pre id="layout">([^<]*)</pre>', dom)
    assert found, "layout script did not run"
    return dict(zip(widths, json.loads(html.unescape(found.group(1)))))


def assert_fits(measured, *, tables, images, fit_at_desktop=()):
    """No horizontal page overflow at any width; every table in its own scroll container with a
    sticky header and its last column header reachable inside it; images drawn within the page."""
    for width, m in measured.items():
        assert m["inner"] == width
        assert m["scroll"] == m["client"] == width, f"page overflows sideways at {width} px"
        assert {t["id"] for t in m["tables"]} >= set(tables)
        for t in m["tables"]:
            assert t["overflow"] in ("auto", "scroll") and t["header"] == "sticky"
            assert t["right"] <= width  # the container itself fits the page
            assert t["last_right"] <= t["scroll"] + 2, f"{t['id']}: last column {t['last']!r} cut off"
            if width == max(WIDTHS) and t["id"] in fit_at_desktop:
                assert t["scroll"] <= t["client"] + 1, f"{t['id']} needs scrolling at {width} px"
        assert len(m["images"]) >= images
        assert all(i["natural"] > 0 and 0 < i["width"] and i["right"] <= width for i in m["images"])


def assert_rendered(pixels):
    gray = pixels[..., :3].mean(-1)
    assert pixels.shape[0] >= 1000 and gray.std() > 0.05  # not a blank page
    assert (gray < 0.9).mean() > 0.02  # a fair share of the page is drawn


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    for width in WIDTHS:
        assert_rendered(screenshot(run_dir / "report.html", tmp_path / f"report_{width}.png",
                                   tmp_path, width=width))
    # every figure the page holds is drawn, the diagnostics' figures ("Why models break") among them
    page = html.unescape((run_dir / "report.html").read_text())
    diagnostics = [f for f in FIGURES if f.file.startswith("diagnostics")]
    assert diagnostics and all(f.caption in page for f in diagnostics)
    measured = layout(run_dir / "report.html", tmp_path, (*WIDTHS, *LEGIBLE_WIDTHS[1:]))
    assert_fits({w: measured[w] for w in WIDTHS}, tables=["summary", "environment"],
                images=page.count("<img "), fit_at_desktop=["summary"])
    # legible ticks: a tick label's height on the page, FONT_PT at the PNG's dpi scaled by the
    # displayed / natural width, at a desktop width and at 800 px
    from robustbench_ode.outputs.figures.style import FONT_PT
    for width in LEGIBLE_WIDTHS:
        for image in measured[width]["images"]:
            tick_px = FONT_PT / 72 * 110 * image["width"] / image["natural"]
            assert tick_px >= MIN_TICK_PX, (width, image)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_leaderboard_page_renders_in_headless_chromium(run_dir, tmp_path):
    assert main(["leaderboard", str(run_dir), str(run_dir), "--out", str(tmp_path)]) == 0
    page = tmp_path / "leaderboard.html"
    for width in WIDTHS:
        pixels = screenshot(page, tmp_path / f"leaderboard_{width}.png", tmp_path, 900, width)
        assert pixels[..., :3].mean(-1).std() > 0.05  # not blank
    assert_fits(layout(page, tmp_path), tables=["board-sphere2"], images=0,
                fit_at_desktop=["board-sphere2"])


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_quick_suite_report_renders_in_headless_chromium(tmp_path):
    out = tmp_path / "quick"
    assert main(["run", os.path.join(ROOT, "suites", "quick.yaml"), "--out", str(out),
                 "--no-progress"]) == 0
    page = (out / "report.html").read_text()
    assert page.count("<img") >= 4 and "<table" in page
    assert_rendered(screenshot(out / "report.html", tmp_path / "quick.png", tmp_path, 3200))


def test_captions_match_the_table_and_the_environment_says_which_invocation(run_dir, tmp_path):
    """The summary caption's rule holds on the committed paper-scale table (ode_gap near 0 for the
    fine-step models, worst_drop large for all of them, so it is not called "near 0"), and the
    environment block names the invocation it describes and the cells it did not compute."""
    from robustbench_ode.outputs.report import environment_note

    page = html.unescape((run_dir / "report.html").read_text())
    assert "worst_drop near 0" not in page and "ode_gap near 0" in page
    summary = pd.read_csv(os.path.join(ROOT, "results", "sphere2", "summary.csv"))
    fine = summary[(summary["train_solver"] == "rk4") & (summary["train_steps"] >= 8)]
    assert fine["ode_gap"].abs().max() < 0.05 and fine["worst_drop"].min() > 0.3
    assert "The last invocation of run" in page
    meta = json.loads(open(os.path.join(ROOT, "results", "sphere2", "meta.json")).read())
    note = environment_note(meta)
    assert f"loaded {meta.get('loaded') or 0} from earlier invocations" in note
    resumed = environment_note({**meta, "trained": 80, "loaded": 45})
    assert "loaded 45 from earlier invocations" in resumed and "does not record" in resumed
    assert "not recorded" in environment_note({})


@pytest.fixture(scope="module")
def density_run(tmp_path_factory):
    """A tiny 2-D flow run with its density tables (studies/cnf_figures.py), re-reported."""
    from test_cnf_suite import TINY

    from robustbench_ode.studies import cnf_figures

    out = tmp_path_factory.mktemp("density_report")
    suite = out / "tiny.yaml"
    suite.write_text(TINY)
    assert main(["run", str(suite), "--out", str(out / "run"), "--no-progress"]) == 0
    written = cnf_figures.write_tables(out / "run", grid=12, samples=40)
    assert [p.name for p in written] == ["density_grid.csv", "samples.csv"]
    assert main(["report", str(out / "run")]) == 0
    return out / "run"


def test_a_density_runs_report_has_its_figures_metrics_and_seed_spread(density_run):
    page = html.unescape((density_run / "report.html").read_text())
    for name in ("density_heatmaps.png", "density_samples.png", "accuracy_vs_steps.png"):
        figure = next(f for f in FIGURES if f.file == name)
        assert figure.caption in page and (density_run / name).exists()
    assert "NLL against test steps" in page and "Accuracy against test steps" not in page
    assert 'id="spread"' in page and "nll_gap" in page and "solver-robust flow" in page
    grid = pd.read_csv(density_run / "density_grid.csv")
    # one model per train configuration (a seed), its own solve, two test solves and the reference
    assert set(grid["test_config"]) == {"train", "euler 128", "rk4 32", "reference"}
    assert len(grid) == 2 * 4 * 12 * 12 and grid["x"].between(-4, 4).all()
    samples = pd.read_csv(density_run / "samples.csv")
    assert (samples.groupby(["cell", "sampler"]).size() == 32).all()  # n_test 32 < 40 asked


def test_the_density_tables_are_written_at_five_significant_digits(density_run):
    """The writer rounds coordinates and log-densities (a 48-grid five-toy run's table would be tens
    of MB at float64's 17 digits); the text as written, not as pandas parses it."""
    for name, columns in (("density_grid.csv", ("x", "y", "log_density")), ("samples.csv", ("x", "y"))):
        table = pd.read_csv(density_run / name, dtype=str, keep_default_na=False)
        for column in columns:
            digits = table[column].str.lstrip("-").str.replace(".", "", regex=False).str.lstrip("0")
            digits = digits.str.split("e").str[0]
            assert digits.str.len().max() <= 5, (name, column, table[column].head())
            assert digits.str.len().max() >= 4, (name, column)  # rounded, not truncated to nothing


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_a_density_report_renders_in_headless_chromium(density_run, tmp_path):
    assert_rendered(screenshot(density_run / "report.html", tmp_path / "density.png", tmp_path, 3200))
    page = (density_run / "report.html").read_text()
    measured = layout(density_run / "report.html", tmp_path)
    assert_fits(measured, tables=["summary", "spread"], images=page.count("<img "))


def test_a_density_run_committed_with_gzipped_tables_reports_the_same(density_run, tmp_path):
    """A committed run keeps its large density tables as ``density_grid.csv.gz`` / ``samples.csv.gz``
    (like ``training.csv.gz``); the report reads them and draws the same density figures."""
    import gzip
    import shutil

    packed = tmp_path / "packed"
    shutil.copytree(density_run, packed)
    for name in ("density_grid.csv", "samples.csv"):
        with open(packed / name, "rb") as src, gzip.open(packed / (name + ".gz"), "wb") as dst:
            shutil.copyfileobj(src, dst)
        (packed / name).unlink()
    for png in ("density_heatmaps.png", "density_samples.png"):
        (packed / png).unlink()
    assert main(["report", str(packed), "-q"]) == 0
    for png in ("density_heatmaps.png", "density_samples.png"):
        assert (packed / png).exists(), png
    assert (packed / "summary.csv").read_text() == (density_run / "summary.csv").read_text()
