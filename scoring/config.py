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
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from scoring.errors import InputError

# Bump when a change to training or recording alters recorded numbers for the same config.
# Score modules carry their own versions (scoring/scores/registry.py).
# 2: float16 storage of some recorded arrays (training.steps.COMPACT).
# 3: probs_early from an eval pass at the weights after the early epoch (EL2N at fixed
#    weights); features_free (label-independent embeddings for prototype) per run folder.
# 4: "all" now includes the neighbourhood scores (near_dup, outlier, leakage, with the
#    dup_group / leak_of columns and features_free_test.npz): a cached "all" run lacks them.
# 5: "all" includes `consensus`; `outlier` follows Datalab's definition and image runs'
#    dup_group / leak_of use the shift-registered pixel check (scores/neighbourhood.py).
SCORING_VERSION = 5
# What `--recipe auto` with no `--model` picks; it enters those runs' keys (and only theirs),
# so a cached run made when auto meant another recipe is never found for today's auto.
# 1 (not in keys): images over 16 px -> cnn32 from scratch.
# 2: images over 16 px -> probe on the bundled EfficientNet-Lite0 (tiny images: mlp, text:
#    probe on MiniLM, as before). Runs that name their recipe keep their keys.
AUTO_RECIPES = 2


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
    # Several annotators per example (scoring/data/annotators.py): one column per annotator,
    # or a long `id, annotator, label` file; the given label is their majority vote unless
    # `label_col` names one. None (the default) leaves the run key as it was before them.
    annotator_cols: tuple[str, ...] | None = None
    annotations: str | None = None
    # What people call the source when its path says nothing: an uploaded file is stored by
    # content hash (`_uploads/8983d08bfa8a36c0.csv`), so the app passes the file's own name.
    # Titles, the runs table and export file names show it; a label, not data, so it is in
    # neither the run key nor the dataset fingerprint (the same bytes keep their run).
    source_name: str | None = None


@dataclass(frozen=True)
class TrainConfig:
    """How each model is trained; `None` fields take the recipe's default."""

    # auto | mlp | cnn | cnn32 | resnet18 | probe | tfidf | finetune, or a comma list of 2+
    # of them ("tfidf,probe"): several model families scored as one run (training.families)
    recipe: str = "auto"
    model: str | None = None  # encoder for `probe`/`finetune`, text or image (HF name or path)
    max_length: int | None = None  # text: tokens kept per example (pair: both parts); None -> 128
    # Text longer than max_length tokens, for the encoder's embeddings (probe, and the
    # label-free embeddings): "chunk" reads all of it as overlapping windows of max_length
    # tokens, averaged; "truncate" keeps the first max_length (finetune always truncates).
    long_text: str = "chunk"
    runs: int = 5  # R independent runs; run r uses seed base_seed + r
    epochs: int | None = None  # T
    early_epoch: int | None = None  # EL2N's epoch t (1-based); None -> about 10% of T
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    base_seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N


# How a text longer than --max-length tokens is embedded (scoring/training/embed.py).
LONG_TEXT = ("chunk", "truncate")

# Kinds of synthetic label noise (scoring/data/noise.py says exactly what each does).
NOISE_KINDS = ("uniform", "asymmetric", "pair")


