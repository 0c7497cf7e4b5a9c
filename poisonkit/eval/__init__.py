"""Evaluation harness: train a model on poisoned (and defended) data, report clean test
accuracy per epoch, its peak (with the epoch) and the final value; reference protocols,
the DFR probe and `reproduce` (paper tables). From Python: poisonkit.eval.evaluate."""
from .api import evaluate

__all__ = ["evaluate"]
