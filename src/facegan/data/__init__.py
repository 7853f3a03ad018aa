"""Training images: sources (folder, zip, embedded), decoding, tf.data pipeline.

`sources` and `decode` need no TensorFlow; `pipeline` does, so import it by name.
"""

from facegan.data.sources import DataError, ImageSource, open_source

__all__ = ["DataError", "ImageSource", "open_source"]
