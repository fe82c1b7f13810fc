"""minicnn.simd: 512-bit vectors on AVX-512 hosts (AVX2 code on AMD Zen 4), and every case where
it must leave Numba alone.

`choose` is a pure function, so each branch is tested here on any host; the subprocess tests
check what `import minicnn` really does to a fresh interpreter on this host (on an AVX-512 host,
that the kernels then compile to zmm registers)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minicnn import simd

ROOT = Path(__file__).resolve().parents[1]
AVX512 = "+64bit,+avx,+avx2,+fma,+avx512f,+avx512bw,+avx512vl,-amx-fp8,+sse4.2"
AVX2 = "+64bit,+avx,+avx2,+fma,-avx512f,-avx512bw,+sse4.2"


def test_avx512_host_gets_512_bit_vectors():
    settings, reason = simd.choose({}, False, "emeraldrapids", AVX512)
    assert settings == {"NUMBA_CPU_NAME": "emeraldrapids", "NUMBA_CPU_FEATURES": AVX512 + ",-prefer-256-bit"}
    assert "AVX-512" in reason and "emeraldrapids" in reason


def test_a_host_flag_for_256_bit_is_replaced_not_contradicted():
    settings, _ = simd.choose({}, False, "skylake-avx512", AVX512 + ",+prefer-256-bit")
    features = settings["NUMBA_CPU_FEATURES"].split(",")
    assert "+prefer-256-bit" not in features and features[-1] == "-prefer-256-bit"
    assert features[:-1] == AVX512.split(",")


@pytest.mark.parametrize("name, features", [("znver3", AVX2), ("haswell", "+avx,+avx2,+fma"),
                                            ("neoverse-v1", "+neon,+sve,+fp-armv8")])
def test_hosts_without_avx512_are_left_alone(name, features):
    settings, reason = simd.choose({}, False, name, features)
    assert settings == {} and "no AVX-512" in reason and name in reason


@pytest.mark.parametrize("env", [{"NUMBA_CPU_NAME": "haswell"}, {"NUMBA_CPU_FEATURES": "-avx512f"},
                                 {"NUMBA_CPU_NAME": "generic", "NUMBA_CPU_FEATURES": ""}])
def test_the_users_numba_settings_stand(env):
    settings, reason = simd.choose(env, False, "emeraldrapids", AVX512)
    assert settings == {} and "user's choice" in reason


def test_numba_started_first_keeps_its_setting():
    settings, reason = simd.choose({}, True, "emeraldrapids", AVX512)
    assert settings == {} and "before minicnn was imported" in reason


@pytest.mark.parametrize("value", ["llvm", "LLVM", " llvm "])
def test_opt_out(value):
    settings, reason = simd.choose({simd.ENV: value}, False, "emeraldrapids", AVX512)
    assert settings == {} and "llvm" in reason


@pytest.mark.parametrize("value", ["", "auto", "AUTO"])
def test_auto_is_the_default(value):
    assert simd.choose({simd.ENV: value}, False, "emeraldrapids", AVX512)[0]


@pytest.mark.parametrize("value", ["512", "avx2", "yes"])
def test_a_bad_setting_names_the_variable(value):
    with pytest.raises(ValueError, match=rf"{simd.ENV}='{value}': expected one of auto, llvm"):
        simd.choose({simd.ENV: value}, False, "emeraldrapids", AVX512)


def _fresh(code, **env_changes):
    """Run `code` in a fresh interpreter importing this checkout's minicnn; its last stdout line as JSON."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", simd.ENV)}
    env.update(env_changes)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


PROBE = """
import json, os, re
{first}
import minicnn, numba, numpy as np
@numba.njit
def axpy(a, x, y):
    for i in range(x.size):
        y[i] += a * x[i]
x = np.ones(256, np.float32); axpy(np.float32(2), x, x.copy())
asm = next(iter(axpy.inspect_asm().values()))
print(json.dumps(dict(status=minicnn.simd.status(), cpu_name=numba.config.CPU_NAME, environ=sorted(os.environ),
                      features=numba.config.CPU_FEATURES, zmm=len(re.findall(r"zmm\\d", asm)))))
"""


def _host():
    """This host's CPU name and features as llvmlite reads them (what `simd.configure` passes to `choose`)."""
    import llvmlite.binding as ll
    return ll.get_host_cpu_name(), ll.get_host_cpu_features().flatten()


def test_import_minicnn_on_this_host():
    host_name, host_features = _host()
    expected, reason = simd.choose({}, False, host_name, host_features)
    got = _fresh(PROBE.format(first=""))
    assert got["status"]["applied"] == expected and got["status"]["reason"] == reason
    _check_width(got, host_name, host_features)


