"""Frequency low-pass of the RSK+FF defense: which coefficients are kept and the basis
rows poisonkit.ops.lowpass projects onto (built in poisonkit._lowpass_bases, which the
ops import without importing the defenses)."""
from .._lowpass_bases import (BASES, SHAPES, axis_basis, check_options, dct_rank, disk_mask,
                              fft_radius, lowpass_factors, projector)

__all__ = ["BASES", "SHAPES", "axis_basis", "check_options", "dct_rank", "disk_mask", "fft_radius",
           "lowpass_factors", "projector"]
