"""What warblr reports about the CPU: VNNI only where the int8 kernels may use it, caps recorded."""

import pytest

from warblr import cpu
from warblr.runtime import RUNTIME_VARIABLES, runtime_settings


@pytest.fixture
def vnni_cpu(monkeypatch):
    """A CPU whose flags offer AVX-512 VNNI, whatever this machine has; no cap variable set."""
    real = cpu._cpuinfo
    monkeypatch.setattr(cpu, "_cpuinfo", lambda field: "fpu avx2 avx512f avx512_vnni" if field == "flags"
                        else real(field))
    for name in cpu.ISA_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_vnni_is_reported_where_the_cpu_has_it(vnni_cpu):
    assert cpu.cpu_features()["vnni"] is True


@pytest.mark.parametrize("name, value, vnni", [
    ("ONEDNN_MAX_CPU_ISA", "AVX2", False),
    ("DNNL_MAX_CPU_ISA", "avx512_core", False),  # AVX-512 without VNNI
    ("FBGEMM_ENABLE_INSTRUCTIONS", "AVX2", False),
    ("FBGEMM_ENABLE_INSTRUCTIONS", "AVX512", False),
    ("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_VNNI", True),
    ("ONEDNN_MAX_CPU_ISA", "ALL", True),
    ("FBGEMM_ENABLE_INSTRUCTIONS", "AVX512_E1", True),
])
def test_a_cap_below_vnni_turns_it_off(vnni_cpu, monkeypatch, name, value, vnni):
    monkeypatch.setenv(name, value)
    assert cpu.cpu_features()["vnni"] is vnni


def test_a_cpu_without_vnni_never_reports_it(monkeypatch):
    monkeypatch.setattr(cpu, "_cpuinfo", lambda field: "fpu avx2 fma" if field == "flags" else None)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "ALL")
    assert cpu.cpu_features()["vnni"] is False


def test_the_caps_are_recorded_in_every_report(monkeypatch):
    assert set(cpu.ISA_VARIABLES) <= set(RUNTIME_VARIABLES)
    monkeypatch.setenv("FBGEMM_ENABLE_INSTRUCTIONS", "AVX2")
    assert runtime_settings()["environment"]["FBGEMM_ENABLE_INSTRUCTIONS"] == "AVX2"
