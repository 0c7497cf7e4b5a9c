"""Availability poisons: class-wise blur (CUDA), autoregressive perturbations (AR)."""
