"""Model recipes: which network, optimiser and schedule a modality gets.

Every model is `head(body(x))`: `body` maps an input batch to penultimate features
(used by the `prototype` score and the app's embedding map), `head` is one linear layer to
the K logits. A recipe is plain data (`Recipe`), so its defaults enter the cache key through
the resolved config rather than through Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from scoring.errors import InputError

RECIPES = ("mlp", "cnn", "cnn32", "resnet18", "probe", "tfidf", "finetune")
TEXT_RECIPES = frozenset({"probe", "tfidf", "finetune"})
# Text recipes that load a transformer (its config and tokenizer are checked before any work).
ENCODER_RECIPES = frozenset({"probe", "finetune"})
# Recipes over frozen encoder embeddings: text always; images with the bundled
# EfficientNet-Lite0 or a pretrained --model.
EMBEDDING_RECIPES = frozenset({"probe"})
IMAGE_RECIPES = frozenset({"mlp", "cnn", "cnn32", "resnet18", "probe"})


@dataclass(frozen=True)
class Recipe:
    """Resolved training recipe; every field is explicit so it can be hashed and recorded."""

    name: str
    epochs: int
    batch_size: int
    optimizer: str  # "adam" | "sgd" | "adamw" (with linear warm-up and decay)
    lr: float
    weight_decay: float
    early_epoch: int  # 1-based epoch whose training-pass softmax feeds EL2N


# Defaults per recipe: (epochs, batch_size, optimizer, lr, weight_decay).
# The digits MLP is sized so 5 runs + 5 cross-fit folds take well under a minute on 2 cores.
_DEFAULTS: dict[str, tuple[int, int, str, float, float]] = {
    "mlp": (30, 64, "adam", 1e-3, 0.0),
    "cnn": (30, 64, "adam", 1e-3, 0.0),
    "cnn32": (15, 128, "sgd", 0.05, 5e-4),
    "resnet18": (30, 128, "sgd", 0.1, 5e-4),
    "probe": (20, 64, "adam", 1e-3, 0.0),
    # The probe's head over TF-IDF's 512 SVD components (scoring/training/tfidf.py).
    "tfidf": (20, 64, "adam", 1e-3, 0.0),
    # BERT-style fine-tuning: AdamW, linear warm-up over the first 10% of steps, then decay.
    "finetune": (3, 16, "adamw", 5e-5, 0.01),
}


# Models this small run fastest on one thread: splitting their tiny matmuls across cores
# costs more in synchronisation than it saves (measured: 0.4 s vs 0.7 s per 10 digits epochs).
SINGLE_THREAD_RECIPES = frozenset({"mlp", "cnn", "probe", "tfidf"})


def auto_recipe(modality: str, input_shape: tuple[int, ...], model: str | None = None) -> str:
    """Pick a recipe from the data: text -> probe; images with a pretrained encoder (`model`)
    -> probe; tiny images (16 px or less) -> mlp; larger images -> probe on the bundled,
    offline EfficientNet-Lite0 (`scoring.training.efficientnet`).

    Tiny images stay with the from-scratch MLP: upscaled 8x8 digits are far from ImageNet
    photos, and the MLP was both more accurate and about 100x faster there
    (bench/image_encoder.py --digits, docs/benchmarks.md "The bundled image encoder")."""
    if modality == "text" or model:
        return "probe"
    height, width = input_shape[-2:]
    return "mlp" if max(height, width) <= 16 else "probe"


def resolve_recipe(
    name: str,
    *,
    modality: str,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    weight_decay: float | None = None,
    early_epoch: int | None = None,
) -> Recipe:
    """Fill a recipe's defaults and check it fits the modality."""
    if name not in RECIPES:
        raise InputError(f"unknown recipe {name!r}; expected one of: auto, {', '.join(RECIPES)}")
    fitting = TEXT_RECIPES if modality == "text" else IMAGE_RECIPES
    if name not in fitting:
        fits = (
            "probe, tfidf or finetune"
            if modality == "text"
            else "mlp, cnn, cnn32, resnet18, or probe (the bundled EfficientNet-Lite0, or a "
            "pretrained image encoder by --model)"
        )
        raise InputError(f"recipe {name!r} does not fit {modality} data; use {fits}")
    d_epochs, d_batch, opt, d_lr, d_wd = _DEFAULTS[name]
    epochs = d_epochs if epochs is None else epochs
    if epochs < 1:
        raise InputError(f"--epochs must be at least 1, got {epochs}")
    # Data Diet computes EL2N about 10% into training (epoch 20 of 200).
    early = max(1, round(0.1 * epochs)) if early_epoch is None else early_epoch
    if not 1 <= early <= epochs:
        raise InputError(f"--early-epoch must be between 1 and --epochs ({epochs}), got {early}")
    batch_size = d_batch if batch_size is None else batch_size
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    lr = d_lr if lr is None else lr
    if not lr > 0:
        raise InputError(f"--lr must be positive, got {lr}")
    return Recipe(
        name=name,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=opt,
        lr=lr,
        weight_decay=d_wd if weight_decay is None else weight_decay,
        early_epoch=early,
    )


