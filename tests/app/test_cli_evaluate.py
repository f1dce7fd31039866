"""`fastmf evaluate` shows the library's EvaluationWarnings on stderr (subprocess, python -m fastmf)."""

import os
import subprocess
import sys

import numpy as np

import fastmf


def _run(*args):
    env = {k: v for k, v in os.environ.items() if k not in ("FASTMF_DATA", "FASTMF_CACHE")}
    return subprocess.run([sys.executable, "-m", "fastmf", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_evaluate_on_training_data_warns_on_stderr(tmp_path):
    rng = np.random.default_rng(0)
    pairs = rng.permutation(40 * 25)[:500]
    u, i = np.divmod(pairs, 25)
    r = rng.integers(1, 6, u.size)
    train_file, test_file = tmp_path / "train.tsv", tmp_path / "test.tsv"
    lines = [f"{a + 1}\t{b + 1}\t{c}\n" for a, b, c in zip(u, i, r)]
    train_file.write_text("".join(lines[:400]))
    test_file.write_text("".join(lines[300:]))  # 100 of its 200 pairs are training pairs
    model = tmp_path / "m.npz"
    fastmf.Biases().fit(fastmf.read_ratings(train_file)).save(model)

    res = _run("evaluate", model, test_file)
    assert res.returncode == 0, res.stderr
    assert res.stderr.startswith("fastmf evaluate: warning: evaluate: ") and "Traceback" not in res.stderr
    assert "100 of the 200 test ratings (50.0%) are (user, item) pairs of the model's training data" in res.stderr
    assert "rmse" in res.stdout and "EvaluationWarning" not in res.stdout

    # a held-out file: no warning
    (tmp_path / "held.tsv").write_text("".join(lines[400:]))
    res = _run("evaluate", model, tmp_path / "held.tsv")
    assert res.returncode == 0, res.stderr
    assert "warning" not in res.stderr
