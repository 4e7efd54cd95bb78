"""The only package that imports torch: recipes and models, the recording training loop,
embeddings, checkpoints, gradient scores, executors, the run steps, the pipeline and
retraining. Nothing outside it may import torch (tests/test_layering.py checks)."""
