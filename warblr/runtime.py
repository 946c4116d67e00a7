"""What the machine is and how its math libraries are set: recorded in every report and by ``warblr bench``.

Two runs whose reports agree here computed their floating-point results the
same way (thread counts, oneMKL code branch, CPU kernel level); :mod:`warblr`
pins ``MKL_CBWR`` and ``MKL_DYNAMIC`` on import for that reason.
"""

from __future__ import annotations

import os

import torch

from .cpu import ISA_VARIABLES, cpu_features, cpu_model

__all__ = ["RUNTIME_VARIABLES", "cpu_model", "cpu_features", "runtime_settings"]

#: Environment variables that choose threads or math kernels (so can change floating-point results).
RUNTIME_VARIABLES = ("OMP_NUM_THREADS", "OMP_DYNAMIC", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "MKL_DYNAMIC",
                     "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
                     "WARBLR_FC_LIBRARY") + ISA_VARIABLES


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
        ``cpu_conv_chunk`` and ``int8_chunk`` (examples per conv-stack / int8 call on CPU),
        ``fc_library`` (oneMKL or oneDNN runs the float32 FC head on CPU, see :mod:`warblr.fc_head`)
        and ``environment`` (the set ones of :data:`RUNTIME_VARIABLES`).
    """
    from .embed import CPU_CONV_CHUNK, feature_threads
    from .fc_head import fc_library
    from .quantize import INT8_CHUNK

    features = cpu_features()
    return {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            "cpu": cpu_model(), "cpu_count": os.cpu_count(), "cpu_capability": features["capability"],
            "vnni": features["vnni"], "feature_threads": feature_threads() or torch.get_num_threads(),
            "cpu_conv_chunk": CPU_CONV_CHUNK,
            "int8_chunk": INT8_CHUNK, "fc_library": fc_library(),
            "environment": {name: os.environ[name] for name in RUNTIME_VARIABLES if name in os.environ}}
