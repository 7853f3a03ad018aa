"""Training: the public API, the session loop, the compiled step and its state.

- `api`: `train` and `resume` (one shared set-up) -> a `Session`.
- `loop`: `run_session`, the outer Python loop (log, sample, evaluate, checkpoint).
- `steps`: the compiled per-replica train step, one factory per algorithm.
- `state`: models, optimizers and counters, and what a checkpoint holds.
- `augment`, `precision`, `distribute`, `health`, `stopping`, `console`: its parts.
"""

from facegan.training.api import resume, train

__all__ = ["resume", "train"]
