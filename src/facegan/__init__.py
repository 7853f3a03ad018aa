"""facegan: train GANs that generate realistic human faces, with TensorFlow.

    import facegan
    run = facegan.train(facegan.get_preset("quick-32"))
    images = facegan.load(run.directory).generate(16, seed=7)  # uint8 [16, H, W, C]

`import facegan` is cheap: TensorFlow is imported on first use of `train`,
`resume` or `load`.
"""

from facegan.config import Config, ConfigError
from facegan.errors import Interrupted, UserError
from facegan.presets import get_preset, preset_names

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigError",
    "Interrupted",
    "UserError",
    "get_preset",
    "load",
    "make_strategy",
    "preset_names",
    "resume",
    "train",
    "__version__",
]


def __getattr__(name: str):
    if name in ("train", "resume"):
        from facegan.training import api

        return getattr(api, name)
    if name == "make_strategy":
        from facegan.training.distribute import make_strategy

        return make_strategy
    if name == "load":
        from facegan.artifacts.run import load

        return load
    raise AttributeError(f"module 'facegan' has no attribute {name!r}")
