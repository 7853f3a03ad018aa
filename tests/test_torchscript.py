"""Reading torch zip archives without torch: tensor layouts, and refusing unsafe pickles.

The archives are built here by hand: a zip with `<folder>/data.pkl` written opcode by
opcode (the pickler cannot name `torch._utils` without torch installed) and raw
little-endian storages under `<folder>/data/<key>`.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile

import numpy as np
import pytest

from facegan.errors import UserError
from facegan.metrics.torchscript import (
    TorchArchiveError,
    TorchScriptObject,
    UnsafePickleError,
    load_torch_archive,
    load_torch_object,
)


class _Pickle:
    """Writes protocol-2 pickle opcodes, the way torch.save / torch.jit.save lay them out."""

    def __init__(self):
        self.out = bytearray(b"\x80\x02")  # PROTO 2

    def raw(self, opcodes: bytes) -> _Pickle:
        self.out += opcodes
        return self

    def glob(self, module: str, name: str) -> _Pickle:
        return self.raw(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def str(self, text: str) -> _Pickle:
        data = text.encode()
        return self.raw(b"X" + struct.pack("<I", len(data)) + data)

    def int(self, value: int) -> _Pickle:
        return self.raw(b"J" + struct.pack("<i", value))

    def ints(self, values) -> _Pickle:
        self.raw(b"(")
        for value in values:
            self.int(value)
        return self.raw(b"t")

    def tensor(self, storage: str, key: str, numel: int, offset: int, size, stride) -> _Pickle:
        """`_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`."""
        self.glob("torch._utils", "_rebuild_tensor_v2").raw(b"(")
        # The persistent id: ('storage', torch.<storage>, key, 'cpu', numel).
        self.raw(b"(").str("storage").glob("torch", storage).str(key).str("cpu").int(numel)
        self.raw(b"tQ")  # TUPLE, BINPERSID
        self.int(offset).ints(size).ints(stride)
        self.raw(b"\x89").glob("collections", "OrderedDict").raw(b")R")  # False, OrderedDict()
        return self.raw(b"tR")

    def stop(self) -> bytes:
        return bytes(self.out + b".")


def _archive(
    pickled: bytes,
    storages: dict[str, bytes],
    folder: str = "archive",
    byteorder: str | None = None,
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{folder}/data.pkl", pickled)
        if byteorder:
            archive.writestr(f"{folder}/byteorder", byteorder)
        for key, data in storages.items():
            archive.writestr(f"{folder}/data/{key}", data)
        archive.writestr(f"{folder}/version", "3\n")
    return buffer.getvalue()


FLAT = np.arange(24, dtype=np.float32) * 0.5  # one storage that two tensors view


def _state_dict_pickle() -> bytes:
    """OrderedDict{'layer.weight': a strided view, 'layer.bias': a slice, 'steps': int64}."""
    p = _Pickle().glob("collections", "OrderedDict").raw(b")R")  # OrderedDict()
    p.raw(b"(")  # MARK for SETITEMS
    # [2, 3] transposed view at offset 5: element [i, j] = FLAT[5 + i + 4 j].
    p.str("layer.weight").tensor("FloatStorage", "0", 24, 5, (2, 3), (1, 4))
    # A 1-d slice of the same storage with stride 3: FLAT[1], FLAT[4], FLAT[7], FLAT[10].
    p.str("layer.bias").tensor("FloatStorage", "0", 24, 1, (4,), (3,))
    p.str("steps").tensor("LongStorage", "1", 3, 0, (3,), (1,))
    return p.raw(b"u").stop()  # SETITEMS


def test_state_dict_round_trip_with_strides_and_offsets():
    data = _archive(
        _state_dict_pickle(), {"0": FLAT.tobytes(), "1": np.array([7, -8, 9], "<i8").tobytes()}
    )
    arrays = load_torch_archive(data)
    assert list(arrays) == ["layer.weight", "layer.bias", "steps"]
    expected = np.array([[FLAT[5 + i + 4 * j] for j in range(3)] for i in range(2)])
    np.testing.assert_array_equal(arrays["layer.weight"], expected)
    np.testing.assert_array_equal(arrays["layer.bias"], FLAT[1:11:3])
    np.testing.assert_array_equal(arrays["steps"], [7, -8, 9])
    assert arrays["layer.weight"].dtype == np.float32 and arrays["steps"].dtype == np.int64
    weight = arrays["layer.weight"]
    assert weight.flags.c_contiguous and weight.flags.owndata  # a copy, not a view of the zip


@pytest.mark.parametrize(
    "storage, raw",
    [
        ("HalfStorage", np.array([1.5, -2.0, 0.25], "<f2").tobytes()),
        # bfloat16 is the upper half of a float32: 1.5 = 0x3FC0, -2 = 0xC000, 0.25 = 0x3E80.
        ("BFloat16Storage", np.array([0x3FC0, 0xC000, 0x3E80], "<u2").tobytes()),
        ("DoubleStorage", np.array([1.5, -2.0, 0.25], "<f8").tobytes()),
    ],
)
def test_float_storage_kinds(storage, raw):
    pickled = _Pickle().tensor(storage, "0", 3, 0, (3,), (1,)).stop()
    array = load_torch_archive(_archive(pickled, {"0": raw}))[""]
    np.testing.assert_array_equal(array, [1.5, -2.0, 0.25])


def test_big_endian_archive(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(
        _archive(
            _state_dict_pickle(),
            {"0": FLAT.astype(">f4").tobytes(), "1": np.array([7, -8, 9], ">i8").tobytes()},
            byteorder="big",
        )
    )
    arrays = load_torch_archive(path)
    np.testing.assert_array_equal(arrays["layer.bias"], FLAT[1:11:3])
    np.testing.assert_array_equal(arrays["steps"], [7, -8, 9])
    assert arrays["steps"].dtype.isnative


@pytest.mark.integration
def test_torchscript_modules_become_inert_records():
    """`__torch__` classes hold attributes only; names follow the module tree."""
    p = _Pickle().glob("__torch__.net", "Net").raw(b")\x81}(")  # NEWOBJ, {attributes
    p.str("training").raw(b"\x89")
    p.str("padding").glob("torch.jit._pickle", "build_intlist").raw(b"(](")
    p.int(0).int(3).raw(b"etR")  # build_intlist([0, 3]): APPENDS, TUPLE, REDUCE
    p.str("conv").glob("__torch__.net", "Conv").raw(b")\x81}(")
    p.str("weight").tensor("FloatStorage", "0", 24, 0, (2, 3, 2, 2), (12, 4, 2, 1))
    p.raw(b"ub")  # SETITEMS, BUILD (the child)
    p.raw(b"ub")  # SETITEMS, BUILD (the root)
    data = _archive(p.stop(), {"0": FLAT.tobytes()}, folder="out_jit_module")

    root = load_torch_object(data)
    assert isinstance(root, TorchScriptObject) and root.torch_type == "__torch__.net.Net"
    assert root.state["padding"] == [0, 3]
    arrays = load_torch_archive(data)
    assert list(arrays) == ["conv.weight"]
    np.testing.assert_array_equal(arrays["conv.weight"], FLAT.reshape(2, 3, 2, 2))


@pytest.mark.parametrize(
    "module, name",
    [("os", "system"), ("builtins", "eval"), ("subprocess", "Popen"), ("posix", "system")],
)
def test_refuses_globals_outside_the_format(module, name, tmp_path, monkeypatch):
    """A pickle that would run a command on load is refused before anything runs."""
    marker = tmp_path / "pwned"
    calls = []
    monkeypatch.setattr(os, "system", lambda command: calls.append(command))
    payload = f"touch {marker}" if name != "eval" else f"open({str(marker)!r}, 'w')"
    p = _Pickle().glob(module, name).raw(b"(").str(payload).raw(b"tR")
    with pytest.raises(UnsafePickleError, match=f"refusing to load '{module}.{name}'"):
        load_torch_archive(_archive(p.stop(), {}))
    assert not marker.exists() and calls == []


def test_refuses_a_hidden_global_inside_a_tensor():
    """The storage type of a tensor is checked too, not only the outer object."""
    p = _Pickle().glob("torch._utils", "_rebuild_tensor_v2").raw(b"(")
    p.raw(b"(").str("storage").glob("os", "system").str("0").str("cpu").int(1).raw(b"tQ")
    p.int(0).ints((1,)).ints((1,)).raw(b"\x89)tR")
    with pytest.raises(UnsafePickleError):
        load_torch_archive(_archive(p.stop(), {"0": b"\0" * 4}))


def test_layout_past_the_storage_is_an_error():
    p = _Pickle().tensor("FloatStorage", "0", 4, 2, (2, 2), (2, 1))  # needs 6 elements
    with pytest.raises(TorchArchiveError, match="runs past"):
        load_torch_archive(_archive(p.stop(), {"0": np.zeros(4, "<f4").tobytes()}))


def test_missing_storage_and_not_a_zip_are_user_errors(tmp_path):
    p = _Pickle().tensor("FloatStorage", "7", 1, 0, (1,), (1,))
    with pytest.raises(TorchArchiveError, match="missing"):
        load_torch_archive(_archive(p.stop(), {}))
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(b"\x80\x02 not a zip archive")
    with pytest.raises(UserError, match="not a torch zip archive"):
        load_torch_archive(legacy)
