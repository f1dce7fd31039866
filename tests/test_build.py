"""The build: OpenMP probe, serial fallback, no non-portable flags by default."""

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "setup.py"

pytestmark = pytest.mark.skipif(not SETUP.exists(), reason="needs the source checkout (setup.py)")


def load_setup_module():
    spec = importlib.util.spec_from_file_location("fastmf_setup_under_test", SETUP)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # the `if __name__ == "__main__"` guard keeps setup() from running
    return mod


def unix_compiler():
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    cc = new_compiler()
    customize_compiler(cc)
    if cc.compiler_type != "unix":
        pytest.skip("probe flags tested with a unix-style compiler")
    return cc


def test_probe_finds_openmp_with_gcc_and_rejects_a_bogus_flag():
    mod = load_setup_module()
    cc = unix_compiler()
    assert mod.probe_openmp(cc, [(["-fno-such-flag-for-fastmf"], [])]) is None
    found = mod.probe_openmp(cc, mod.OPENMP_FLAGS["unix"])
    if found is None:
        pytest.skip("this compiler has no OpenMP; the serial path is what gets built")
    assert "-fopenmp" in found[0]


@pytest.mark.slow
def test_serial_fallback_build(tmp_path):
    """FASTMF_OPENMP=0 builds kernels that report no OpenMP and still compute the same results."""
    env = dict(os.environ, FASTMF_OPENMP="0")
    lib, tmp = tmp_path / "lib", tmp_path / "tmp"
    proc = subprocess.run([sys.executable, "setup.py", "build_ext", "--build-lib", str(lib),
                           "--build-temp", str(tmp), "--parallel", "2"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OpenMP off" in proc.stdout
    compile_lines = [l for l in proc.stdout.splitlines() if " -c " in l]
    assert compile_lines, "expected compiler command lines in the build log"
    for line in compile_lines:  # portable by default: no CPU-specific or value-changing flags
        assert "-march=native" not in line and "-ffast-math" not in line and "-fopenmp " not in line + " "
    so = next((lib / "fastmf").glob("_csr*.so"))
    loader = importlib.machinery.ExtensionFileLoader("_csr", str(so))
    spec = importlib.util.spec_from_file_location("_csr", so, loader=loader)
    serial = importlib.util.module_from_spec(spec)
    loader.exec_module(serial)
    assert serial.openmp_enabled() is False and serial.max_threads() == 1
    rows = np.array([2, 0, 2, 1], np.int32)
    cols = np.array([1, 1, 0, 0], np.int32)
    indptr, order = serial.csr_order(rows, cols, 3, 2)
    np.testing.assert_array_equal(indptr, [0, 1, 2, 4])
    np.testing.assert_array_equal(order, [1, 3, 2, 0])
