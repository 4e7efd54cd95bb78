"""Frozen configs for a scoring run, and presets.

A `ScoreConfig` is the whole recipe of a scoring run: where the data comes from, how the
models are trained, which scores are computed. Its `key()` (a hash of the JSON form plus
the scoring version) names the run's cache folder, so two identical requests share one
entry and any change that could alter a number gives a new one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# Bump when a change to training or recording alters recorded numbers for the same config.
# Score modules carry their own versions (scoring/scores/registry.py).
SCORING_VERSION = 2  # 2: float16 storage of some recorded arrays (pipeline.COMPACT)


@dataclass(frozen=True)
class DataConfig:
    """Where the examples come from and how the held-out split is made."""

    source: str = "digits"  # "digits", a local file/folder, or "hf:NAME[:CONFIG]"
    test: str | None = None  # separate held-out file; None -> source's test split or carved
    input_cols: tuple[str, ...] | None = None  # None -> auto-detect; two names = sentence pair
    label_col: str | None = None  # None -> auto-detect
    limit: int | None = None  # stratified, seeded subset of the training split
    test_fraction: float = 0.2  # carved held-out share when the source has no test split
    split_seed: int = 0  # seeds the carved split and the --limit subset


@dataclass(frozen=True)
class TrainConfig:
    """How each model is trained; `None` fields take the recipe's default."""

    recipe: str = "auto"  # auto | mlp | cnn | cnn32 | resnet18 | probe
    model: str | None = None  # text encoder for `probe`/`finetune` (HF name or local path)
    max_length: int | None = None  # text: tokens kept per example (pair: both parts); None -> 128
    runs: int = 5  # R independent runs; run r uses seed base_seed + r
    epochs: int | None = None  # T
    early_epoch: int | None = None  # EL2N's epoch t (1-based); None -> about 10% of T
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    base_seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N


@dataclass(frozen=True)
class NoiseConfig:
    """Data Diet's label corruption: permute the labels of a random fraction among themselves."""

    fraction: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class GradConfig:
    """Where the gradient scores (grand, its label-free variants, tracin, vog) are taken."""

    at: str = "init"  # grand & label-free variants: "init" (Data Diet) or "early" (EL2N's epoch)
    params: str = "all"  # grand & tracin: "all" parameters, or "last" layer (closed form)
    checkpoints: int | None = None  # K for tracin & vog, evenly spaced in steps; None -> 5


@dataclass(frozen=True)
class ScoreConfig:
    """A whole scoring run."""

    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    scores: tuple[str, ...] = ("all",)  # score keys, or ("all",)
    cv_folds: int = 5  # K-fold cross-fitting for cleanlab's out-of-fold probabilities
    prototypes: int | None = None  # k-means clusters for `prototype`; None -> n_classes
    grads: GradConfig = field(default_factory=GradConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """Content hash of the config and the scoring version (never of Python objects).

        The data's paths are left out: a run lives under its dataset's content fingerprint
        (`<cache>/<fingerprint>/<key>`), so the same file reached by another path, or moved,
        finds the same entry.
        """
        config = self.to_dict()
        config["data"] = {**config["data"], "source": None, "test": None}
        payload = json.dumps(
            {"config": config, "scoring_version": SCORING_VERSION},
            sort_keys=True,
            default=list,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScoreConfig:
        def tup(v):
            return tuple(v) if v is not None else None

        data = dict(d.get("data", {}))
        data["input_cols"] = tup(data.get("input_cols"))
        return cls(
            data=DataConfig(**data),
            train=TrainConfig(**d.get("train", {})),
            noise=NoiseConfig(**d.get("noise", {})),
            scores=tuple(d.get("scores", ("all",))),
            cv_folds=d.get("cv_folds", 5),
            prototypes=d.get("prototypes"),
            grads=GradConfig(**d.get("grads", {})),
        )


# Presets change the training budget only; explicit CLI flags override them.
PRESETS: dict[str, dict[str, Any]] = {
    # Runs the whole pipeline in seconds: for tests and a first look. Fine-tuning a
    # transformer is far slower per epoch, so it gets one epoch and shorter texts.
    "tiny": {
        "runs": 2,
        "epochs": 4,
        "cv_folds": 2,
        "finetune": {"epochs": 1, "max_length": 64},
    },
    "default": {},
}
