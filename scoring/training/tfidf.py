"""The `tfidf` recipe's inputs: TF-IDF of word 1-2-grams, reduced to a dense table (LSA).

A classical text model, strong where a small frozen encoder is weak: long texts (which a
128-token encoder window cuts) and domain words it never saw. The head on top is the
`probe` head, trained by the same loop, so every dynamics score, the gradient scores and
cross-fitting work unchanged.

Why a dense reduction rather than the sparse matrix itself (measured by hand on SST-2 and on
`bench/long_reviews.py`'s 2,000 long reviews, 2 cores; docs/benchmarks.md):
- Accuracy is about the same. Long reviews, held-out accuracy: logistic regression on the
  full 65,536-column TF-IDF 0.894; a linear layer on it trained by Adam (batches densified
  one at a time) 0.880; the `probe` head on 512 SVD components 0.875 ± 0.006 (3 seeds); on
  256 components 0.838, 1,024 components 0.866 (one seed each); a random Gaussian
  projection to 1,024 columns (logistic regression on it) 0.650. SST-2 (2,000 sentences, a
  5,688-n-gram vocabulary): full TF-IDF + logistic regression 0.750, 512 components + head
  0.729.
- Everything downstream takes an (N, D) float32 table: the stored model inputs and
  retraining, the penultimate features every run keeps (a 65,536-wide linear model's
  features would be its input), `vog`'s input gradients (K x B x 65,536 per chunk) and the
  per-example gradients of all weights (a 65,536 x 256 first layer is 17 M parameters).
- Training is 3-4x faster per run than the densified sparse linear layer (a 256-unit head
  on 512 columns vs a 65,536-column layer).

Leakage: the vocabulary, the idf weights and the SVD are fitted on every training row, the
rows a cross-fit fold holds out included. That uses no label, so a fold's held-out labels
never reach its model (as the frozen encoder of `probe` is the same for every fold); the
held-out/test rows are only transformed. The table is cached per dataset
(`tfidf_key` names the settings), and the same table is the run's label-free embedding
(`prototype`, duplicates, outliers, leakage): it never sees a label either, and a `tfidf`
run needs no transformer at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
from scipy import sparse

from scoring.errors import InputError

NGRAMS = (1, 2)  # words and word pairs
MAX_FEATURES = 2**16  # the most frequent 65,536 n-grams (scikit-learn's max_features)
MIN_DF = 2  # an n-gram seen in a single training text cannot generalise; dropping it halves V
N_COMPONENTS = 512  # SVD width: the measured sweet spot (module note)
SVD_SEED = 0  # fixed: the table belongs to the data, not to a run's seed
# Bump when anything above or the computation below changes: it names the cached table.
TFIDF_VERSION = 1


def tfidf_key() -> str:
    """Cache name of a dataset's TF-IDF table: every setting that shapes it."""
    ident = {
        "features": "tfidf",
        "ngrams": list(NGRAMS),
        "max_features": MAX_FEATURES,
        "min_df": MIN_DF,
        "n_components": N_COMPONENTS,
        "seed": SVD_SEED,
        "version": TFIDF_VERSION,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def documents(texts: Sequence[str | tuple[str, str]]) -> list[str]:
    """Texts as TF-IDF documents: a sentence pair's two parts joined by a space (a bag of
    n-grams has no notion of which part a word came from)."""
    return [" ".join(t) if isinstance(t, tuple) else t for t in texts]


def tfidf_matrices(
    train: Sequence[str | tuple[str, str]], test: Sequence[str | tuple[str, str]]
) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """TF-IDF of word 1-2-grams, fitted on the training texts only.

    Sublinear tf (1 + log tf), smooth idf (log((1 + n) / (1 + df)) + 1), rows L2-normalised:
    scikit-learn's `TfidfVectorizer` with `MIN_DF` and `MAX_FEATURES`.

    Returns
    -------
    x_train : csr_matrix of shape (n_examples, n_terms), float32
    x_test : csr_matrix of shape (n_test, n_terms), float32
        Test rows use the training vocabulary and idf; an unseen word counts for nothing.

    Raises
    ------
    InputError
        When no word or word pair occurs in two training texts.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        ngram_range=NGRAMS,
        sublinear_tf=True,
        min_df=MIN_DF,
        max_features=MAX_FEATURES,
        dtype=np.float32,
    )
    try:
        x_train = vectorizer.fit_transform(documents(train))
    except ValueError as err:  # an empty vocabulary after min_df
        raise InputError(
            f"--recipe tfidf: no word or word pair occurs in {MIN_DF} or more training texts "
            f"({len(train)} texts), so there is nothing to learn from; use --recipe probe"
        ) from err
    x_test = vectorizer.transform(documents(test)) if len(test) else None
    if x_test is None:
        x_test = sparse.csr_matrix((0, x_train.shape[1]), dtype=np.float32)
    return x_train.tocsr(), x_test.tocsr()


def reduce(x_train: sparse.csr_matrix, x_test: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Project both onto the top singular directions of the training rows (LSA).

    The width is `N_COMPONENTS`, or min(n_examples, n_terms) when that is smaller: then the
    projection spans the training rows and keeps every inner product with them exactly.
    Rows are not normalised again: a row's norm says how much of its TF-IDF the components
    hold, and unit rows lost accuracy (long reviews, the probe head, 3 seeds: 0.863 ± 0.004
    unit rows vs 0.875 ± 0.006 as projected; SST-2 0.731 vs 0.729).

    Returns
    -------
    z_train : ndarray of shape (n_examples, n_components), float32
    z_test : ndarray of shape (n_test, n_components), float32
        A row with no known n-gram stays zero.
    """
    from sklearn.decomposition import TruncatedSVD

    width = min(N_COMPONENTS, *x_train.shape)
    svd = TruncatedSVD(width, algorithm="randomized", random_state=SVD_SEED)
    svd.fit(x_train)
    components = svd.components_.astype(np.float32).T  # (V, D)
    return _dense(x_train @ components), _dense(x_test @ components)


def _dense(z: np.ndarray) -> np.ndarray:
    """float32, C-ordered."""
    return np.ascontiguousarray(z, dtype=np.float32)


def tfidf_features(
    train: Sequence[str | tuple[str, str]], test: Sequence[str | tuple[str, str]]
) -> dict[str, np.ndarray]:
    """The `tfidf` recipe's model inputs: `tfidf_matrices` reduced by `reduce`.

    Returns
    -------
    dict with ``train`` of shape (n_examples, D) and ``test`` of shape (n_test, D), float32
    """
    z_train, z_test = reduce(*tfidf_matrices(train, test))
    return {"train": z_train, "test": z_test}
