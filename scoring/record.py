"""Score your own training: the public names, `from scoring.record import Recorder`.

- `Recorder`: logs per-example logits from any PyTorch loop (DDP included) and writes a
  normal, done run folder every page and CLI command reads (`scoring.training.record`).
- `WinnowTrainer`: a Hugging Face `Trainer` that records through a Recorder
  (`scoring.training.hf_record`).

They live in `scoring.training`, the one package that imports torch (DESIGN.md); this module
names them lazily, so importing it costs nothing until one is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers only: at run time they load on first use
    from scoring.training.hf_record import WinnowTrainer
    from scoring.training.record import Recorder

__all__ = ["Recorder", "WinnowTrainer"]


def __getattr__(name: str) -> Any:
    if name == "Recorder":
        from scoring.training.record import Recorder

        return Recorder
    if name == "WinnowTrainer":
        from scoring.training.hf_record import WinnowTrainer

        return WinnowTrainer
    raise AttributeError(f"module 'scoring.record' has no attribute {name!r}")
