"""The C kernels without Python, natively and on aarch64 (cross compiler + qemu-aarch64).

tests/csmoke/smoke.c runs one SGD epoch (float32 and float64, vector path), one explicit ALS, one
implicit ALS, one iALS++ and one Gibbs half-sweep and a top-k on a tiny random problem this test writes; the
same steps are computed here with the NumPy twins (fastmf.reference) on this machine and the
outputs compared within a tolerance that covers rounding (summation order, FMA), nothing more.
Every csrc/*.c must compile with ``-O2 -Wall -Wextra`` and no warning. Marked ``cross`` (deselected
by default; ``pytest -m cross``): the aarch64 case needs ``gcc-aarch64-linux-gnu`` and
``qemu-user`` (``.ci/run`` installs them) and skips, saying so, without them (fails when
``FASTMF_REQUIRE_CROSS=1``, as in CI).
"""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fastmf import reference

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "csrc"
SMOKE = Path(__file__).with_name("smoke.c")
SYSROOT = "/usr/aarch64-linux-gnu"

pytestmark = [pytest.mark.cross,
              pytest.mark.skipif(not (CSRC / "sgd.c").exists(), reason="needs the source checkout (csrc/)")]

N_USERS, N_ITEMS, K, MU, LR, REG = 7, 6, 16, 3.0, 0.05, 0.1


def problem(seed=3):
    """A tiny problem: about half the (user, item) pairs rated 1..5, sorted by user; factors
    N(0, 0.3)."""
    rng = np.random.default_rng(seed)
    pairs = [(u, i) for u in range(N_USERS) for i in range(N_ITEMS) if rng.random() < 0.5]
    users = np.array([u for u, _ in pairs], np.int32)
    items = np.array([i for _, i in pairs], np.int32)
    ratings = rng.integers(1, 6, len(pairs)).astype(np.float64)
    P = rng.normal(0, 0.3, (N_USERS, K))
    Q = rng.normal(0, 0.3, (N_ITEMS, K))
    return users, items, ratings, P, Q


def write_input(path, users, items, ratings, P, Q):
    lines = [f"{N_USERS} {N_ITEMS} {K} {len(users)}"]
    lines += [f"{int(u)} {int(i)} {float(r)!r}" for u, i, r in zip(users, items, ratings)]
    lines += [" ".join(repr(float(v)) for v in row) for row in np.vstack([P, Q])]
    lines.append(f"{MU!r} {LR!r} {REG!r}")
    path.write_text("\n".join(lines) + "\n")


def parse_output(text):
    out = {}
    for line in text.splitlines():
        name, n, *vals = line.split()
        assert int(n) == len(vals), line[:80]
        out[name] = np.array([float(v) for v in vals])
    return out


def expected(users, items, ratings, P, Q):
    """The NumPy twins of the steps smoke.c runs, on this machine."""
    exp = {}
    order = np.arange(len(users))
    for dt, tag in ((np.float64, "sgd64"), (np.float32, "sgd32")):
        p, q = P.astype(dt), Q.astype(dt)
        bu, bi = np.zeros(N_USERS, dt), np.zeros(N_ITEMS, dt)
        sse = reference.sgd_epoch(users, items, ratings.astype(dt), order, p, q, bu, bi, MU, LR, REG)
        exp.update({f"{tag}_P": p.ravel(), f"{tag}_Q": q.ravel(), f"{tag}_bu": bu, f"{tag}_bi": bi})
        if dt == np.float64:
            exp["sgd64_sse"] = np.array([sse])
    indptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=N_USERS))]).astype(np.int64)
    x, b = np.zeros((N_USERS, K)), np.zeros(N_USERS)
    reference.als_half_sweep(indptr, items, ratings, Q, np.zeros(N_ITEMS), x, b, MU, REG)
    exp["als_X"], exp["als_b"] = x.ravel(), b
    x = np.zeros((N_USERS, K))
    reference.ials_half_sweep(indptr, items, ratings, Q, x, REG, 2.0)
    exp["ials_X"] = x.ravel()
    x = P.copy()
    reference.ialspp_half_sweep(indptr, items, ratings, Q, x, REG, 2.0, block_size=6)
    exp["ialspp_X"] = x.ravel()
    x, b = np.zeros((N_USERS, K)), np.zeros(N_USERS)
    reference.gibbs_half_sweep(indptr, items, ratings, Q, np.zeros(N_ITEMS), x, b, MU, 3.0,
                               np.zeros(K + 1), 2.0 * np.eye(K + 1), None)
    exp["gibbs_X"], exp["gibbs_b"] = x.ravel(), b
    scores = P @ Q.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :3]
    exp["topk_idx"] = top.ravel().astype(np.float64)
    exp["topk_score"] = np.take_along_axis(scores, top, 1).ravel()
    exp["scores_all"] = reference.factor_scores(P, Q).ravel()
    return exp


