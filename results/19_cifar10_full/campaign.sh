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
# The grid's recipe: cifar10-cpu without augmentation, where CE memorises (regime/w16-noaug-e24: peak 63.2 %
# in epoch 15, 38.4 % at the end, 56.5 % of the flipped labels fitted); with crop + flip it does not
# (grid/: 4.0 % fitted, the peak in the last epoch).
grid_recipe=(--recipe cifar10-cpu --crop-padding 0 --flip false)

train() {  # one run, resumable: ogc-lab train --resume starts it, continues it, or reads it back
    "$py" -m ogc_lab train --recipe cifar10-cpu "${data[@]}" --seed 0 --no-progress --resume "$@"
}

# 1. the grid's CE and CE+OGC rows where CE memorises, three seeds, seed-major
"$py" -m ogc_lab sweep "${grid_recipe[@]}" "${data[@]}" --jobs 2 --losses ce,ce+ogc --noises "$noises" \
    --seeds 0,1,2 --out runs/full/memorise
# 2. CE stopped early by its accuracy on a held-out 10 % of the noisy training labels
"$py" -m ogc_lab sweep "${grid_recipe[@]}" "${data[@]}" --jobs 2 --val-fraction 0.1 --losses ce \
    --noises "$noises" --seeds 0,1,2 --out runs/full/early
# 3. the other baselines at their published settings (GCE q 0.7, PHuber-CE tau 10: the losses' defaults)
"$py" -m ogc_lab sweep "${grid_recipe[@]}" "${data[@]}" --jobs 2 --losses gce,phuber-ce --noises "$noises" \
    --seeds 0,1,2 --out runs/full/memorise
# 4. the clean target (>= 90 %): wider, since 40 epochs of w16 reached 87.6 %
train --loss ce --noise none --model resnet9-w24 --out runs/full/clean/w24-e24