class Classifier(nn.Module):
    """`head(body(x))`, with the body's output exposed as features."""

    def __init__(self, body: nn.Module, n_features: int, n_classes: int) -> None:
        super().__init__()
        self.body = body
        self.head = nn.Linear(n_features, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (B, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))  # (B, K)


def _mlp_body(n_in: int, hidden: int = 256, n_out: int = 128) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out), nn.ReLU()
    )


def _conv_bn(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()
    )


def _small_cnn_body(channels: int) -> nn.Module:
    """For tiny images (8x8 digits): two conv blocks, one pooling, global average."""
    return nn.Sequential(
        _conv_bn(channels, 32),
        _conv_bn(32, 64),
        nn.MaxPool2d(2),
        _conv_bn(64, 128),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def _cnn32_body(channels: int) -> nn.Module:
    """A CPU-sized CNN for 32x32 images (about 0.3 M parameters)."""
    return nn.Sequential(
        _conv_bn(channels, 32),
        _conv_bn(32, 64),
        nn.MaxPool2d(2),  # 16x16
        _conv_bn(64, 128),
        nn.MaxPool2d(2),  # 8x8
        _conv_bn(128, 128),
        nn.MaxPool2d(2),  # 4x4
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


def _resnet18_body(channels: int) -> nn.Module:
    """ResNet-18, CIFAR variant (3x3 stem, no max-pool), as in Data Diet; meant for a GPU."""
    layers: list[nn.Module] = [_conv_bn(channels, 64)]
    c_in = 64
    for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [_BasicBlock(c_in, c_out, stride), _BasicBlock(c_out, c_out, 1)]
        c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


def build_model(
    recipe: str, input_shape: tuple[int, ...], n_classes: int, *, encoder: str | None = None
) -> nn.Module:
    """A fresh model, randomly initialised (seed torch before calling).

    Parameters
    ----------
    recipe : one of RECIPES
    input_shape : shape of one example: (C, H, W) for images, (D,) for probe embeddings,
        (3, L) for finetune token tensors
    n_classes : K
    encoder : str, optional
        finetune only: the pretrained encoder (local folder or Hub name; default MiniLM).
        Its weights are loaded, only the head is random.
    """
    if recipe == "finetune":
        from scoring.training.embed import load_encoder
        from scoring.training.text_models import TextClassifier

        return TextClassifier(load_encoder(encoder), n_classes)
    if recipe == "mlp":
        n_in = 1
        for s in input_shape:
            n_in *= s
        return Classifier(_mlp_body(n_in), 128, n_classes)
    if recipe == "cnn":
        return Classifier(_small_cnn_body(input_shape[0]), 128, n_classes)
    if recipe == "cnn32":
        return Classifier(_cnn32_body(input_shape[0]), 128, n_classes)
    if recipe == "resnet18":
        return Classifier(_resnet18_body(input_shape[0]), 512, n_classes)
    if recipe in ("probe", "tfidf"):
        # A small head over frozen text or image embeddings (or TF-IDF's SVD components); the
        # hidden layer is the features.
        body = nn.Sequential(nn.Linear(input_shape[0], 256), nn.ReLU())
        return Classifier(body, 256, n_classes)
    raise InputError(f"unknown recipe {recipe!r}; expected one of: {', '.join(RECIPES)}")


def pick_device(device: str) -> torch.device:
    """`auto` -> CUDA when present, else CPU; an explicit CUDA request without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device} asked for CUDA but none is available; use auto or cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise InputError(f"--device: expected auto, cpu, cuda or cuda:N, got {device!r}") from err
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(
            f"--device {device} asked for CUDA device {dev.index}, but only "
            f"{torch.cuda.device_count()} are visible; use cuda or auto"
        )
    return dev
