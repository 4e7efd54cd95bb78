"""Recording overhead: training with per-example dynamics recording vs the same training without.

Three measurements (`--what`, default all), each alternating the two variants (ABAB...) so
drift in machine load hits both alike, and reporting the median of the per-pair ratios:

- `builtin`: Winnow's own loop (`loop.fit`) with and without recording. Goal: <= 1.05.
  Recording includes EL2N's fixed-weight pass (one eval-mode forward over the training set
  after the early epoch); its own cost is timed apart (`eval s`, median) and given as a share
  of the plain training time (`eval %`). mlp runs on the digits (1,437 training images);
  cnn32 on 32x32 images: the first 5,000 of ../shared/data/cifar10/train.parquet when
  present, otherwise random tensors of that shape (timing does not depend on pixel values).
- `recorder`: a plain user-written PyTorch loop with and without `scoring.record.Recorder`
  (`log` per step, `end_epoch` per epoch): batch 64, a ~1M-parameter MLP (512-1024-512-K)
  on random inputs, CPU. Goal: <= 3% of step time. `finish` (writing and scoring the run)
  happens once after training and is timed apart.
- `trainer`: Hugging Face's `Trainer` vs `WinnowTrainer` on a tiny random BERT (built from
  a config, nothing downloaded) and random tokens: logging only (`el2n_eval=False`), and
  with EL2N's eval pass over the training set.

    python bench/recording_overhead.py [--what builtin,recorder,trainer] [--repeats 5]
        [--recipes mlp,cnn32] [--classes 10]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from scoring.training.loop import fit, predict, seed_everything  # noqa: E402
from scoring.training.models import SINGLE_THREAD_RECIPES, build_model, resolve_recipe  # noqa: E402

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "train.parquet"


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    d = load_digits()
    x = torch.from_numpy((d.images / 16.0).astype(np.float32)[:, None])  # (N, 1, 8, 8)
    return x[:1437], torch.from_numpy(d.target[:1437].astype(np.int64))


def _images32(n: int = 5000) -> tuple[torch.Tensor, torch.Tensor, str]:
    if CIFAR.exists():
        import pyarrow.parquet as pq
        from PIL import Image

        table = pq.read_table(CIFAR).slice(0, n).to_pydict()
        imgs = [np.asarray(Image.open(io.BytesIO(r["bytes"])).convert("RGB")) for r in table["img"]]
        x = torch.from_numpy(np.stack(imgs).transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
        return x, torch.tensor(table["label"], dtype=torch.int64), "cifar10 (first 5,000)"
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, 32, 32, generator=gen)
    return x, torch.randint(0, 10, (n,), generator=gen), "random 32x32 tensors"


def _time_fit(recipe_name: str, x, y, epochs: int, record: bool) -> tuple[float, torch.nn.Module]:
    recipe = resolve_recipe(recipe_name, modality="image", epochs=epochs)
    gen = seed_everything(0)
    model = build_model(recipe_name, tuple(x.shape[1:]), 10)
    t0 = time.perf_counter()
    fit(model, x, y, recipe, gen=gen, device=torch.device("cpu"), record=record)
    return time.perf_counter() - t0, model


def _time_eval_pass(model: torch.nn.Module, x) -> float:
    """EL2N's fixed-weight pass alone: the eval-mode forward `fit` makes after epoch t."""
    t0 = time.perf_counter()
    predict(model, x, device=torch.device("cpu"))
    model.train()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", default="builtin,recorder,trainer")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--recipes", default="mlp,cnn32")
    parser.add_argument("--classes", type=int, default=10, help="K of the recorder bench")
    args = parser.parse_args()
    what = args.what.split(",")
    if "builtin" in what:
        builtin(args)
    if "recorder" in what:
        recorder(args)
    if "trainer" in what:
        trainer(args)


