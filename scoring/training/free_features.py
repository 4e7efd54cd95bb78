"""Label-independent embeddings of the training set: what `prototype` clusters.

Sorscher et al. cluster self-supervised embeddings; a supervised model's features have seen
the (possibly noisy) labels, so prototypes built on them drift toward the label noise. The
embeddings here never see a label and are computed once per run folder, not per run:

- text (`probe` and `finetune`): the frozen pre-trained encoder's mean-pooled embeddings, the
  very table a `probe` run trains on (cached per dataset and encoder setting; a `finetune`
  run computes it once if no probe run has);
- text with `tfidf`: the TF-IDF table it trains on (SVD components, `scoring.training.tfidf`),
  fitted without labels; so a `tfidf` run never loads a transformer;
- images with a pretrained encoder (an image `probe` run: `--recipe auto` on images over
  16 px, with the bundled EfficientNet-Lite0 unless `--model` names another): that
  encoder's pooled embeddings, the very table the probe trains on
  (`steps.image_probe_inputs`);
- other images (the from-scratch recipes: tiny images such as digits, or `--recipe cnn32`
  and the like asked for by name): the raw pixels, flattened, projected by a seeded
  Gaussian matrix to `MAX_DIM` dimensions when they have more (a Johnson-Lindenstrauss
  projection keeps distances and, unlike PCA, does not depend on the data). The
  measurement behind this choice is in `scoring.scores.prototype.PROTOTYPE_DOC`.
"""

from __future__ import annotations

import numpy as np
import torch

from scoring import store
from scoring.data.decode import to_float
from scoring.training.embed import embed_texts, embedding_key
from scoring.training.steps import (
    DEFAULT_MAX_LENGTH,
    Prepared,
    cpu_threads,
    image_probe_inputs,
    tfidf_inputs,
)

MAX_DIM = 256  # projected width for large images (CIFAR: 3,072 -> 256)
PROJECTION_SEED = 0  # fixed: the embedding is a property of the data, not of a run's seed
_BLOCK = 4096  # rows converted and projected at a time


def label_free_features(prep: Prepared) -> np.ndarray:
    """The run folder's label-independent embeddings, computed on first use and stored.

    Returns
    -------
    ndarray of shape (n_examples, n_features), float32
        Rows in training order. No label (given, noisy or true) enters them.
    """
    rd = prep.run_dir
    if rd.features_free_file.exists():
        return store.load_arrays(rd.features_free_file)["features"]
    if prep.dataset.modality == "image" and prep.recipe.name == "probe":
        features = image_probe_inputs(prep)[0].numpy()  # (N, D), cached per encoder
    elif prep.dataset.modality == "image":
        features = pixel_features(prep.dataset.train.inputs, prep.dataset.pixel_divisor)
    elif prep.recipe.name == "tfidf":
        features = tfidf_inputs(prep)[0].numpy()  # (N, D): the very table it trains on
    else:
        features = _encoder_embeddings(prep)
    features = np.ascontiguousarray(features, dtype=np.float32)
    store.save_arrays(rd.features_free_file, features=features)
    return features


def label_free_test_features(prep: Prepared) -> np.ndarray:
    """The held-out/test rows' label-free embeddings, by the very transform of the training
    rows' (`label_free_features`): what `leakage` compares the training rows with.

    Stored beside them in `features_free_test.npz`.

    Returns
    -------
    ndarray of shape (n_test, n_features), float32
        Rows in the dataset's test order; no rows when there is no held-out split.
    """
    rd = prep.run_dir
    path = rd.features_free_test_file
    if path.exists():
        return store.load_arrays(path)["features"]
    train = label_free_features(prep)  # first: a text run's call fills the embeddings table
    test = prep.dataset.test
    if len(test.labels) == 0:
        features = np.zeros((0, train.shape[1]), dtype=np.float32)
    elif prep.dataset.modality == "image" and prep.recipe.name == "probe":
        features = image_probe_inputs(prep)[1].numpy()  # (M, D): the encoder's, as for train
    elif prep.dataset.modality == "image":
        features = pixel_features(test.inputs, prep.dataset.pixel_divisor)
    elif prep.recipe.name == "tfidf":
        features = tfidf_inputs(prep)[1].numpy()  # (M, D): the training rows' transform
    else:
        model = prep.config.train.model
        max_length = prep.config.train.max_length or DEFAULT_MAX_LENGTH
        key = embedding_key(model, max_length, prep.config.train.long_text)
        emb = prep.run_dir.embeddings_file(key)
        features = store.load_arrays(emb)["test"]
    features = np.ascontiguousarray(features, dtype=np.float32)
    store.save_arrays(path, features=features)
    return features


def pixel_features(
    images: np.ndarray, divisor: int | None = None, max_dim: int = MAX_DIM
) -> np.ndarray:
    """Flattened pixels as the models take them, randomly projected to `max_dim` dimensions
    when wider.

    Parameters
    ----------
    images : ndarray of shape (n_examples, channels, height, width)
        The models' float inputs; or uint8 pixels with their `divisor` (converted a block of
        rows at a time: no float32 copy of the whole set).
    divisor : int, optional

    Returns
    -------
    ndarray of shape (n_examples, min(channels * height * width, max_dim)), float32
    """
    flat = images.reshape(images.shape[0], -1)  # (N, C*H*W)
    width = min(flat.shape[1], max_dim)
    if flat.shape[1] > max_dim:
        rng = np.random.default_rng(PROJECTION_SEED)
        proj = rng.standard_normal((flat.shape[1], max_dim), dtype=np.float32)
        proj /= np.float32(np.sqrt(max_dim))  # E‖xP‖² = ‖x‖²: distances kept, not rescaled
    out = np.empty((flat.shape[0], width), dtype=np.float32)  # (N, width)
    for start in range(0, flat.shape[0], _BLOCK):
        block = flat[start : start + _BLOCK]
        block = block.astype(np.float32) if divisor is None else to_float(block, divisor)
        # Row by row the same as one product over all rows (the BLAS sums each row alike).
        out[start : start + _BLOCK] = block if width == flat.shape[1] else block @ proj
    return out


def _encoder_embeddings(prep: Prepared) -> np.ndarray:
    """The frozen encoder's training-set embeddings, from the dataset's cached table.

    Computed (train and test, as `steps.tensor_inputs` stores them for `probe`) when absent,
    so a later `probe` run of the same data and encoder setting reuses them.
    """
    model = prep.config.train.model
    max_length = prep.config.train.max_length or DEFAULT_MAX_LENGTH
    long_text = prep.config.train.long_text
    path = prep.run_dir.embeddings_file(embedding_key(model, max_length, long_text))
    if path.exists():
        return store.load_arrays(path)["train"]
    if prep.device.type == "cpu":
        torch.set_num_threads(cpu_threads())  # a transformer forward uses every core
    kw = dict(model=model, max_length=max_length, device=prep.device, long_text=long_text)
    ds = prep.dataset
    arrays = {
        "train": embed_texts(ds.train.inputs, **kw),
        "test": embed_texts(ds.test.inputs, **kw),
    }
    store.save_arrays(path, **arrays)
    return arrays["train"]
