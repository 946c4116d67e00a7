"""What this CPU is: its vendor, model and the instructions the network's kernels can use.

Read from ``/proc/cpuinfo`` and torch; imports nothing else of warblr, so
the engine's modules may ask it (:mod:`warblr.fc_head` picks its GEMM
library by vendor) and :mod:`warblr.runtime` records it in every report.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["cpu_model", "cpu_features"]


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
        ``vnni`` (AVX-512 VNNI or AVX-VNNI: int8 dot products in one instruction),
        ``amx`` (AMX tiles), ``quantized_engine`` (the default quantised backend).
    """
    flags = set((_cpuinfo("flags") or "").split())
    return {"vendor": _cpuinfo("vendor_id"), "capability": torch.backends.cpu.get_cpu_capability(),
            "vnni": bool(flags & {"avx512_vnni", "avx_vnni"}), "amx": "amx_tile" in flags,
            "quantized_engine": torch.backends.quantized.engine}
