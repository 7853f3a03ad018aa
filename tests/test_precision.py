"""`train.precision = "auto"`: bf16 only where the CPU computes it natively."""

from __future__ import annotations

import pytest

tf = pytest.importorskip("tensorflow")

from facegan.training.precision import cpu_has_bf16, resolve_precision  # noqa: E402

AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma\n"
AVX512_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
AMX = "processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n"


@pytest.mark.parametrize(
    "text, native", [(AVX2_ONLY, False), (AVX512_BF16, True), (AMX, True), ("", False)]
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, text, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    assert cpu_has_bf16(cpuinfo) is native


def test_an_unreadable_cpuinfo_means_no_bf16(tmp_path):
    assert cpu_has_bf16(tmp_path / "missing") is False


@pytest.mark.parametrize("requested", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_an_explicit_precision_is_kept(requested):
    assert resolve_precision(requested, tf.distribute.get_strategy()) == requested


def test_auto_on_this_cpu_follows_its_flags():
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU decides instead of the CPU flags")
    expected = "mixed_bfloat16" if cpu_has_bf16() else "float32"
    assert resolve_precision("auto", tf.distribute.get_strategy()) == expected
