"""poisonkit: unlearnable-dataset poisons and defenses as fast C++/CUDA kernels."""
from . import ops  # noqa: F401  (registers the torch ops)

__version__ = "0.1.0"
