"""Per-example scores: one small module per score, and an explicit registry.

Each score is a pure numpy function of arrays a training run recorded; `REGISTRY` names what
each needs, its direction, version and description; `compute` is how callers run one.
"""

from scoring.scores.registry import REGISTRY, Score, ScoreResult, compute, resolve

__all__ = ["REGISTRY", "Score", "ScoreResult", "compute", "resolve"]