@dataclass(frozen=True)
class NoiseConfig:
    """Synthetic label noise for the label-noise check (scoring/data/noise.py)."""

    fraction: float = 0.0
    seed: int = 0
    # uniform: Data Diet's permutation of a random fraction; asymmetric: class-conditional
    # flips to a confusable class (Patrini 2017); pair: class c -> c + 1 mod K (Han 2018).
    kind: str = "uniform"


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
        """The JSON form (`from_dict` reads it back); `data.source_name` only when given,
        so the records of runs without one read as they did before it existed."""
        d = dataclasses.asdict(self)
        if d["data"]["source_name"] is None:
            del d["data"]["source_name"]
        return d

    def validate(self) -> ScoreConfig:
        """Check every number and name that needs no data; returns the config itself.

        The one place a config's own values are checked: the CLI calls it for flags and for
        `--config` files, and `steps.prepare` calls it for every other caller (the app's
        jobs, the API), before any data loads. What depends on the data (`prototypes` at
        most the number of training examples, `max_length` within the encoder's limit) is
        checked in `prepare`, still before a run folder exists.

        Raises
        ------
        InputError
            Naming the flag, what was expected and what was given.
        """
        _check_data(self.data)
        _check_train(self.train)
        _check_noise(self.noise)
        _integer(self.cv_folds, "--cv-folds", low=2)
        _integer(self.prototypes, "--prototypes", low=1, optional=True)
        g = self.grads
        _text(g.at, "--grad-at")
        _text(g.params, "--grad-params")
        _integer(g.checkpoints, "--checkpoints", low=1, optional=True)
        return self

    def key(self) -> str:
        """Content hash of the config and the scoring version (never of Python objects).

        The data's paths (and `source_name`, its name for people) are left out: a run lives
        under its dataset's content fingerprint (`<cache>/<fingerprint>/<key>`), so the same
        file reached by another path, moved or uploaded under another name, finds the same
        entry.
        """
        config = self.to_dict()
        config["data"] = {**config["data"], "source": None, "test": None}
        config["data"].pop("source_name", None)  # a label for people: never part of the key
        for name in ("annotator_cols", "annotations"):  # keys from before them stay
            if config["data"][name] is None:
                del config["data"][name]
        if "annotations" in config["data"]:  # a path, like source: its content is in the
            config["data"]["annotations"] = True  # fingerprint, so a moved file still hits
        if config["noise"]["kind"] == "uniform":  # the default: keys from before kinds stay
            del config["noise"]["kind"]
        if config["train"]["long_text"] == "truncate":  # what every run did before chunking:
            del config["train"]["long_text"]  # such runs keep their keys
        if config["train"]["recipe"] == "auto" and config["train"]["model"] is None:
            config["train"]["auto"] = AUTO_RECIPES
        payload = json.dumps(
            {"config": config, "scoring_version": SCORING_VERSION},
            sort_keys=True,
            default=list,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScoreConfig:
        """The inverse of `to_dict` (a job's `--config` file); missing fields take defaults.

        Raises InputError for a field no config has or a value of the wrong kind, so a
        hand-written file gets one line saying what to fix.
        """
        _known(d, cls, "config")
        sections = {
            "data": DataConfig,
            "train": TrainConfig,
            "noise": NoiseConfig,
            "grads": GradConfig,
        }
        for name, section in sections.items():
            if not isinstance(d.get(name, {}), dict):
                raise InputError(f"config: {name!r} must be an object, got {d[name]!r}")
            _known(d.get(name, {}), section, f"config.{name}")
        data = dict(d.get("data", {}))
        if isinstance(data.get("input_cols"), str):  # one column, written as a name
            data["input_cols"] = (data["input_cols"],)
        elif isinstance(data.get("input_cols"), list):  # JSON has lists, configs tuples
            data["input_cols"] = tuple(data["input_cols"])
        if isinstance(data.get("annotator_cols"), list):  # JSON has lists, configs tuples
            data["annotator_cols"] = tuple(data["annotator_cols"])
        scores = d.get("scores", ("all",))
        if not isinstance(scores, list | tuple) or not all(isinstance(v, str) for v in scores):
            raise InputError(f"config: 'scores' must be a list of score keys, got {scores!r}")
        return cls(
            data=DataConfig(**data),
            train=TrainConfig(**d.get("train", {})),
            noise=NoiseConfig(**d.get("noise", {})),
            scores=tuple(scores),
            cv_folds=d.get("cv_folds", 5),
            prototypes=d.get("prototypes"),
            grads=GradConfig(**d.get("grads", {})),
        )


# Seeds feed numpy's and torch's generators; 2^32 - 1 is the largest every one of them takes
# (legacy RandomState, UMAP's random_state), and negative seeds none of them take.
MAX_SEED = 2**32 - 1


def _check_data(d: DataConfig) -> None:
    """`ScoreConfig.validate` for the data section."""
    if not isinstance(d.source, str):  # an empty one is data.load's to explain
        raise InputError(f"--dataset must be a text, got {d.source!r}")
    _text(d.test, "--test", optional=True)
    _text(d.source_name, "data.source_name", optional=True)
    _text(d.label_col, "--label-col", optional=True)
    if d.input_cols is not None and (
        not isinstance(d.input_cols, tuple)
        or not all(isinstance(c, str) and c for c in d.input_cols)
    ):
        raise InputError(f"--input-col must be one or two column names, got {d.input_cols!r}")
    _check_annotator_options(d)
    _integer(d.limit, "--limit", low=1, optional=True)
    _number(d.test_fraction, "--test-fraction")
    if not 0 < d.test_fraction < 1:
        raise InputError(
            f"--test-fraction must lie strictly between 0 and 1, got {d.test_fraction}; "
            "e.g. 0.2 holds out a fifth of the examples"
        )
    check_seed(d.split_seed, "--split-seed")


def _check_annotator_options(d: DataConfig) -> None:
    """`--annotator-cols` (two or more names) or `--annotations FILE`, not both."""
    _text(d.annotations, "--annotations", optional=True)
    cols = d.annotator_cols
    if cols is None:
        return
    if not isinstance(cols, tuple) or not all(isinstance(c, str) and c for c in cols):
        raise InputError(f"--annotator-cols must be column names, got {cols!r}")
    if len(set(cols)) < 2:
        raise InputError(
            f"--annotator-cols needs two or more distinct columns, got {', '.join(cols)}: "
            "a single column of labels is a label column (pass it as --label-col)"
        )
    if d.annotations is not None:
        raise InputError(
            "give either --annotator-cols (one column per annotator) or --annotations FILE "
            "(a long id, annotator, label table), not both"
        )


def _check_train(t: TrainConfig) -> None:
    """`ScoreConfig.validate` for the training section."""
    for value, flag in ((t.recipe, "--recipe"), (t.device, "--device")):
        _text(value, flag)
    recipe_families(t.recipe)
    _text(t.model, "--model", optional=True)
    _integer(t.max_length, "--max-length", low=8, optional=True, unit=" tokens")
    if t.long_text not in LONG_TEXT:
        raise InputError(f"--long-text must be one of {', '.join(LONG_TEXT)}, got {t.long_text!r}")
    _integer(t.runs, "--runs", low=1)
    _integer(t.epochs, "--epochs", low=1, optional=True)
    _integer(t.early_epoch, "--early-epoch", low=1, optional=True)
    _integer(t.batch_size, "--batch-size", low=1, optional=True)
    for value, flag in ((t.lr, "--lr"), (t.weight_decay, "train.weight_decay")):
        if value is not None:
            _number(value, flag)
    if t.lr is not None and not t.lr > 0:
        raise InputError(f"--lr must be positive, got {t.lr}")
    if t.weight_decay is not None and not t.weight_decay >= 0:
        raise InputError(f"train.weight_decay must be 0 or more, got {t.weight_decay}")
    check_seed(t.base_seed, "--seed")


def recipe_families(recipe: str) -> tuple[str, ...]:
    """The model families `--recipe` names: ("tfidf", "probe") for "tfidf,probe", and the one
    name of a single recipe.

    A list names 2 or more distinct recipes, without `auto` (it picks one recipe from the
    data) and without spaces (the text enters the run key as written); whether each name is
    a recipe that fits the data is checked with the data (`training.families.prepare`).

    Raises
    ------
    InputError
        Naming what was expected, with an example.
    """
    if "," not in recipe:
        return (recipe,)
    names = tuple(recipe.split(","))
    expected = "expected a comma list of 2 or more distinct recipes, e.g. tfidf,probe"
    if any(not n or n != n.strip() for n in names):
        raise InputError(f"--recipe {recipe!r} has an empty name or a space; {expected}")
    if "auto" in names:
        raise InputError(
            f"--recipe {recipe!r}: auto picks one recipe and cannot be one of several; {expected}"
        )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"--recipe {recipe!r} names {', '.join(twice)} twice; {expected}")
    return names