TOLERANCE = {"sgd32": 2e-5}  # float32 steps; everything else is float64 arithmetic


def compare(got, exp):
    assert sorted(got) == sorted(exp)
    for name, want in exp.items():
        tol = TOLERANCE.get(name.split("_")[0], 1e-9)
        if name == "topk_idx":
            np.testing.assert_array_equal(got[name], want, err_msg=name)
        else:
            np.testing.assert_allclose(got[name], want, rtol=tol, atol=tol, err_msg=name)


def build(cc, out, tmp_path):
    """Compile every csrc/*.c and smoke.c with ``cc -O2 -Wall -Wextra`` (serial: no OpenMP) into
    ``out`` (``-fopenmp-simd``: the `omp simd` hints, as setup.py's serial build); no warning allowed."""
    srcs = sorted(str(p) for p in CSRC.glob("*.c")) + [str(SMOKE)]
    proc = subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-std=gnu99", "-fopenmp-simd", "-I", str(CSRC), *srcs,
                           "-o", str(out), "-lm"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "warning" not in proc.stderr, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("csmoke")
    data = problem()
    write_input(tmp / "input.txt", *data)
    return tmp, expected(*data)


def test_the_problem_is_not_degenerate(case):
    """Every user and every item has ratings, and the steps move the factors (so the comparison
    tests something)."""
    users, items, *_ , P, Q = problem()
    assert set(users) == set(range(N_USERS)) and set(items) == set(range(N_ITEMS))
    _, exp = case
    assert not np.allclose(exp["sgd64_P"], P.ravel())


def test_native_build_matches_the_reference(case, tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    tmp, exp = case
    exe = tmp_path / "smoke"
    build(cc, exe, tmp_path)
    proc = subprocess.run([str(exe), str(tmp / "input.txt")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    compare(parse_output(proc.stdout), exp)


def test_aarch64_build_under_qemu_matches_the_reference(case, tmp_path):
    cc, qemu = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64")
    if cc is None or qemu is None or not Path(SYSROOT).is_dir():
        why = "needs aarch64-linux-gnu-gcc and qemu-aarch64 (apt: gcc-aarch64-linux-gnu qemu-user)"
        if os.environ.get("FASTMF_REQUIRE_CROSS", "0") not in ("", "0"):
            pytest.fail(why + "; FASTMF_REQUIRE_CROSS is set (CI)")
        pytest.skip(why)
    tmp, exp = case
    exe = tmp_path / "smoke-aarch64"
    build(cc, exe, tmp_path)
    # the SGD loop maps to NEON: 128-bit vector FMAs on v registers, not scalar s/d registers only
    dis = subprocess.run([cc.replace("gcc", "objdump"), "-d", str(exe)], capture_output=True,
                         text=True, check=True).stdout
    assert dis.count("fmla\tv") > 50, "expected NEON vector FMAs (fmla v.4s / v.2d) in the kernels"
    proc = subprocess.run([qemu, "-L", SYSROOT, str(exe), str(tmp / "input.txt")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    compare(parse_output(proc.stdout), exp)
