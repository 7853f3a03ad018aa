"""facegan's train step behind Keras' `fit`: `facegan.keras.GAN`.

    import facegan.keras
    gan = facegan.keras.GAN.from_preset("quick-32")
    gan.compile()
    gan.fit(keras.utils.image_dataset_from_directory("faces/", labels=None,
                                                     image_size=(32, 32)), epochs=5)

docs/custom-training-loop.md explains the step and when `fit` is enough.
"""

from facegan.keras.callbacks import RunCheckpoint, SampleGrid
from facegan.keras.inputs import InputError, prepare
from facegan.keras.model import GAN

__all__ = ["GAN", "InputError", "RunCheckpoint", "SampleGrid", "prepare"]
