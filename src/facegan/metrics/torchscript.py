"""Read the tensors of a TorchScript or ``torch.save`` zip archive, without torch.

Both formats are a zip archive with a single top-level folder::

    <folder>/data.pkl      the object tree, pickled (protocol 2); a tensor in it names its
                           storage by a *persistent id* instead of holding the bytes
    <folder>/data/<key>    the raw bytes of one storage (little-endian unless said otherwise)
    <folder>/byteorder     optional: "little" or "big"
    <folder>/code/...      TorchScript only: the forward code (read by people, not by us)

A tensor is rebuilt by ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
...)``: a strided view into its storage, all counted in elements. Several tensors may
share one storage (views, slices), so offsets and strides matter.

Unpickling can call any importable function, which is why ``pickle.load`` on an
untrusted file runs arbitrary code. The unpickler here resolves only the few names the
format uses, each to a harmless local stand-in (never to the real object), and refuses
every other name before anything is called. TorchScript module classes
(``__torch__.*``) become inert records that only hold their attributes.

The legacy (pre-1.6, non-zip) ``torch.save`` format is not supported.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from facegan.errors import UserError

# Storage classes a tensor may name, and the element type of their bytes.
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype(np.float32),
    "DoubleStorage": np.dtype(np.float64),
    "HalfStorage": np.dtype(np.float16),
    # numpy has no bfloat16: read the 16-bit patterns and widen them after slicing.
    "BFloat16Storage": np.dtype(np.uint16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
}

# TorchScript wraps typed lists of attributes (e.g. a conv's `padding: List[int]`) in
# these; each just returns its argument.
_JIT_LIST_BUILDERS = {
    "build_intlist",
    "build_doublelist",
    "build_boollist",
    "build_tensorlist",
    "build_strlist",
}


class TorchArchiveError(UserError):
    """The file is not a torch zip archive we can read (or is damaged)."""


class UnsafePickleError(TorchArchiveError):
    """The archive's pickle asks for a global outside the allowed few."""


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class _Storage:
    """One storage's elements as a flat read-only array."""

    key: str
    type: _StorageType
    flat: np.ndarray


class TorchScriptObject:
    """An inert stand-in for a pickled ``__torch__.*`` class (a scripted module).

    It records its TorchScript type name and the attribute dict it was pickled with;
    it has no behaviour, so building one can run nothing.
    """

    torch_type = ""

    def __new__(cls, *args, **kwargs):  # NEWOBJ passes the pickled args: ignore them
        obj = super().__new__(cls)
        obj.state = {}
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = dict(state) if isinstance(state, dict) else {"state": state}

    def __repr__(self) -> str:
        return f"<{self.torch_type} with {len(self.state)} attributes>"


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
) -> np.ndarray:
    """The strided view `size`/`stride` at `storage_offset` (elements) into `storage`, copied."""
    if not isinstance(storage, _Storage):
        raise TorchArchiveError("a tensor does not refer to a storage of the archive")
    size, stride = tuple(int(n) for n in size), tuple(int(s) for s in stride)
    offset = int(storage_offset)
    flat = storage.flat
    if (
        len(size) != len(stride)
        or offset < 0
        or any(n < 0 for n in size)
        or any(s < 0 for s in stride)
    ):
        raise TorchArchiveError(
            f"storage {storage.key}: invalid tensor layout "
            f"size={size} stride={stride} offset={offset}"
        )
    if 0 in size:
        array = np.empty(size, flat.dtype)
    else:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= flat.size:
            raise TorchArchiveError(
                f"storage {storage.key}: tensor of size {size} with stride "
                f"{stride} at offset {offset} runs past its {flat.size} "
                f"elements"
            )
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=[s * flat.itemsize for s in stride], writeable=False
        )
        array = np.array(view, dtype=flat.dtype.newbyteorder("="), order="C")
    if storage.type.name == "BFloat16Storage":
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data


def _identity(value, *args):
    return value


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that knows tensors, storages, OrderedDict and inert module records."""

    def __init__(self, file: BinaryIO, load_storage, source: str):
        super().__init__(file)
        self._load_storage = load_storage
        self._source = source
        self._records: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils":
            if name == "_rebuild_tensor_v2":
                return _rebuild_tensor_v2
            if name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
                return _rebuild_parameter
        elif module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        elif module == "torch.jit._pickle" and (
            name in _JIT_LIST_BUILDERS or name == "restore_type_tag"
        ):
            return _identity
        elif module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        elif module == "__torch__" or module.startswith("__torch__."):
            qualified = f"{module}.{name}"
            if qualified not in self._records:
                # A fresh subclass per type keeps the type name; it has no behaviour.
                self._records[qualified] = type(
                    name, (TorchScriptObject,), {"torch_type": qualified}
                )
            return self._records[qualified]
        raise UnsafePickleError(
            f"{self._source}: refusing to load '{module}.{name}' from the "
            f"pickle (only tensors and module records are read)"
        )

    def persistent_load(self, pid) -> _Storage:
        # ('storage', storage_type, key, location, numel): where a tensor's bytes live.
        if not (
            isinstance(pid, tuple)
            and len(pid) == 5
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
        ):
            raise TorchArchiveError(f"{self._source}: unsupported persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid
        return self._load_storage(storage_type, str(key), int(numel))


def _archive_prefix(archive: zipfile.ZipFile, source: str) -> str:
    """The archive's top-level folder: the one that holds `data.pkl`."""
    candidates = [
        n[: -len("data.pkl")]
        for n in archive.namelist()
        if n.endswith("data.pkl")
        and n[: -len("data.pkl")].count("/") <= 1
        and (n == "data.pkl" or n.endswith("/data.pkl"))
    ]
    if len(candidates) != 1:
        raise TorchArchiveError(
            f"{source}: expected one <folder>/data.pkl in the archive, found {len(candidates)}"
        )
    return candidates[0]


