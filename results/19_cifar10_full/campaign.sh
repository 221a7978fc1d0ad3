#!/usr/bin/env bash
# The full tier's campaign, in the order its runs matter.  Each sweep skips finished runs and resumes
# unfinished ones from their checkpoints (on the machine that kept runs/full/; a new machine restarts
# them), so whoever picks the work up runs this again first:
#     nohup bash results/19_cifar10_full/campaign.sh > runs/full/campaign.log 2>&1 &
# and commits what has finished (or got further) with
#     ogc-lab collect runs/full results/19_cifar10_full
# Two runs at once, one thread each: the two cores of the machines this was planned on.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p data runs/full
py=${PYTHON:-.venv/bin/python}
common=(--recipe cifar10-cpu --dataset cifar10n-npz --data-root data --device cpu --jobs 2)
noises=symmetric:0.6,human:worse
# 1. the grid's CE and CE+OGC rows, three seeds, seed-major
"$py" -m ogc_lab sweep "${common[@]}" --losses ce,ce+ogc --noises "$noises" --seeds 0,1,2 --out runs/full/grid
# 2. CE stopped early by its accuracy on a held-out 10 % of the noisy training labels
"$py" -m ogc_lab sweep "${common[@]}" --val-fraction 0.1 --losses ce --noises "$noises" --seeds 0,1,2 \
    --out runs/full/early
# 3. the other baselines at their published settings (GCE q 0.7, PHuber-CE tau 10: the losses' defaults)
"$py" -m ogc_lab sweep "${common[@]}" --losses gce,phuber-ce --noises "$noises" --seeds 0,1,2 --out runs/full/grid
