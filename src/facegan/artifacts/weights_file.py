"""Networks as one .npz file: how shipped models store their weights.

Keys are "<network>/<variable path>" (Keras' unique variable paths), values
the variables' arrays, in float16 by default: half the bytes of a checkpoint,
and a generator's images stay within 1/255 of float32's (measured when a model
is made; `tools/make_model.py`). Loading checks every key and shape, so a file
that does not fit the network fails with one line instead of a half-loaded model.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path

import keras
import numpy as np

from facegan.errors import UserError, write_error


class WeightsFileError(UserError):
    """A weights file does not fit the networks it is loaded into."""


def network_arrays(name: str, model: keras.Model, dtype=np.float16) -> dict[str, np.ndarray]:
    """{"<name>/<variable path>": array} of every variable of `model` (weights and statistics)."""
    out = {}
    for variable in model.variables:
        value = np.asarray(variable.numpy())
        floating = np.issubdtype(value.dtype, np.floating)
        out[f"{name}/{variable.path}"] = value.astype(dtype) if floating else value
    return out


def write_weights(path: Path, networks: Mapping[str, keras.Model], dtype=np.float16) -> None:
    """Writes the networks to `path` atomically (a temporary file, then a rename)."""
    arrays: dict[str, np.ndarray] = {}
    for name, model in networks.items():
        arrays.update(network_arrays(name, model, dtype))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_bytes(buffer.getvalue())
        os.replace(partial, path)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise write_error(f"could not write weights {str(path)!r}", err) from None


def load_weights(path: Path, networks: Mapping[str, keras.Model]) -> None:
    """Assigns the arrays in `path` to the networks, each cast to its variable's dtype.

    Raises:
        WeightsFileError: a variable missing from the file, or of another shape.
    """
    with np.load(path) as stored:
        for name, model in networks.items():
            for variable in model.variables:
                key = f"{name}/{variable.path}"
                if key not in stored:
                    raise WeightsFileError(
                        f"{str(path)!r} has no {key!r}: it was saved from another network"
                    )
                value = stored[key]
                if tuple(value.shape) != tuple(variable.shape):
                    raise WeightsFileError(
                        f"{str(path)!r}: {key!r} has shape {tuple(value.shape)}, the network "
                        f"needs {tuple(variable.shape)}"
                    )
                variable.assign(value.astype(variable.dtype))
