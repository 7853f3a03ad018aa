"""Training: state, the compiled step, and the outer loop."""

from facegan.training.loop import resume, train

__all__ = ["resume", "train"]