def builtin(args: argparse.Namespace) -> None:
    print("built-in loop (loop.fit): plain vs recording")
    print(
        f"{'recipe':<8} {'data':<24} {'plain s':>8} {'record s':>9} {'ratio':>6} "
        f"{'eval s':>7} {'eval %':>6}"
    )
    for name in args.recipes.split(","):
        if name == "mlp":
            (x, y), what, epochs = _digits(), "digits (1,437)", 10
        else:
            x, y, what = _images32()
            epochs = 1
        torch.set_num_threads(1 if name in SINGLE_THREAD_RECIPES else os.cpu_count() or 1)
        _time_fit(name, x[:256], y[:256], 1, True)  # warm-up: first-call allocations
        ratios, plain, rec, evals = [], [], [], []
        for _ in range(args.repeats):
            a, _ = _time_fit(name, x, y, epochs, record=False)
            b, model = _time_fit(name, x, y, epochs, record=True)
            plain.append(a)
            rec.append(b)
            ratios.append(b / a)
            evals.append(_time_eval_pass(model, x))
        ev, pl = statistics.median(evals), statistics.median(plain)
        print(
            f"{name:<8} {what:<24} {pl:8.2f} {statistics.median(rec):9.2f} "
            f"{statistics.median(ratios):6.3f} {ev:7.3f} {100 * ev / pl:6.2f}"
        )


# -- a user's own loop with the Recorder ------------------------------------------------------


def _timed_recorder(*args, **kwargs):
    """A Recorder that also sums the wall time spent inside its per-step and per-epoch calls
    (`inside`): a direct measure of its cost, far less noisy on a busy machine than the
    difference of two trainings."""
    from scoring.record import Recorder

    class Timed(Recorder):
        inside = 0.0

        def log(self, ids, logits):
            t0 = time.perf_counter()
            super().log(ids, logits)
            self.inside += time.perf_counter() - t0

        def log_eval(self, ids, logits):
            t0 = time.perf_counter()
            super().log_eval(ids, logits)
            self.inside += time.perf_counter() - t0

        def end_epoch(self):
            t0 = time.perf_counter()
            super().end_epoch()
            self.inside += time.perf_counter() - t0

    return Timed(*args, **kwargs)


