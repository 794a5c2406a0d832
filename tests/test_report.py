"""The report, the summary table and the leaderboard of a real (smoke) run; the report rendered
in headless Chromium."""

import os
import re
import shutil
import subprocess

import matplotlib.image
import pandas as pd
import pytest

from robustbench_ode.cli import main
from robustbench_ode.outputs.summary import ID_COLUMNS

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
    results = pd.read_csv(run_dir / "results.csv")
    summary = pd.read_csv(run_dir / "summary.csv")
    assert len(summary) == results["cell"].nunique()
    for col in [*ID_COLUMNS, "acc_train", "acc_ref", "ode_gap", "worst_drop", "nfe_train",
                "nfe_ref", "drift", "n_failed"]:
        assert col in summary.columns
    assert summary["acc_ref"].notna().all() and summary["drift"].notna().all()
    assert (results.groupby("cell")["is_reference"].sum() == 1).all()


def test_report_command_rebuilds_the_page(run_dir, capsys):
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").stat().st_size > 10_000
    assert "report.html" in capsys.readouterr().out


def test_report_of_missing_dir_is_bad_input(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in capsys.readouterr().err


def test_leaderboard_ranks_by_reference_accuracy(run_dir, tmp_path, capsys):
    assert main(["leaderboard", str(run_dir), "--out", str(tmp_path)]) == 0
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    md = (tmp_path / "leaderboard.md").read_text()
    assert md.startswith("## sphere2") and md.count("\n| ") == len(board) + 1
    assert list(board["rank"]) == list(range(1, len(board) + 1))
    assert board["acc_ref"].is_monotonic_decreasing
    assert len(board) == pd.read_csv(run_dir / "summary.csv")["cell"].nunique()


def screenshot(html_path, png_path, tmp_path, height=2400):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--screenshot={png_path}",
           f"--window-size=1280,{height}", f"file://{html_path}"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return matplotlib.image.imread(png_path)


def assert_rendered(pixels):
    gray = pixels[..., :3].mean(-1)
    assert pixels.shape[0] >= 1000 and gray.std() > 0.05  # not a blank page
    assert (gray < 0.9).mean() > 0.02  # a fair share of the page is drawn


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    assert_rendered(screenshot(run_dir / "report.html", tmp_path / "report.png", tmp_path))


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_quick_suite_report_renders_in_headless_chromium(tmp_path):
    out = tmp_path / "quick"
    assert main(["run", os.path.join(ROOT, "suites", "quick.yaml"), "--out", str(out),
                 "--no-progress"]) == 0
    page = (out / "report.html").read_text()
    assert page.count("<img") >= 4 and "<table" in page
    assert_rendered(screenshot(out / "report.html", tmp_path / "quick.png", tmp_path, 3200))
