"""What this CPU is: its vendor, model and the instructions the network's kernels can use.

Read from ``/proc/cpuinfo`` and torch; imports nothing else of warblr, so
the engine's modules may ask it (:mod:`warblr.fc_head` picks its GEMM
library by vendor) and :mod:`warblr.runtime` records it in every report.
"""

from __future__ import annotations

import functools
import os

import torch

__all__ = ["cpu_model", "cpu_features", "ISA_VARIABLES"]

#: Environment variables that cap the instructions torch's kernel libraries use (ATen, oneDNN, FBGEMM).
ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "FBGEMM_ENABLE_INSTRUCTIONS")
#: Caps under which the int8 kernels still use VNNI: oneDNN's ISA names with VNNI or above, FBGEMM's ``_E1`` levels.
_ONEDNN_VNNI_CAPS = ("AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE_VNNI", "AVX512_CORE_BF16", "AVX512_CORE_FP16",
                     "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512", "AVX10_1_512_AMX",
                     "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2", "ALL", "DEFAULT")


@functools.lru_cache(maxsize=None)
def _cpuinfo(field):
    """The first ``field`` line's value in ``/proc/cpuinfo``, or None (not Linux, unreadable).

    Read once per field: :func:`warblr.fc_head.fc_library` asks for the vendor on every network batch.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model():
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    import platform

    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_features():
    """What the CPU offers the network: torch's kernel level and the int8 dot-product instructions.

    Returns
    -------
    dict
        ``vendor`` (``GenuineIntel``, ``AuthenticAMD``, or None where unknown),
        ``capability`` (``torch.backends.cpu.get_cpu_capability()``, e.g. ``"AVX2"``),
        ``vnni`` (AVX-512 VNNI or AVX-VNNI, int8 dot products in one
        instruction, that the int8 kernels may use: False where one of
        :data:`ISA_VARIABLES` caps oneDNN or FBGEMM below it),
        ``amx`` (AMX tiles), ``quantized_engine`` (the default quantised backend).

    Examples
    --------
    >>> sorted(cpu_features())
    ['amx', 'capability', 'quantized_engine', 'vendor', 'vnni']
    """
    flags = set((_cpuinfo("flags") or "").split())
    return {"vendor": _cpuinfo("vendor_id"), "capability": torch.backends.cpu.get_cpu_capability(),
            "vnni": bool(flags & {"avx512_vnni", "avx_vnni"}) and not _vnni_capped(), "amx": "amx_tile" in flags,
            "quantized_engine": torch.backends.quantized.engine}


def _vnni_capped():
    """Whether the environment keeps oneDNN or FBGEMM below VNNI (e.g. to measure an AVX2-only CPU)."""
    onednn = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").strip().upper()
    fbgemm = os.environ.get("FBGEMM_ENABLE_INSTRUCTIONS", "").strip().upper()
    return bool(onednn and onednn not in _ONEDNN_VNNI_CAPS) or bool(fbgemm and "_E1" not in fbgemm)
