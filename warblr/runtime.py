"""What the machine is and how its math libraries are set: recorded in every report and by ``warblr bench``.

Two runs whose reports agree here computed their floating-point results the
same way (thread counts, oneMKL code branch, CPU kernel level); :mod:`warblr`
pins ``MKL_CBWR`` and ``MKL_DYNAMIC`` on import for that reason.
"""

from __future__ import annotations

import os

import torch

__all__ = ["RUNTIME_VARIABLES", "cpu_model", "cpu_features", "runtime_settings"]

#: Environment variables that choose threads or math kernels (so can change floating-point results).
RUNTIME_VARIABLES = ("OMP_NUM_THREADS", "OMP_DYNAMIC", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "MKL_DYNAMIC",
                     "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE")


def _cpuinfo(field):
    """The first ``field`` line's value in ``/proc/cpuinfo``, or None (not Linux, unreadable)."""
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
        ``capability`` (``torch.backends.cpu.get_cpu_capability()``, e.g. ``"AVX2"``),
        ``vnni`` (AVX-512 VNNI or AVX-VNNI: int8 dot products in one instruction),
        ``amx`` (AMX tiles), ``quantized_engine`` (the default quantised backend).
    """
    flags = set((_cpuinfo("flags") or "").split())
    return {"capability": torch.backends.cpu.get_cpu_capability(),
            "vnni": bool(flags & {"avx512_vnni", "avx_vnni"}), "amx": "amx_tile" in flags,
            "quantized_engine": torch.backends.quantized.engine}


def runtime_settings():
    """Thread and math-library settings that can change floating-point results: recorded in every report.

    oneMKL picks its kernels by CPU model, and its thread count and code
    branch by these variables (warblr pins ``MKL_CBWR`` and ``MKL_DYNAMIC``
    on import, see :mod:`warblr`), so two reports that agree here were
    computed the same way.

    Returns
    -------
    dict
        ``torch_threads``, ``torch_interop_threads``, ``cpu`` (model name),
        ``cpu_count``, ``cpu_capability`` and ``vnni`` (see :func:`cpu_features`),
        ``feature_threads`` (torch threads of resampling and log-mel on CPU, as
        :func:`feature_threads` chooses them now),
        ``cpu_conv_chunk`` and ``int8_chunk`` (examples per conv-stack / int8 call on CPU)
        and ``environment`` (the set ones of :data:`RUNTIME_VARIABLES`).
    """
    from .embed import CPU_CONV_CHUNK, feature_threads
    from .quantize import INT8_CHUNK

    features = cpu_features()
    return {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            "cpu": cpu_model(), "cpu_count": os.cpu_count(), "cpu_capability": features["capability"],
            "vnni": features["vnni"], "feature_threads": feature_threads() or torch.get_num_threads(),
            "cpu_conv_chunk": CPU_CONV_CHUNK,
            "int8_chunk": INT8_CHUNK,
            "environment": {name: os.environ[name] for name in RUNTIME_VARIABLES if name in os.environ}}
