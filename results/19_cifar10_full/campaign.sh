#!/usr/bin/env bash
# The full tier's campaign, in the order its runs matter.  Every step skips finished runs and resumes
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
data=(--dataset cifar10n-npz --data-root data --device cpu)
noises=symmetric:0.6,human:worse
# The grid's recipe.  cifar10-cpu as it stands does not make CE memorise (seed 0: 4.0 % of the flipped
# labels fitted, the peak in the last epoch); when regime/ finds a setting that does, put its flags here.
grid_recipe=(--recipe cifar10-cpu)

train() {  # one run, resumable: ogc-lab train --resume starts it, continues it, or reads it back
    "$py" -m ogc_lab train --recipe cifar10-cpu "${data[@]}" --seed 0 --no-progress --resume "$@"
}

# 0. the clean target (>= 90 %) and the regime search (CE memorising without augmentation), two at a time
train --loss ce --noise none --epochs 40 --out runs/full/clean/w16-e40 &
train --loss ce --noise symmetric:0.6 --model resnet9-w16 --crop-padding 0 --flip false \
    --out runs/full/regime/w16-noaug-e24 &
wait
train --loss ce --noise symmetric:0.6 --model resnet9-w24 --crop-padding 0 --flip false \
    --out runs/full/regime/w24-noaug-e24
# 1. the grid's CE and CE+OGC rows, three seeds, seed-major
"$py" -m ogc_lab sweep "${grid_recipe[@]}" "${data[@]}" --jobs 2 --losses ce,ce+ogc --noises "$noises" \
    --seeds 0,1,2 --out runs/full/grid
# 2. CE stopped early by its accuracy on a held-out 10 % of the noisy training labels
"$py" -m ogc_lab sweep "${grid_recipe[@]}" "${data[@]}" --jobs 2 --val-fraction 0.1 --losses ce \
    --noises "$noises" --seeds 0,1,2 --out runs/full/early
# 3. the other baselines at their published settings (GCE q 0.7, PHuber-CE tau 10: the losses' defaults)
"$py" -m ogc_lab sweep "${grid_recipe[@]}" "${data[@]}" --jobs 2 --losses gce,phuber-ce --noises "$noises" \
    --seeds 0,1,2 --out runs/full/grid
