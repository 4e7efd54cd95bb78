"""A long-text sentiment case built from SST-2: "reviews" of 13-25 sentences (about 200-700 tokens).

Why this case: the label of a real review is its overall sentiment, which it states over
many sentences, several of them disagreeing with it ("the acting is fine, but ..."). Each
built review of label y holds n ~ U{13..25} SST-2 sentences, a fraction q ~ U[0.6, 0.8] of
them (rounded) of label y and the rest of the other label, in a random order. So the label
is recoverable only by reading much of the text: the first 128 tokens (about 5 sentences)
are a noisy sample of its majority, and a model that truncates there loses accuracy that
one reading the whole review keeps, which is the failure this benchmark measures.

Training reviews draw from SST-2's training sentences; test reviews from its dev and test
sentences, so no sentence is shared between the two splits (a sentence may appear in several
reviews of one split, never twice in one review). Seeded: the same call writes the same
files.

    python bench/long_reviews.py [--out /tmp/winnow-long] [--train 2000] [--test 500]

writes OUT/train.parquet and OUT/test.parquet (columns `review`, `label`) and prints the
token-length distribution under the default MiniLM tokenizer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sst2"

MIN_SENTENCES, MAX_SENTENCES = 13, 25
MIN_AGREE, MAX_AGREE = 0.6, 0.8  # share of a review's sentences that carry its label


def build_reviews(sentences: pd.DataFrame, n_reviews: int, seed: int) -> pd.DataFrame:
    """`n_reviews` reviews (half of each label) from `sentences` (`sentence`, `label` 0/1).

    Returns
    -------
    DataFrame with columns `review` (str) and `label` (int64), n_reviews rows.
    """
    rng = np.random.default_rng(seed)
    pools = {c: sentences.loc[sentences.label == c, "sentence"].to_numpy() for c in (0, 1)}
    labels = rng.permutation(np.arange(n_reviews) % 2)
    reviews = []
    for y in labels:
        n = int(rng.integers(MIN_SENTENCES, MAX_SENTENCES + 1))
        same = round(rng.uniform(MIN_AGREE, MAX_AGREE) * n)
        parts = np.concatenate(
            [
                rng.choice(pools[y], same, replace=False),
                rng.choice(pools[1 - y], n - same, replace=False),
            ]
        )
        reviews.append(" ".join(rng.permutation(parts)))
    return pd.DataFrame({"review": reviews, "label": labels.astype(np.int64)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/winnow-long")
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train = pd.read_parquet(DATA / "train.parquet")
    held = pd.concat([pd.read_parquet(DATA / f"{s}.parquet") for s in ("dev", "test")])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = {
        "train": build_reviews(train, args.train, args.seed),
        "test": build_reviews(held, args.test, args.seed + 1),
    }
    for name, frame in frames.items():
        frame.to_parquet(out / f"{name}.parquet", index=False)
    sys.path.insert(0, str(ROOT))
    from scoring.training.embed import load_tokenizer

    tok = load_tokenizer(None)
    for name, frame in frames.items():
        lengths = np.array([len(ids) for ids in tok(list(frame.review))["input_ids"]])
        q = np.percentile(lengths, [0, 50, 100]).astype(int)
        print(f"{name}: {len(frame)} reviews, tokens min {q[0]} median {q[1]} max {q[2]}")
    print(out)


if __name__ == "__main__":
    main()
