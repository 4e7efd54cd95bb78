"""The figures `bench/gpu.sh` gathered, as one markdown report (its last step).

    python bench/gpu_table.py OUT_DIR DEVICE

Reads OUT_DIR/{cifar10-probe,cifar10-resnet18,sst2-finetune}.json (bench/full_run.py
--json) and OUT_DIR/grad_scores_{cnn32,resnet18}.md (bench/grad_scores.py), and prints the
card's name, one row per run (stage times, seconds per epoch, the ratio to the encoder's
floor, memory), the per-score seconds, an extrapolation of the ResNet-18 run to Data
Diet's 5 runs x 200 epochs, and the gradient tables as they are.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RUNS = ("cifar10-probe", "cifar10-resnet18", "sst2-finetune")
STAGES = ("decode", "embed", "runs", "cross_fit", "scores", "neighbourhood", "write")


def card(device: str) -> str:
    """The accelerator's name (or the CPU's, for --smoke)."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({torch.get_num_threads()} threads; --smoke: the figures mean nothing)"


def _cell(value: float | None, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def report(out: Path, device: str) -> str:
    """The whole markdown report of the figures under `out`."""
    lines = [f"# bench/gpu.sh on {card(device)}", ""]
    runs = {name: json.loads((out / f"{name}.json").read_text()) for name in RUNS}
    head = "| run | examples | runs x epochs | " + " | ".join(STAGES)
    lines += [
        head + " | whole run s | s/epoch | / floor | host GB | GPU GB | test acc |",
        "|---" * (len(STAGES) + 9) + "|",
    ]
    for name, f in runs.items():
        stages = " | ".join(_cell(f["stages_s"].get(s)) for s in STAGES)
        lines.append(
            f"| {name} | {f['n_train']:,} + {f['n_test']:,} | {f['runs']} x {f['epochs']} "
            f"| {stages} | {f['wall_s']:.1f} | {_cell(f.get('epoch_s'), '{:.2f}')} "
            f"| {_cell(f.get('ratio'), '{:.2f}x')} | {f['peak_rss_gb']:.2f} "
            f"| {_cell(f.get('gpu_peak_gb'), '{:.2f}')} | {f['test_accuracy_mean']:.4f} |"
        )
    lines.append("")
    for name, f in runs.items():
        per = ", ".join(f"{k} {v:.2f}" for k, v in sorted(f["scores_s"].items()))
        lines.append(f"- {name}, seconds per score (from the recorded runs): {per}")
    resnet = runs["cifar10-resnet18"]
    if resnet.get("epoch_s"):
        hours = resnet["epoch_s"] * 5 * 200 / 3600
        lines.append(
            f"- Data Diet's 5 runs x 200 epochs of ResNet-18 at {resnet['epoch_s']:.2f} s per "
            f"epoch: about {hours:.1f} h of training (gradient scores and test passes apart)."
        )
    for model in ("cnn32", "resnet18"):
        path = out / f"grad_scores_{model}.md"
        lines += ["", f"## Gradient scores, {model}", "", path.read_text().strip()]
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit("usage: python bench/gpu_table.py OUT_DIR DEVICE")
    print(report(Path(sys.argv[1]), sys.argv[2]), end="")


if __name__ == "__main__":
    main()