def load_torch_object(source: str | Path | BinaryIO | bytes) -> Any:
    """Unpickle a TorchScript or ``torch.save`` zip archive safely, without torch.

    Args:
        source: path of the file, its bytes, or a seekable binary file object.

    Returns:
        The pickled object tree, with tensors as numpy arrays (native byte order),
        ``__torch__`` module objects as `TorchScriptObject` records and state dicts as
        `collections.OrderedDict`.

    Raises:
        TorchArchiveError: not a zip archive, no ``data.pkl``, a missing or short storage.
        UnsafePickleError: the pickle names any global outside the allowed few.
    """
    name = str(source) if isinstance(source, (str, Path)) else "<torch archive>"
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as error:
        raise TorchArchiveError(
            f"{name}: not a torch zip archive ({error}); the legacy "
            f"torch.save format is not supported"
        ) from None
    with archive:
        prefix = _archive_prefix(archive, name)
        entries = set(archive.namelist())
        big_endian = (
            f"{prefix}byteorder" in entries and archive.read(f"{prefix}byteorder").strip() == b"big"
        )
        storages: dict[str, _Storage] = {}

        def load_storage(storage_type: _StorageType, key: str, numel: int) -> _Storage:
            if key not in storages:  # tensors sharing a storage share one read
                entry = f"{prefix}data/{key}"
                if entry not in entries:
                    raise TorchArchiveError(f"{name}: storage {entry} is missing")
                dtype = storage_type.dtype.newbyteorder(">" if big_endian else "<")
                raw = archive.read(entry)
                if len(raw) < numel * dtype.itemsize:
                    raise TorchArchiveError(
                        f"{name}: storage {entry} has {len(raw)} bytes, "
                        f"expected {numel * dtype.itemsize}"
                    )
                flat = np.frombuffer(raw, dtype, count=numel)
                storages[key] = _Storage(key, storage_type, flat)
            return storages[key]

        with archive.open(f"{prefix}data.pkl") as pickled:
            unpickler = _RestrictedUnpickler(io.BytesIO(pickled.read()), load_storage, name)
            try:
                return unpickler.load()
            except (pickle.UnpicklingError, EOFError, TypeError, ValueError) as error:
                raise TorchArchiveError(f"{name}: damaged data.pkl ({error})") from None


def named_arrays(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """Every array in an unpickled tree, named by its dotted attribute path.

    A TorchScript module gives names like ``net.layers.conv.weight`` (the same as
    ``module.state_dict()`` would); a ``torch.save``-d state dict keeps its keys.
    """
    found: dict[str, np.ndarray] = {}
    active: set[int] = set()  # objects on the current path: a cycle would never end

    def visit(obj: Any, path: str) -> None:
        if isinstance(obj, np.ndarray):
            found[path] = obj
            return
        if isinstance(obj, TorchScriptObject):
            children = obj.state.items()
        elif isinstance(obj, dict):
            children = obj.items()
        elif isinstance(obj, (list, tuple)):
            children = enumerate(obj)
        else:
            return
        if id(obj) in active:
            return
        active.add(id(obj))
        for key, child in children:
            visit(child, f"{path}.{key}" if path else str(key))
        active.discard(id(obj))

    visit(tree, prefix)
    return found


def load_torch_archive(source: str | Path | BinaryIO | bytes) -> dict[str, np.ndarray]:
    """Parameter and buffer arrays of a TorchScript or ``torch.save`` zip, by name.

    Args:
        source: path of the file, its bytes, or a seekable binary file object.

    Returns:
        ``{dotted name: array}``, e.g. ``{"net.layers.conv.weight": float32 [32, 3, 3, 3]}``
        for a TorchScript module (torch's own layouts: conv weights are OIHW).

    Raises:
        TorchArchiveError: see `load_torch_object`.
        UnsafePickleError: the pickle names a global outside the allowed few.
    """
    return named_arrays(load_torch_object(source))
