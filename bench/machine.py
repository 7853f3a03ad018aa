"""One line naming the machine a benchmark ran on: CPU model, cores and the flags that matter.

AVX-512 with native bf16 (AVX512_BF16 or AMX) makes mixed_bfloat16 about 1.4x
faster on these models; AVX2-only machines emulate bf16 and are slower with it.
Rows measured on the two kinds must not be compared, so every row names them.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine() -> str:
    """e.g. "AMD EPYC, 2 cpus, AVX-512 + native bf16 (avx512_bf16)"."""
    flags = cpu_flags()
    bf16 = sorted(flags & {"avx512_bf16", "amx_bf16"})
    if "avx512f" in flags:
        vector = "AVX-512" + (f" + native bf16 ({', '.join(bf16)})" if bf16 else ", no native bf16")
    elif "avx2" in flags:
        vector = "AVX2 only (bf16 emulated: slower than fp32)"
    else:
        vector = "no AVX2"
    return f"{cpu_model()}, {os.cpu_count()} cpus, {vector}"


if __name__ == "__main__":
    print(describe_machine())