def _check_width(got, host_name, host_features):
    """What the probe compiled to, for what `choose` said: 512-bit on an AVX-512 host, AVX2 code
    (no zmm) on one in AVX2_FASTER, Numba untouched elsewhere."""
    if "+avx512f" not in host_features.split(","):
        assert got["cpu_name"] is None and got["features"] is None and got["zmm"] == 0
    elif host_name in simd.AVX2_FASTER:
        assert got["cpu_name"] == host_name and "-avx512f" in got["features"].split(",")
        assert got["zmm"] == 0, "AVX-512 turned off, yet the probe compiled to zmm registers"
    else:
        assert got["cpu_name"] == host_name and got["features"].endswith("-prefer-256-bit")
        assert got["zmm"] > 0, "an AVX-512 host compiled the probe without zmm registers"


def test_import_after_numba_but_before_any_njit_still_chooses():
    """The notebooks' order: `from numba import njit`, then `import minicnn`, then the student's @njit."""
    host_name, host_features = _host()
    got = _fresh(PROBE.format(first="from numba import njit"))
    assert got["status"]["applied"] == simd.choose({}, False, host_name, host_features)[0]
    _check_width(got, host_name, host_features)


def test_import_after_an_njit_changes_nothing():
    got = _fresh(PROBE.format(first="import numba\n@numba.njit\ndef g(x):\n    return x"))
    assert got["status"]["applied"] == {} and "before minicnn was imported" in got["status"]["reason"]
    assert got["cpu_name"] is None and got["features"] is None
    assert "NUMBA_CPU_FEATURES" not in got["environ"]
    # LLVM's own code: no zmm on AVX2 hosts and on Intel's AVX-512 cores, zmm on AMD Zen 4
    assert got["zmm"] == _fresh(PROBE.format(first=""), MINICNN_VECTOR_WIDTH="llvm")["zmm"]


def test_numba_started_tracks_the_first_njit():
    """simd.py loaded on its own (importing the minicnn package would decorate minicnn's kernels)."""
    code = ("import importlib.util, json\n"
            f"spec = importlib.util.spec_from_file_location('simd_alone', {str(ROOT / 'minicnn' / 'simd.py')!r})\n"
            "simd = importlib.util.module_from_spec(spec); spec.loader.exec_module(simd)\n"
            "before = simd.numba_started()\nimport numba\nimported = simd.numba_started()\n"
            "@numba.njit\ndef g(x):\n    return x\n"
            "print(json.dumps([before, imported, simd.numba_started()]))")
    assert _fresh(code) == [False, False, True]


def test_import_keeps_the_users_numba_settings():
    got = _fresh(PROBE.format(first=""), NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES="+avx,+avx2,+fma")
    assert got["status"]["applied"] == {} and got["cpu_name"] == "haswell"
    assert got["features"] == "+avx,+avx2,+fma" and got["zmm"] == 0


def test_opt_out_in_a_fresh_process():
    got = _fresh(PROBE.format(first=""), MINICNN_VECTOR_WIDTH="llvm")
    assert got["status"]["applied"] == {} and got["cpu_name"] is None and got["features"] is None


ZEN4 = "+64bit,+avx,+avx2,+fma,+avx512f,+avx512bw,+avx512vl,+avx512vnni,+avx512bf16,-avx512fp16,+gfni,+sse4.2"


def test_zen4_gets_its_own_features_without_avx512():
    """AMD Zen 4 runs AVX-512 on 256-bit units: minicnn's AVX2 build measured faster there."""
    settings, reason = simd.choose({}, False, "znver4", ZEN4)
    assert settings["NUMBA_CPU_NAME"] == "znver4"
    features = settings["NUMBA_CPU_FEATURES"].split(",")
    assert [f[1:] for f in features] == [f[1:] for f in ZEN4.split(",")]   # the same features, in order
    assert not [f for f in features if f.startswith("+avx512")]
    assert {"-avx512f", "-avx512vl", "-avx512vnni", "-avx512bf16", "-avx512fp16"} <= set(features)
    assert {"+avx2", "+fma", "+gfni", "+64bit"} <= set(features)          # everything else as the host has it
    assert "znver4" in reason and "AVX2" in reason


def test_zen4_still_respects_the_users_choices():
    assert simd.choose({simd.ENV: "llvm"}, False, "znver4", ZEN4)[0] == {}
    assert simd.choose({"NUMBA_CPU_NAME": "znver4"}, False, "znver4", ZEN4)[0] == {}
    assert simd.choose({}, True, "znver4", ZEN4)[0] == {}


@pytest.mark.parametrize("name, wanted", [("avx512f", True), ("avx512vl", True), ("evex512", True),
                                          ("avx10.1-512", True), ("avx2", False), ("avxvnni", False),
                                          ("fma", False), ("gfni", False)])
def test_which_features_need_avx512(name, wanted):
    assert simd.is_avx512_feature(name) is wanted
