"""Training images: sources (folder, zip, embedded), decoding, scanning, tf.data pipeline.

`sources`, `decode`, `problems`, `scan` and `report` need no TensorFlow (so
`facegan inspect-data` starts at once); `pipeline` does, so import it by name.
"""

from facegan.data.sources import DataError, ImageSource, open_source

__all__ = ["DataError", "ImageSource", "open_source"]
