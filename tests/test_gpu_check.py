"""scripts/gpu_check.sh, the check prepared for a GPU machine, run end to end on CPU in its
--dry-run mode (tiny settings) so that it cannot rot before a GPU is lent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PY": sys.executable, "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=240)


def test_dry_run_writes_one_json_with_the_tests_and_every_setting(tmp_path):  # ~25 s
    out = tmp_path / "check.json"
    done = run("--dry-run", "--out", str(out))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    # the CUDA paths' tests ran (collected, skipped without CUDA), and nothing failed
    assert report["tests"]["tests"] >= 1 and report["tests"]["failed"] == []
    assert report["tests"]["failures"] == report["tests"]["errors"] == 0
    assert report["data"] == "synthetic"
    settings = [(r["compile"], r["channels_last"], r["amp"]) for r in report["results"]]
    assert settings == [(False, False, False), (False, False, True), (False, True, False),
                        (False, True, True)]
    assert all(r["status"] == "ok" and r["images_per_s"] > 0 and r["flops_per_iteration"] > 0
               for r in report["results"])


def test_bad_option_and_no_cuda_are_one_line_errors(tmp_path):
    bad = run("--fast")
    assert bad.returncode == 2 and "--dry-run" in bad.stderr
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the full check would run")
    none = run("--out", str(tmp_path / "x.json"))
    assert none.returncode == 2 and "no CUDA device" in none.stderr
    assert not (tmp_path / "x.json").exists()