def _check_noise(n: NoiseConfig) -> None:
    """`ScoreConfig.validate` for the label-noise check."""
    _number(n.fraction, "--noise")
    if not 0 <= n.fraction < 1:
        raise InputError(f"--noise must be a fraction in [0, 1), got {n.fraction}")
    check_seed(n.seed, "--noise-seed")
    if n.kind not in NOISE_KINDS:
        raise InputError(f"--noise-kind must be one of {', '.join(NOISE_KINDS)}, got {n.kind!r}")


def check_seed(value: Any, flag: str) -> int:
    """`value` if it is a seed: an integer in [0, 2^32 - 1]; else InputError naming `flag`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise InputError(f"{flag} must be an integer from 0 to {MAX_SEED}, got {value!r}")
    return value


def _integer(value: Any, flag: str, *, low: int, optional: bool = False, unit: str = "") -> None:
    """An int (never a bool or float) of at least `low`; None passes when `optional`."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{flag} must be a whole number, got {value!r}")
    if value < low:
        raise InputError(f"{flag} must be at least {low}{unit}, got {value}")


def _number(value: Any, flag: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InputError(f"{flag} must be a number, got {value!r}")


def _text(value: Any, flag: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise InputError(f"{flag} must be a non-empty text, got {value!r}")


def _known(d: dict[str, Any], cls: type, where: str) -> None:
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}")


def parse_names(text: str | None) -> tuple[str, ...] | None:
    """Comma-separated names (`--scores`, `--input-col`, the app's text boxes) as a tuple.

    None for no names, so "" and None both mean "not given".
    """
    if text is None:
        return None
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    return names or None


# Presets change the training budget only; whatever the user set explicitly overrides them.
# A recipe's own entry inside a preset overrides the preset's general values.
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
# The fields a preset may set, and where each lives in a ScoreConfig.
PRESET_FIELDS: dict[str, str] = {
    "runs": "train",
    "epochs": "train",
    "max_length": "train",
    "cv_folds": "",
}


def preset_values(name: str, recipe: str) -> dict[str, Any]:
    """The budget a preset sets for a recipe, e.g. `{"runs": 2, "epochs": 4, "cv_folds": 2}`.

    Raises InputError for an unknown preset name.
    """
    if name not in PRESETS:
        raise InputError(f"preset must be one of {', '.join(sorted(PRESETS))}, got {name!r}")
    preset = PRESETS[name]
    values = {k: v for k, v in preset.items() if k in PRESET_FIELDS}
    values.update(preset.get(recipe, {}))
    return values


def apply_preset(config: ScoreConfig, name: str, *, keep: Collection[str] = ()) -> ScoreConfig:
    """`config` with preset `name`'s budget for its recipe, except the fields in `keep`.

    The CLI and the app both call this, so `--preset tiny` and the app's "tiny" give the same
    config (and the same cache key).

    Parameters
    ----------
    config : ScoreConfig
        The config as the user gave it.
    name : str
        A key of `PRESETS`.
    keep : collection of str
        Names from `PRESET_FIELDS` the user set explicitly (a flag, a filled-in box): the
        preset leaves them alone.

    Returns
    -------
    ScoreConfig
    """
    values = {k: v for k, v in preset_values(name, config.train.recipe).items() if k not in keep}
    train = {k: v for k, v in values.items() if PRESET_FIELDS[k] == "train"}
    top = {k: v for k, v in values.items() if PRESET_FIELDS[k] == ""}
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **train), **top)