def _user_loop(x, y, epochs: int, rec, batch: int = 64) -> tuple[float, float]:
    """A plain training loop; `rec` None = no recording. Returns (train s, finish s)."""
    torch.manual_seed(0)
    k = int(y.max()) + 1
    model = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 1024),
        torch.nn.ReLU(),
        torch.nn.Linear(1024, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, k),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    ids = torch.arange(x.shape[0])
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=gen)
        for start in range(0, x.shape[0], batch):
            b = order[start : start + batch]
            logits = model(x[b])
            loss = torch.nn.functional.cross_entropy(logits, y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if rec is not None:
                rec.log(ids[b], logits)
        if rec is not None:
            rec.end_epoch()
    train_s = time.perf_counter() - t0
    if rec is None:
        return train_s, 0.0
    rec.end_run()
    t0 = time.perf_counter()
    rec.finish()
    return train_s, time.perf_counter() - t0


def recorder(args: argparse.Namespace) -> None:
    import tempfile

    n, d, k, epochs = 6400, 512, args.classes, 3
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=gen)
    y = torch.randint(0, k, (n,), generator=gen)
    torch.set_num_threads(os.cpu_count() or 1)
    params = d * 1024 + 1024 + 1024 * 512 + 512 + 512 * k + k
    print(
        f"\nplain PyTorch loop, batch 64, MLP {d}-1024-512-{k} ({params / 1e6:.2f} M parameters), "
        f"{n:,} examples x {epochs} epochs, {torch.get_num_threads()} threads"
    )
    print(
        f"{'plain s':>8} {'recorder s':>11} {'ratio':>6} {'step ms':>8} {'in rec us/step':>15} "
        f"{'in rec %':>9} {'finish s':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        _user_loop(x[:640], y[:640], 1, None)  # warm-up
        ratios, plain, rec, fin, inside, share = [], [], [], [], [], []
        for i in range(args.repeats):
            a, _ = _user_loop(x, y, epochs, None)
            r = _timed_recorder(Path(tmp) / "cache", f"bench {i}", np.arange(n), y.numpy(), k)
            b, f = _user_loop(x, y, epochs, r)
            plain.append(a)
            rec.append(b)
            fin.append(f)
            ratios.append(b / a)
            inside.append(r.inside)
            share.append(r.inside / (b - r.inside))  # of the same run's own training time
        steps = epochs * -(-n // 64)
        pl, rc = statistics.median(plain), statistics.median(rec)
        print(
            f"{pl:8.2f} {rc:11.2f} {statistics.median(ratios):6.3f} {1e3 * pl / steps:8.2f} "
            f"{1e6 * statistics.median(inside) / steps:15.1f} "
            f"{100 * statistics.median(share):9.2f} {statistics.median(fin):9.2f}"
        )


# -- Hugging Face Trainer vs WinnowTrainer ----------------------------------------------------


def _tiny_bert(folder: Path, vocab: int) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=512,
        max_position_embeddings=64,
        num_labels=2,
    )
    BertForSequenceClassification(config).save_pretrained(folder)


def _train_hf(folder: Path, table, out: Path, record: str) -> tuple[float, float]:
    """Seconds of `train()`, and of it inside the Recorder: record "" (plain Trainer),
    "log" or "log+eval" (the eval pass itself is the Trainer's `predict`, not counted)."""
    from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

    from scoring.record import WinnowTrainer

    model = AutoModelForSequenceClassification.from_pretrained(folder)
    args = TrainingArguments(
        output_dir=str(out / "hf"),
        num_train_epochs=2,
        per_device_train_batch_size=32,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        seed=0,
        disable_tqdm=True,
    )
    if not record:
        trainer = Trainer(model=model, args=args, train_dataset=table)
    else:
        rec = _timed_recorder(
            out / "cache", "bench", np.arange(len(table)), table["label"], 2, early_epoch=1
        )
        trainer = WinnowTrainer(
            model=model,
            args=args,
            train_dataset=table,
            recorder=rec,
            el2n_eval=record == "log+eval",
        )
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    if not record:
        return seconds, 0.0
    trainer.finish_recording()
    return seconds, rec.inside


def trainer(args: argparse.Namespace) -> None:
    import logging
    import tempfile

    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    n, length, vocab = 1280, 32, 1000
    gen = np.random.default_rng(0)
    table = datasets.Dataset.from_dict(
        {
            "input_ids": gen.integers(5, vocab, (n, length)).tolist(),
            "attention_mask": np.ones((n, length), dtype=np.int64).tolist(),
            "label": gen.integers(0, 2, n).tolist(),
        }
    )
    torch.set_num_threads(os.cpu_count() or 1)
    print(
        f"\nHugging Face Trainer, tiny random BERT (2 layers, hidden 128), {n:,} sequences of "
        f"{length} tokens x 2 epochs, batch 32"
    )
    print(
        f"{'Trainer s':>10} {'+log s':>8} {'ratio':>6} {'in rec %':>9} {'+log+eval s':>12} "
        f"{'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bert"
        _tiny_bert(folder, vocab)
        _train_hf(folder, table.select(range(64)), Path(tmp), "")  # warm-up
        plain, log, full, r_log, r_full, share = [], [], [], [], [], []
        for i in range(args.repeats):
            a, _ = _train_hf(folder, table, Path(tmp) / f"a{i}", "")
            b, inside = _train_hf(folder, table, Path(tmp) / f"b{i}", "log")
            c, _ = _train_hf(folder, table, Path(tmp) / f"c{i}", "log+eval")
            plain.append(a)
            log.append(b)
            full.append(c)
            r_log.append(b / a)
            r_full.append(c / a)
            share.append(inside / (b - inside))
        print(
            f"{statistics.median(plain):10.2f} {statistics.median(log):8.2f} "
            f"{statistics.median(r_log):6.3f} {100 * statistics.median(share):9.2f} "
            f"{statistics.median(full):12.2f} {statistics.median(r_full):6.3f}"
        )


if __name__ == "__main__":
    main()
