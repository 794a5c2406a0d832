#!/usr/bin/env bash
# The GPU check: on a machine with CUDA and this checkout (its .venv included), nothing else and no
# network, in under 8 minutes: the CUDA paths' tests (pytest -m gpu) and the CIFAR10-shaped
# throughput benchmark on generated data (robustbench_ode/studies/gpu_bench.py: images/s, MFU
# against the device's peak, bf16 / channels_last / torch.compile on and off), one JSON out.
#
#   scripts/gpu_check.sh                 # on the GPU machine: results/gpu_check.json
#   scripts/gpu_check.sh --dry-run       # CPU, tiny settings: the same path (tests/test_gpu_check.py)
#   scripts/gpu_check.sh --out FILE
#
# Time limits (timeout) keep the whole under 8 minutes: 120 s for the tests, 330 s for the
# benchmark; the benchmark rewrites its JSON after every setting, so a cut run keeps what it has.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
dry=0
out=results/gpu_check.json
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry=1 ;;
        --out) out="$2"; shift ;;
        *) echo "gpu_check.sh: unknown option $1 (allowed: --dry-run, --out FILE)" >&2; exit 2 ;;
    esac
    shift
done
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$dry" = 1 ]; then
    bench=(--device cpu --batch 4 --width 4 --steps 2 --iterations 2 --warmup 1
           --compile off --channels-last both)
    tests=(tests/test_images.py)  # where the gpu-marked tests live; they skip without CUDA
else
    if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        echo "gpu_check.sh: no CUDA device (torch.cuda.is_available() is False); --dry-run runs on CPU" >&2
        exit 2
    fi
    "$PY" -c 'import torch; print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__)'
    # reduced iterations: 8 settings, 4 of them compiled (the warmup absorbs compiling)
    bench=(--device cuda --iterations 40 --warmup 10 --compile both --channels-last both)
    tests=(tests)
fi

start=$(date +%s)
tests_rc=0
timeout 120 "$PY" -m pytest -q -m gpu -p no:cacheprovider --junitxml="$work/gpu_tests.xml" \
    "${tests[@]}" || tests_rc=$?
bench_rc=0
timeout 330 "$PY" -m robustbench_ode.studies.gpu_bench "${bench[@]}" \
    --tests-junit "$work/gpu_tests.xml" --out "$out" || bench_rc=$?
echo "gpu_check.sh: tests rc=$tests_rc, benchmark rc=$bench_rc, $(( $(date +%s) - start )) s, wrote $out"
[ "$tests_rc" = 0 ] && [ "$bench_rc" = 0 ]
