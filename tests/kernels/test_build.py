"""The build: OpenMP probe, serial fallback, no non-portable flags by default."""

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
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
@pytest.mark.build
def test_serial_fallback_build(tmp_path):
    """FASTMF_OPENMP=0 builds kernels that report no OpenMP and still compute the same results.
    A full rebuild (about a minute on 2 free cores): marked `build`, run with ``pytest -m build``."""
    env = dict(os.environ, FASTMF_OPENMP="0")
    lib, tmp = tmp_path / "lib", tmp_path / "tmp"
    proc = subprocess.run([sys.executable, "setup.py", "build_ext", "--build-lib", str(lib),
                           "--build-temp", str(tmp), "--parallel", "2"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OpenMP off" in proc.stdout
    assert "2 parallel jobs" in proc.stdout
    opt = {l.split(" -c ")[1].split()[0]: [a for a in l.split() if a.startswith("-O")]
           for l in proc.stdout.splitlines() if " -c " in l}
    assert opt["csrc/sgd.c"][-1] == "-O3" and opt["fastmf/_sgd.c"][-1] == "-O2", opt
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


def test_build_jobs_default_to_the_cpu_count_and_follow_fastmf_build_jobs(monkeypatch):
    mod = load_setup_module()
    monkeypatch.delenv("FASTMF_BUILD_JOBS", raising=False)
    assert mod.jobs() == (os.cpu_count() or 1)
    monkeypatch.setenv("FASTMF_BUILD_JOBS", "3")
    assert mod.jobs() == 3
    for bad in ("0", "-2", "many"):
        monkeypatch.setenv("FASTMF_BUILD_JOBS", bad)
        assert mod.jobs() == (os.cpu_count() or 1)


def test_parallel_compile_compiles_every_source_biggest_first_and_reports_errors(tmp_path):
    """The thread-pool compile builds every object, starts the biggest file first, never runs more
    compiler processes than its slots, and a failing file fails the build."""
    import threading
    import time

    mod = load_setup_module()
    cc = unix_compiler()
    sizes = {"small.c": 1, "big.c": 4000, "mid.c": 300}
    for name, n in sizes.items():
        (tmp_path / name).write_text("int f_%s(void) { return 0; }\n/*%s*/\n" % (name[:-2], "x" * n))
    started, running, peak, lock = [], [0], [0], threading.Lock()
    real = cc._compile

    def spy(obj, src, *args):
        with lock:
            started.append(Path(src).name)
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.2)
        try:
            real(obj, src, *args)
        finally:
            with lock:
                running[0] -= 1

    cc._compile = spy
    srcs = [str(tmp_path / n) for n in sizes]
    mod.parallel_compile(cc, 1)  # one slot: the files run one at a time, biggest first
    objects = cc.compile(srcs, output_dir=str(tmp_path / "out1"))
    assert started == ["big.c", "mid.c", "small.c"] and peak[0] == 1
    assert len(objects) == 3 and all(Path(o).exists() for o in objects)
    started.clear()
    mod.parallel_compile(cc, 2)  # never more compiler processes than slots
    objects = cc.compile(srcs, output_dir=str(tmp_path / "out"))
    assert len(objects) == 3 and all(Path(o).exists() for o in objects)
    assert sorted(started) == sorted(sizes) and peak[0] <= 2
    (tmp_path / "broken.c").write_text("int broken(void) { return }\n")
    with pytest.raises(Exception) as err:  # distutils' CompileError (module name depends on the shim)
        cc.compile([str(tmp_path / "broken.c"), *srcs], output_dir=str(tmp_path / "out2"))
    assert type(err.value).__name__ == "CompileError"


def test_only_the_cython_wrappers_are_cold():
    mod = load_setup_module()
    assert mod.cold("fastmf/_sgd.c") and mod.cold(str(ROOT / "fastmf" / "_als.c"))
    assert not mod.cold("csrc/sgd.c") and not mod.cold("csrc/als.c") and not mod.cold("fastmf/x.c")


def test_the_rebuild_test_runs_only_when_asked():
    """pytest's default run deselects the `build` marker (pyproject addopts); `-m build` selects it."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    # the long fuzz and hostile runs, the C smoke test (tests/csmoke, cross compiler) and the long
    # Spark run are opt-in: the default expression deselects exactly these markers
    expr = cfg["addopts"].split("-m ", 1)[1]
    assert expr[0] == "'" and expr.count("'") == 2, cfg["addopts"]
    terms = expr.strip("'").split(" and ")
    assert terms == ["not build", "not fuzz", "not hostile", "not cross", "not spark_long"], terms
    assert any(m.startswith("spark_long:") for m in cfg["markers"])
    assert any(m.startswith("cross:") for m in cfg["markers"])
    assert any(m.startswith("fuzz:") for m in cfg["markers"])
    assert any(m.startswith("hostile:") for m in cfg["markers"])
    assert any(m.startswith("build:") for m in cfg["markers"])
    assert any(m.name == "build" for m in test_serial_fallback_build.pytestmark)
