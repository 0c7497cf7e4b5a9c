"""Evaluation harness: train a model on poisoned (and defended) data, report clean test
accuracy per epoch, its peak (with the epoch) and the final value."""
