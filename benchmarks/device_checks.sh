#!/usr/bin/env bash
# The GPU checks of the performance issue as one prepared command, for a session that is lent a
# device machine (its Python already holds torch, torchvision, scikit-learn, scipy and pytest, and
# nothing can be installed there, so the package is used from the tree through PYTHONPATH).
#
#   bash benchmarks/device_checks.sh checks       # CUDA tests (the sync-free proof among them) and the
#                                                 # refit, step and epoch benchmarks on the GPU
#   bash benchmarks/device_checks.sh train LOSS   # one official-cifar10 run, 40% symmetric noise
#
# The epoch benchmark and the training run read the project's JPEG CIFAR-10 from data/ (ignored by
# git): copy ../shared/data/cifar10_jpeg.npz there and carry "data".  Everything worth keeping is
# written under $OUT (the device tool brings it back): logs, benchmark JSON, and each run's
# result.json and epochs.csv (not its checkpoint).  OGC_DEVICE_QUICK=1 rehearses the whole script
# on a CPU in about a minute: --quick benchmarks and a 2-epoch run of cnn8 on 64 images.
set -euo pipefail

phase=${1:-checks}
OUT=${OUT:-build/device}
RUNS=${OGC_DEVICE_RUNS:-build/device-runs}  # the full run folders (checkpoints included) stay here
QUICK=${OGC_DEVICE_QUICK:-0}
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export OGC_CIFAR_NPZ=${OGC_CIFAR_NPZ:-data/cifar10_jpeg.npz}
mkdir -p "$OUT"

if [ "$QUICK" = 1 ]; then device=cpu; bench_flags=(--quick); else device=cuda; bench_flags=(); fi

report() {  # what ran where, first in every log
    "$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')"
    date -u +%Y-%m-%dT%H:%M:%SZ
}

case "$phase" in
checks)
    report | tee "$OUT/checks.log"
    # Every test file that holds a CUDA-only test (they skip without CUDA); -rs lists any skip.
    "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_ogc.py tests/test_noise.py 2>&1 | tee -a "$OUT/checks.log"
    for bench in refit step epoch; do
        "$PY" "benchmarks/bench_$bench.py" --device "$device" "${bench_flags[@]}" --json "$OUT/bench_$bench.json" \
            2>&1 | tee -a "$OUT/checks.log"
    done
    ;;
train)
    loss=${2:?"train needs a loss name, e.g. ce or ce+ogc"}
    tag=${loss//+/-}  # a '+' in a file name would not come back from the device
    run="$RUNS/official-cifar10_${tag}_symmetric-0.4_seed0"
    sizes=()
    [ "$QUICK" = 1 ] && sizes=(--subset 64 --epochs 2 --milestones "[1]" --model cnn8)
    report | tee "$OUT/train_$tag.log"
    "$PY" -m ogc_lab train --recipe official-cifar10 --dataset cifar10-npz --data-root "$OGC_CIFAR_NPZ" \
        --noise symmetric:0.4 --loss "$loss" --device "$device" "${sizes[@]}" --out "$run" --no-progress \
        2>&1 | tee -a "$OUT/train_$tag.log"
    mkdir -p "$OUT/$(basename "$run")"
    cp "$run/result.json" "$run/epochs.csv" "$OUT/$(basename "$run")/"
    ;;
*)
    echo "unknown phase '$phase'; allowed: checks, train LOSS" >&2
    exit 2
    ;;
esac
