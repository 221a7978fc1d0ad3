#!/usr/bin/env bash
# The GPU checks as one prepared command for a session lent a device machine (15 minutes of device
# time in all, start-up included, at most 10 a command).  The machine's Python already holds torch,
# torchvision, scikit-learn, scipy and pytest; the package is used from the tree through PYTHONPATH.
#
#   bash benchmarks/device_checks.sh          # all: checks, then the pair until the budget is spent
#   bash benchmarks/device_checks.sh checks   # CUDA tests and the refit, step and epoch benchmarks
#   bash benchmarks/device_checks.sh pair     # CE and CE+OGC, official-cifar10 at 40% symmetric noise,
#                                             # full CIFAR-10, concurrently on the one GPU
#
# Most valuable figures first: the tests and benchmarks (about 3 minutes), then the paper's
# headline pair for whatever is left of OGC_DEVICE_BUDGET_S (default 540 s, so the call ends inside
# 9 minutes).  The pair's run folders, checkpoints included, live in build/device-runs (ignored by
# git), which stays on the machine while it is warm: a second call, `... pair` within the warm
# window, resumes both runs from their last epoch.  A fresh machine starts them afresh.
#
# Reads the project's JPEG CIFAR-10 from data/ (ignored by git): copy ../shared/data/cifar10_jpeg.npz
# there and carry "data".  What comes back under $OUT (8 files at most): device.log (everything
# printed), the three benchmark JSON files and runs.tar.gz (each run's result.json when finished,
# epochs.csv and steps.csv).  OGC_DEVICE_QUICK=1 rehearses it on a CPU: --quick benchmarks and
# 2-epoch runs of cnn8 on 64 images.
set -euo pipefail

phase=${1:-all}
OUT=${OUT:-build/device}
RUNS=${OGC_DEVICE_RUNS:-build/device-runs}
QUICK=${OGC_DEVICE_QUICK:-0}
BUDGET=${OGC_DEVICE_BUDGET_S:-540}
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export OGC_CIFAR_NPZ=${OGC_CIFAR_NPZ:-data/cifar10_jpeg.npz}
mkdir -p "$OUT" "$RUNS"
deadline=$(( $(date +%s) + BUDGET ))
LOG="$OUT/device.log"

if [ "$QUICK" = 1 ]; then device=cpu; bench_flags=(--quick); else device=cuda; bench_flags=(); fi

left() { echo $(( deadline - $(date +%s) )); }

report() {  # what ran where, first in the log
    "$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')"
    date -u +%Y-%m-%dT%H:%M:%SZ
}

checks() {
    # Every test file that holds a CUDA-only test (they skip without CUDA); -rs lists any skip.
    "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_ogc.py tests/test_noise.py tests/test_hardware.py
    for bench in refit step epoch; do
        timeout "$(left)" "$PY" "benchmarks/bench_$bench.py" --device "$device" "${bench_flags[@]}" \
            --json "$OUT/bench_$bench.json" || echo "bench_$bench stopped (budget or failure): $?"
    done
}

pair() {
    local sizes=() pids=() loss run
    [ "$QUICK" = 1 ] && sizes=(--subset 64 --epochs 2 --milestones "[1]" --model cnn8 --log-interval 1)
    local seconds=$(( $(left) - 20 ))  # leave time to pack what the runs wrote
    if [ "$seconds" -lt 30 ]; then echo "pair: only ${seconds}s of budget left, not started"; return 0; fi
    for loss in ce ce+ogc; do
        run="$RUNS/official-cifar10_${loss//+/-}_symmetric-0.4_seed0"  # no '+' in names that come back
        timeout --kill-after=10 "$seconds" "$PY" -m ogc_lab train --recipe official-cifar10 \
            --dataset cifar10-npz --data-root "$OGC_CIFAR_NPZ" --noise symmetric:0.4 --loss "$loss" \
            --device "$device" "${sizes[@]}" --out "$run" --resume --no-progress 2>&1 | sed "s/^/[$loss] /" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || echo "pair: a run stopped at the budget (resume with: pair)"; done
    (cd "$RUNS" && tar czf - --ignore-failed-read */result.json */epochs.csv */steps.csv 2>/dev/null) \
        > "$OUT/runs.tar.gz" || true
}

case "$phase" in
all) { report; checks; pair; } 2>&1 | tee "$LOG" ;;
checks) { report; checks; } 2>&1 | tee "$LOG" ;;
pair) { report; pair; } 2>&1 | tee "$LOG" ;;
*)
    echo "unknown phase '$phase'; allowed: all, checks, pair" >&2
    exit 2
    ;;
esac
