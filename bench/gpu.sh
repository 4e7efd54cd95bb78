#!/usr/bin/env bash
# The figures a GPU user needs, on one GPU, in about 8 minutes (an estimate: never yet run
# on a GPU; see docs/benchmarks.md "One GPU script"):
#
#   1. whole CIFAR-10 (50,000 + 10,000 images) with the bundled encoder, the default
#      recipe and scores: stage times, the whole run against the encoder's forward alone,
#      GPU and host memory (bench/full_run.py, no pages: they are drawn on the CPU);
#   2. a ResNet-18 trained from scratch on CIFAR-10, 2 runs x 10 epochs: seconds per epoch
#      and per score, so that Data Diet's 5 runs x 200 epochs can be extrapolated;
#   3. SST-2 `finetune` with the bundled MiniLM (2 runs, the recipe's epochs);
#   4. gradient-score throughput (EL2N, GraNd, TracIn, VoG) against the forward and
#      forward+backward floors, cnn32 and resnet18, Winnow's rows only (bench/grad_scores.py).
#
# Each step writes its figures to bench/out/gpu/ (JSON and markdown); the last step prints
# them as one table, with the card's name, into bench/out/gpu/gpu.md.
#
#   bash bench/gpu.sh            # on a machine with CUDA
#   bash bench/gpu.sh --smoke    # the same steps on the CPU, on a few hundred examples
#
# --smoke checks the script itself (a slow test runs it): tiny copies of the data under
# bench/out/gpu-smoke/ (200 training + 40 test examples), 1 run x 1 epoch on 64 of them with
# EL2N and GraNd only for ResNet-18 and finetune, 32 examples for the gradient rows. Its
# figures mean nothing. PYTHON picks the interpreter (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DATA=${WINNOW_DATA:-../shared/data}
OUT=bench/out/gpu
DEVICE=cuda
RESNET=(--runs 2 --epochs 10)
FINETUNE=(--runs 2)
GRAD=(--n 4096 --repeats 2 --batch 256)
SMOKE=0
if [[ "${1:-}" == "--smoke" ]]; then
    SMOKE=1
elif [[ $# -gt 0 ]]; then
    echo "usage: bash bench/gpu.sh [--smoke]" >&2
    exit 2
fi

if [[ $SMOKE == 1 ]]; then
    DEVICE=cpu
    OUT=bench/out/gpu-smoke
    RESNET=(--runs 1 --epochs 1 --limit 64 --scores el2n,grand)
    FINETUNE=(--runs 1 --epochs 1 --limit 64 --scores el2n,grand)
    GRAD=(--n 32 --repeats 1 --batch 16)
    mkdir -p "$OUT"
    # Tiny copies of the data, so every step runs end to end in a few minutes on 2 cores.
    "$PY" - "$DATA" "$OUT/data" <<'EOF'
import sys
from pathlib import Path

import pandas as pd

data, out = Path(sys.argv[1]), Path(sys.argv[2])
for name, train, test in (("cifar10", 200, 40), ("sst2", 200, 40)):
    (out / name).mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train), ("test", test)):
        frame = pd.read_parquet(data / name / f"{split}.parquet")
        # Every class, in its share: the files are sorted by label.
        frame = frame.groupby("label", group_keys=False).head(n // frame["label"].nunique())
        frame.reset_index(drop=True).to_parquet(out / name / f"{split}.parquet")
EOF
    DATA="$OUT/data"
else
    "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: run bash bench/gpu.sh --smoke to check the script on the CPU')"
fi
mkdir -p "$OUT"
FULL=("$PY" bench/full_run.py --device "$DEVICE" --no-pages)

echo "== 1/4 whole CIFAR-10, bundled encoder (default recipe and scores)"
"${FULL[@]}" cifar10 --data "$DATA/cifar10" --json "$OUT/cifar10-probe.json"
echo "== 2/4 ResNet-18 from scratch on CIFAR-10"
"${FULL[@]}" cifar10 --data "$DATA/cifar10" --recipe resnet18 "${RESNET[@]}" --no-floor \
    --json "$OUT/cifar10-resnet18.json"
echo "== 3/4 SST-2 finetune, bundled MiniLM"
"${FULL[@]}" sst2 --data "$DATA/sst2" --recipe finetune "${FINETUNE[@]}" --no-floor \
    --json "$OUT/sst2-finetune.json"
echo "== 4/4 gradient scores against the forward+backward floor"
for model in cnn32 resnet18; do
    "$PY" bench/grad_scores.py --data "$DATA/cifar10/train.parquet" --device "$DEVICE" \
        --model "$model" --ours-only --threads "$(nproc)" "${GRAD[@]}" \
        > "$OUT/grad_scores_$model.md"
done
"$PY" bench/gpu_table.py "$OUT" "$DEVICE" | tee "$OUT/gpu.md"
