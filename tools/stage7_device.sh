#!/usr/bin/env bash
# Stage 7 of the shipped model on a lent GPU machine (docs/training.md, "Stage 7"):
# the machine has torch but not segmentation-models-pytorch, nothing can be fetched
# there, and a session's device time is minutes, so the run is time-budgeted
# (train.max_minutes; the cosine schedule follows the clock) and everything it needs
# travels with the working tree:
#   .whl/        segmentation-models-pytorch's wheel (pip download --no-deps)
#   data/stage7/ the finite-difference folders (commands in the config's header)
# Usage: bash tools/stage7_device.sh OUT MINUTES [extra train arguments...]
# Writes OUT/stage7/{config.yaml,log.csv,curves.png}, OUT/train.log and OUT/stage7.pt:
# best.pt exported as tools/export_model.py ships a model (float16 weights, calibrated
# for one pass and d4 on the run's validation mixture).  best.pt and last.pt (50 MB
# each with the optimizer and EMA, over what a device run may return) are removed.
set -o pipefail
out=${1:?OUT}; minutes=${2:?MINUTES}; shift 2
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
workers=$(( $(nproc) - 2 ))
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, segmentation_models_pytorch as smp; print('torch', torch.__version__, 'smp', smp.__version__, 'cuda', torch.cuda.is_available())" || exit
python3 -m heatmaploc train --config configs/default_stage7.yaml --out "$out/stage7" --quiet \
    --set data.workers=$workers --set train.threads=2 --set train.max_minutes=$minutes \
    --set train.steps_per_epoch=1000 "$@" 2>&1 | tee "$out/train.log"
status=$?
python3 tools/export_model.py "$out/stage7/best.pt" "$out/stage7.pt" --tta d4 2>&1 | tee -a "$out/train.log" || status=1
rm -f "$out/stage7/best.pt" "$out/stage7/last.pt"
ls -la "$out" "$out/stage7"
exit $status
