"""The `finetune` recipe's model: a Hugging Face encoder with a classification head.

Texts are tokenized once into one integer tensor per split, shape (N, 3, L): token ids,
attention mask and token-type ids, padded to the split's longest example. Keeping them in
one tensor lets the training loop, prediction and the gradient scores index and batch
token inputs exactly like images; `trim_padding` then cuts each batch to its own longest
example (dynamic padding), which gives the same numbers as the full width because padding
is masked out everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from scoring.training.embed import load_tokenizer

IDS, MASK, TYPES = 0, 1, 2  # rows of a token tensor (B, 3, L)


def is_tokens(x: torch.Tensor) -> bool:
    """Whether a batch is a token tensor (B, 3, L) of integers."""
    return x.dim() == 3 and x.shape[1] == 3 and not torch.is_floating_point(x)


def trim_padding(x: torch.Tensor) -> torch.Tensor:
    """Cut a token batch (B, 3, L) to its longest real example; other inputs pass through."""
    if not is_tokens(x):
        return x
    length = int(x[:, MASK].sum(1).max())
    return x[..., : max(length, 1)]


def tokenize(
    texts: Sequence[str | tuple[str, str]], *, model: str | None, max_length: int
) -> np.ndarray:
    """Token tensor of shape (n_examples, 3, L), int64, L = the longest example (<= max_length).

    Sentence pairs are tokenized as pairs (`[CLS] a [SEP] b [SEP]`, token types 0 then 1).
    """
    tok = load_tokenizer(model)
    kw = dict(padding=True, truncation=True, max_length=max_length, return_tensors="np")
    if texts and isinstance(texts[0], tuple):
        enc = tok([a for a, _ in texts], [b for _, b in texts], **kw)
    else:
        enc = tok(list(texts), **kw)
    ids = enc["input_ids"]
    types = enc.get("token_type_ids", np.zeros_like(ids))
    return np.stack([ids, enc["attention_mask"], types], axis=1).astype(np.int64)


class TextClassifier(nn.Module):
    """`head(mean-pool(encoder(tokens)))`: the whole encoder is fine-tuned.

    Mean pooling over real tokens matches how sentence encoders such as all-MiniLM-L6-v2 are
    trained; the pooled hidden state is the `features` the prototype score and the map use,
    and the last-layer closed forms act on it.
    """

    def __init__(self, encoder: nn.Module, n_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.hidden_size, n_classes)

    def input_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """Token embeddings (B, L, E) of a token batch: what VoG differentiates against."""
        return self.encoder.get_input_embeddings()(x[:, IDS])

    def input_weights(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) weights of each token in a per-example average: 1 real, 0 padding."""
        return x[:, MASK].to(torch.float32)

    def features_from_embeddings(self, embeds: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mask = x[:, MASK]
        hidden = self.encoder(
            inputs_embeds=embeds, attention_mask=mask, token_type_ids=x[:, TYPES]
        ).last_hidden_state  # (B, L, H)
        weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)  # (B, H)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_from_embeddings(self.input_embeddings(x), x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, K)
