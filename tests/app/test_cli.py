"""The command line, end to end through subprocess (python -m fastmf), plus its small helpers
(model table, progress bar) in process. Outputs are checked against the same computation done here
with the library: metrics, recommendations and similar items must be the library's, exactly."""

import io
import json
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

import fastmf
from fastmf import cli
from conftest import need_data

SMALL = ("--epochs", "5", "--factors", "10")


def _env(data=False, tmp_path=None, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("FASTMF_DATA", "FASTMF_CACHE")}
    if data and os.environ.get("FASTMF_DATA"):
        env["FASTMF_DATA"] = os.environ["FASTMF_DATA"]
    if tmp_path is not None:
        env["FASTMF_CACHE"] = str(tmp_path / "cache")
    env.update(env_extra or {})
    return env


def run(*args, env_extra=None, data=False, tmp_path=None):
    return subprocess.run([sys.executable, "-m", "fastmf", *map(str, args)], capture_output=True,
                          text=True, env=_env(data, tmp_path, env_extra), timeout=300)


def run_many(commands, tmp_path=None):
    """Run several short commands concurrently (they are mostly interpreter start-up)."""
    env = _env(tmp_path=tmp_path)
    procs = [subprocess.Popen([sys.executable, "-m", "fastmf", *map(str, c)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for c in commands]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def check_error(p, command, *fragments):
    """One line ``fastmf <command>: error: ...`` on stderr, exit 2, nothing on stdout, no traceback."""
    assert p.returncode == 2, (p.args, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and p.stdout == "", (p.args, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, (p.args, p.stderr)
    assert lines[0].startswith(f"fastmf {command}: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def table_rows(out):
    """Rows of a ranked table: lines starting with a rank number."""
    return [line.split() for line in out.splitlines() if re.match(r"^\s*\d+\s+-?\d+\.\d{4}\s", line)]


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24]), len(data)


def write_tsv(path, ds):
    u, i, r, t = ds.to_arrays()
    with open(path, "w") as fh:
        for row in zip(u.tolist(), i.tolist(), r.tolist(), t.tolist()):
            fh.write("%d\t%d\t%g\t%d\n" % row)


def read_tsv(path):
    return fastmf.read_ratings(path, sep="\t", columns=("user", "item", "rating", "timestamp"))


# ---------------------------------------------------------------------- existing commands
def check_demo_output(out):
    assert re.search(r"^test: rmse \d\.\d{4}, mae \d\.\d{4}, precision@10 ", out, re.M)
    ranks = re.findall(r"^\s+(\d+)\.\s+\d+\.\d{3}\s+\S", out, re.M)
    assert ranks == [str(i) for i in range(1, 11)]


def test_demo_offline_without_data_uses_synthetic_with_one_line_notice(tmp_path):
    p = run("demo", "--offline", tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    notice = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(notice) == 1 and "synthetic" in notice[0] and "--offline" in notice[0]
    assert "synthetic" in p.stdout
    check_demo_output(p.stdout)
    rmse = float(re.search(r"rmse (\d\.\d+)", p.stdout).group(1))
    assert rmse < 0.85  # the planted structure is learnt (global mean gives ~1.1 on this set)


@pytest.mark.data
def test_demo_on_ml100k(tmp_path):
    if not os.environ.get("FASTMF_DATA"):
        pytest.skip("FASTMF_DATA is not set")
    p = run("demo", data=True, tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "ml-100k: 100,000 ratings" in p.stdout and p.stderr == ""
    check_demo_output(p.stdout)
    assert float(re.search(r"rmse (\d\.\d+)", p.stdout).group(1)) < 0.93
    assert re.search(r"\(\d{4}\)\s+\[", p.stdout)  # titles with years and genres


def test_info_on_a_file_and_user_mistakes(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("user,item,rating\n1,10,4\n2,10,5\n2,11,3\n")
    p = run("info", str(f), "--header")
    assert p.returncode == 0, p.stderr
    assert "3 ratings by 2 users on 2 items" in p.stdout
    p = run("info", str(f), "--header", "--json")
    d = json.loads(p.stdout)
    assert (d["n_ratings"], d["n_users"], d["n_items"], d["rating_mean"]) == (3, 2, 2, 4.0)
    missing = run("info", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().count("\n") == 0 and "nope.csv" in missing.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("1,10,4\n2,10\n")
    p = run("info", str(bad))
    assert p.returncode == 2 and "line 2" in p.stderr and p.stderr.strip().count("\n") == 0
    p = run("info", str(bad), "--verbose")
    assert p.returncode != 0 and "Traceback" in p.stderr


def test_help_and_no_command():
    commands = ["demo", "info", "train", "evaluate", "recommend", "similar", "plot"]
    results = run_many([["--help"]] + [[c, "--help"] for c in commands] + [[]])
    top, helps, none = results[0], results[1:-1], results[-1]
    assert top.returncode == 0 and all(c in top.stdout for c in commands)
    for c, p in zip(commands, helps):
        assert p.returncode == 0 and "examples:" in p.stdout and f"fastmf {c}" in p.stdout, c
    assert "mf " in helps[2].stdout and "globalmean" in helps[2].stdout  # the model table
    assert none.returncode == 2


# ---------------------------------------------------------------------- synthetic chain
@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """Synthetic ratings written as train/test TSV files, and one `fastmf train` run on them."""
    d = tmp_path_factory.mktemp("cli")
    ds = fastmf.make_ratings(300, 200, 8000, seed=3, timestamps=True)
    train, test = fastmf.split.random_split(ds, test_size=0.2, random_state=7)
    write_tsv(d / "train.tsv", train)
    write_tsv(d / "test.tsv", test)
    p = run("train", d / "train.tsv", *SMALL, "--save", d / "m.npz", "--plot", d / "curves.png", "--json")
    return d, p


def cli_oracle(d, n_epochs=5, **fit_kwargs):
    """What `fastmf train train.tsv --epochs 5 --factors 10` must compute, done with the library:
    (data, train part, validation part, test part, evaluated model)."""
    ds = read_tsv(d / "train.tsv")
    tr, te = fastmf.split.random_split(ds, test_size=0.2, random_state=0)
    fit_part, val = fastmf.split.random_split(tr, test_size=0.1, random_state=0)
    ref = fastmf.MatrixFactorization(n_factors=10, n_epochs=n_epochs, random_state=0)
    ref.fit(fit_part, eval_set=val, **fit_kwargs)
    return ds, fit_part, val, te, ref


def test_train_json_matches_the_library(synth):
    d, p = synth
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""  # quiet when stderr is not a terminal and --verbose is not given
    out = json.loads(p.stdout)
    assert {"data", "split", "model", "fit_seconds", "k", "metrics", "history", "best_epoch", "saved",
            "refit", "plot"} <= set(out)
    # 6,400 ratings: 1,280 test, and 10% of the other 5,120 held out for validation
    assert out["data"]["n_ratings"] == 6400 and out["split"]["n_train"] == 4608
    assert out["split"]["n_validation"] == 512 and out["split"]["n_test"] == 1280
    assert out["model"]["class"] == "MatrixFactorization"
    params = out["model"]["params"]
    assert (params["n_factors"], params["n_epochs"], params["random_state"]) == (10, 5, 0)
    # the oracle: the same splits and fit done here; the CLI must give the very same numbers
    ds, fit_part, val, te, ref = cli_oracle(d)
    assert [h["train_rmse"] for h in out["history"]] == [h["train_rmse"] for h in ref.history_]
    # the curve is the validation part's ...
    assert [h["eval_rmse"] for h in out["history"]] == [h["eval_rmse"] for h in ref.history_]
    assert out["history"][-1]["eval_rmse"] == pytest.approx(fastmf.metrics.rmse(
        val.rating, ref.predict(*val.to_arrays()[:2])), rel=1e-12)
    # ... and the metrics are the test part's, measured once
    expected = fastmf.evaluate(ref, te, k=10)
    assert out["metrics"].keys() == expected.keys()
    for key, value in expected.items():
        assert out["metrics"][key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
    assert out["metrics"]["rmse"] != pytest.approx(out["history"][-1]["eval_rmse"], rel=1e-6)
    baseline = fastmf.evaluate(fastmf.GlobalMean().fit(fit_part), te, k=10)["rmse"]
    assert out["metrics"]["rmse"] < baseline - 0.05  # it learnt something in 5 epochs
    # the saved model is the one to serve: refit on all 6,400 ratings with the same 5 epochs
    assert out["refit"]["n_ratings"] == 6400 and out["refit"]["params"]["n_epochs"] == 5
    saved = fastmf.load(d / "m.npz")
    full = fastmf.MatrixFactorization(n_factors=10, n_epochs=5, random_state=0).fit(ds)
    np.testing.assert_array_equal(saved.item_factors_, full.item_factors_)
    assert int(saved.user_counts_.sum()) == 6400 and len(saved.history_) == 5
    (w, h), size = png_size(d / "curves.png")
    assert (w, h) == (980, 400) and size > 5000  # train, eval RMSE and MAE, two stars: legend beside the panel


def test_refit_serves_every_rating_and_no_refit_keeps_the_evaluated_model(synth, tmp_path):
    d, _ = synth
    ds, fit_part, val, te, ref = cli_oracle(d)
    served = fastmf.load(d / "m.npz")  # refit (the default with --save)
    p = run("train", d / "train.tsv", *SMALL, "--save", tmp_path / "e.npz", "--no-refit")
    assert p.returncode == 0, p.stderr
    assert "(the evaluated model, not refit: --no-refit)" in p.stdout and "refit for serving" not in p.stdout
    evaluated = fastmf.load(tmp_path / "e.npz")
    np.testing.assert_array_equal(evaluated.item_factors_, ref.item_factors_)
    assert int(evaluated.user_counts_.sum()) == len(fit_part)
    # a user's held-out (validation and test) items: the evaluated model may recommend them, the
    # served one never does
    u, i, _, _ = val.concat(te).to_arrays()
    held = {}
    for user, item in zip(u.tolist(), i.tolist()):
        held.setdefault(user, set()).add(item)
    leaked_evaluated = leaked_served = 0
    for user, items in held.items():
        leaked_served += len(items & set(served.recommend(user, n=20)[0].tolist()))
        leaked_evaluated += len(items & set(evaluated.recommend(user, n=20)[0].tolist()))
    assert leaked_served == 0 and leaked_evaluated > 0


def test_temporal_split_gets_a_temporal_validation_and_early_stopping_selects_on_it(synth):
    d, _ = synth
    p = run("train", d / "train.tsv", *SMALL, "--epochs", "30", "--lr", "0.05", "--split", "temporal",
            "--early-stopping", "2", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    ds = read_tsv(d / "train.tsv")
    tr, te = fastmf.split.temporal_split(ds, test_size=0.2)
    fit_part, val = fastmf.split.temporal_split(tr, test_size=0.1)
    assert fit_part.timestamp.max() < val.timestamp.min() <= val.timestamp.max() < te.timestamp.min()
    assert (out["split"]["n_train"], out["split"]["n_validation"]) == (len(fit_part), len(val))
    assert "temporal" in out["split"]["validation"]
    ref = fastmf.MatrixFactorization(n_factors=10, n_epochs=30, lr=0.05, random_state=0)
    ref.fit(fit_part, eval_set=val, early_stopping_rounds=2)
    assert [h["eval_rmse"] for h in out["history"]] == [h["eval_rmse"] for h in ref.history_]
    assert len(out["history"]) < 30 and out["best_epoch"] == ref.best_epoch_  # it stopped, on validation
    best = min(h["eval_rmse"] for h in out["history"])
    assert out["history"][out["best_epoch"] - 1]["eval_rmse"] == best
    assert out["metrics"]["rmse"] == pytest.approx(fastmf.evaluate(ref, te)["rmse"], rel=1e-12)


def test_evaluate_matches_the_library(synth):
    d, _ = synth
    pj, pt = run_many([["evaluate", d / "m.npz", d / "test.tsv", "--json", "--k", "5"],
                       ["evaluate", d / "m.npz", d / "test.tsv", "--k", "5"]])
    assert pj.returncode == 0 and pt.returncode == 0, (pj.stderr, pt.stderr)
    out = json.loads(pj.stdout)
    assert {"model", "data", "unknown_users", "unknown_items", "k", "metrics"} <= set(out)
    model = fastmf.load(d / "m.npz")
    test = read_tsv(d / "test.tsv")
    expected = fastmf.evaluate(model, test, k=5)
    assert out["metrics"] == pytest.approx(expected, rel=1e-12)
    assert "ndcg@5" in out["metrics"] and out["data"]["n_ratings"] == len(test)
    unknown = int(np.sum(model.user_map_.to_index(test.user_map.ids, missing=-1) < 0))
    assert out["unknown_users"] == unknown
    assert re.search(rf"^  rmse +{expected['rmse']:.4f}$", pt.stdout, re.M)
    assert re.search(rf"^  ndcg@5 +{expected['ndcg@5']:.4f}$", pt.stdout, re.M)


def test_recommend_and_similar_match_the_library(synth):
    d, _ = synth
    model = fastmf.load(d / "m.npz")
    user = int(model.user_map_.ids[5])
    item = int(model.item_map_.ids[np.argmax(model.item_counts_)])
    rt, rj, st, sj, rs = run_many([
        ["recommend", d / "m.npz", "--user", user],
        ["recommend", d / "m.npz", "--user", user, "-n", "7", "--json"],
        ["similar", d / "m.npz", "--item", item],
        ["similar", d / "m.npz", "--item", item, "--metric", "pearson", "-n", "4", "--json"],
        ["recommend", d / "m.npz", "--user", user, "--include-seen", "--json"],
    ])
    for p in (rt, rj, st, sj, rs):
        assert p.returncode == 0 and p.stderr == "", (p.args, p.stderr)

    ids, scores = model.recommend(user, n=10)
    rows = table_rows(rt.stdout)
    assert len(rows) == 10 and rt.stdout.splitlines()[1].split() == ["rank", "score", "item"]
    assert [int(r[0]) for r in rows] == list(range(1, 11))
    assert [int(r[2]) for r in rows] == ids.tolist()
    assert [r[1] for r in rows] == [f"{s:.4f}" for s in scores]

    out = json.loads(rj.stdout)
    assert out["user"] == user and out["known_user"] is True and out["exclude_seen"] is True
    ids7, scores7 = model.recommend(user, n=7)
    assert [e["item"] for e in out["items"]] == ids7.tolist()
    assert [e["score"] for e in out["items"]] == scores7.tolist()
    assert [e["rank"] for e in out["items"]] == list(range(1, 8))
    seen = json.loads(rs.stdout)
    assert [e["item"] for e in seen["items"]] == model.recommend(user, n=10, exclude_seen=False)[0].tolist()

    sids, sscores = model.similar_items(item, n=10, metric="cosine")
    rows = table_rows(st.stdout)
    assert st.stdout.startswith(f"items most similar to {item} (cosine similarity")
    assert [int(r[2]) for r in rows] == sids.tolist() and len(rows) == 10
    assert [r[1] for r in rows] == [f"{s:.4f}" for s in sscores]
    out = json.loads(sj.stdout)
    pids, pscores = model.similar_items(item, n=4, metric="pearson")
    assert out["item"] == item and out["metric"] == "pearson"
    assert [e["item"] for e in out["items"]] == pids.tolist()
    assert [e["similarity"] for e in out["items"]] == pscores.tolist()


def test_plot_and_model_info(synth):
    d, _ = synth
    pp, pi, pj = run_many([
        ["plot", d / "m.npz", "--factor-map", d / "map.png", "--labels", "5", "--curves", d / "c2.png"],
        ["info", d / "m.npz"],
        ["info", d / "m.npz", "--json"],
    ])
    assert pp.returncode == 0, pp.stderr
    assert f"saved factor map: {d / 'map.png'}" in pp.stdout
    assert png_size(d / "map.png")[0] == (800, 650) and png_size(d / "map.png")[1] > 10000
    assert png_size(d / "c2.png")[0] == (640, 400)
    assert pi.returncode == 0, pi.stderr
    model = fastmf.load(d / "m.npz")
    assert "class: MatrixFactorization (registry key 'mf')" in pi.stdout
    assert "trained on: 6,400 ratings" in pi.stdout and "factors: 10 per user and item (float32)" in pi.stdout
    assert f"train_rmse {model.history_[-1]['train_rmse']:.4f}" in pi.stdout
    info = json.loads(pj.stdout)
    assert info["class"] == "MatrixFactorization" and info["params"]["n_factors"] == 10
    assert (info["n_users"], info["n_items"], info["n_ratings"]) == (model.n_users_, model.n_items_, 6400)
    assert info["history"]["epochs"] == 5 and info["history"]["best_epoch"] == 5


# ---------------------------------------------------------------------- at a terminal
def run_on_terminal(*args, data=False, tmp_path=None, columns=None):
    """``python -m fastmf *args`` with stdin, stdout and stderr all on one pseudo-terminal (as at a
    person's terminal; ``columns``: a window size, else the size-less terminal of script(1) and CI),
    read until EOF. Returns (exit status, everything the terminal showed, as text)."""
    import pty
    import threading

    master, slave = pty.openpty()
    if columns is not None:
        import fcntl
        import termios

        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    try:
        p = subprocess.Popen([sys.executable, "-m", "fastmf", *map(str, args)], stdin=slave, stdout=slave,
                             stderr=slave, env=_env(data, tmp_path), start_new_session=True)
    finally:
        os.close(slave)
    chunks = []

    def drain():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO once the child has closed the terminal (Linux)
                break
            if not chunk:
                break
            chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    code = p.wait(timeout=300)
    reader.join(timeout=60)
    os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def run_many_on_terminal(commands, **kwargs):
    """run_on_terminal for several commands at once (they are mostly interpreter start-up)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda c: run_on_terminal(*c, **kwargs), commands))


needs_pty = pytest.mark.skipif(not hasattr(os, "openpty"), reason="no pseudo-terminals on this platform")


@needs_pty
def test_every_command_on_a_terminal_and_in_pipes(synth, tmp_path):
    """Each command once at a (pseudo-)terminal and once with pipes: exit status 0 and its output
    both ways; a progress bar on the terminal for training and the batch job, none in pipes. The
    default `train` (n_epochs=None) crashed at a terminal before the bars were tqdm's."""
    d, _ = synth
    m = tmp_path / "t.npz"
    user = int(fastmf.load(d / "m.npz").user_map_.ids[0])
    item = int(fastmf.load(d / "m.npz").item_map_.ids[0])
    # train first (the others read its model), with every default: 40 epochs, validation 0.1, refit
    code, screen = run_on_terminal("train", d / "train.tsv", "--save", m, "--plot", tmp_path / "c.png")
    assert code == 0, screen
    assert "Traceback" not in screen and "test metrics (k=10):" in screen and f"saved model: {m}" in screen
    frames = [f for f in re.split(r"[\r\n]", screen) if f.startswith("epoch ")]
    assert frames[0].startswith("epoch 0/40 |")
    assert any(re.fullmatch(r"epoch 40/40 \|.{10}\| \d\d:\d\d, train_rmse=\d\.\d{4}, eval_rmse=\d\.\d{4}", f)
               for f in frames), frames
    assert max(len(f) for f in frames) <= 80  # fits the 80 columns assumed for a size-less terminal
    assert "refit for serving" in screen and any(f.startswith("epoch 40/40") and "eval_rmse" not in f
                                                 for f in frames)  # the refit's bar: train only
    commands = [
        ["demo", "--offline"],
        ["info", d / "train.tsv"],
        ["info", m],
        ["evaluate", m, d / "test.tsv"],
        ["recommend", m, "--user", user],
        ["recommend", m, "--all", "-o", tmp_path / "all.csv"],
        ["similar", m, "--item", item],
        ["plot", m, "--factor-map", tmp_path / "map.png", "--curves", tmp_path / "c2.png"],
    ]
    expect = ["top-10 for user", "6,400 ratings by 300 users", "class: MatrixFactorization", "metrics (k=10):",
              f"top-10 for user {user}", "wrote top-10 for 300 users", f"items most similar to {item}",
              "saved learning curve"]
    terminal = run_many_on_terminal(commands, tmp_path=tmp_path)
    piped = run_many(commands, tmp_path=tmp_path)
    for c, want, (code, screen), p in zip(commands, expect, terminal, piped):
        assert code == 0 and "Traceback" not in screen, (c, screen)
        assert want in screen, (c, screen)
        assert p.returncode == 0 and want in p.stdout, (c, p.stdout, p.stderr)
        assert "\r" not in p.stderr and "|" not in p.stderr, (c, p.stderr)  # no bar in pipes
    demo, batch = terminal[0][1], terminal[5][1]
    assert re.search(r"epoch 40/40 \|.*\| \d\d:\d\d, train_rmse=", demo)
    assert re.search(r"recommend: 100%\|.*\| 300/300 ", batch)
    assert piped[0].stderr.count("\n") == 1  # the demo's one-line notice, no bar
    # piped train: nothing on stderr at all
    p = run("train", d / "train.tsv", *SMALL)
    assert p.returncode == 0 and p.stderr == ""


@needs_pty
def test_bar_follows_the_terminal_width_and_verbose_goes_to_a_file(synth, tmp_path):
    d, _ = synth
    code, screen = run_on_terminal("train", d / "train.tsv", *SMALL, columns=120)
    assert code == 0, screen
    assert re.search(r"epoch 5/5 \|.*\| \d\d:\d\d, train_rmse=\d\.\d{4}, eval_rmse=\d\.\d{4}", screen)
    # --verbose with stderr to a file (crashed before): plain lines in the file, no bar
    log = tmp_path / "log.txt"
    with open(log, "w") as fh:
        p = subprocess.run([sys.executable, "-m", "fastmf", "train", d / "train.tsv", "--model", "als",
                            "--verbose"], stdout=subprocess.PIPE, stderr=fh, text=True, env=_env(), timeout=300)
    assert p.returncode == 0 and "test metrics" in p.stdout
    lines = log.read_text().splitlines()
    assert len(lines) == 15 and all(re.fullmatch(r"epoch \d+/15  train_rmse \d\.\d{4}  eval_rmse "
                                                 r"\d\.\d{4}  \d+\.\d\d s", x) for x in lines), lines


@pytest.mark.data
@needs_pty
def test_default_train_and_demo_on_ml100k_at_a_terminal(tmp_path):
    """The README's first commands, as a person runs them: defaults, at a terminal."""
    need_data("ml-100k")
    (code, screen), (dcode, demo) = run_many_on_terminal(
        [["train", "ml-100k", "--save", tmp_path / "m.npz"], ["demo"]], data=True, tmp_path=tmp_path)
    assert code == 0, screen
    assert "72,000 train / 8,000 validation / 20,000 test ratings" in screen
    assert re.search(r"epoch 40/40 \|.*\| \d\d:\d\d, train_rmse=", screen)
    assert "refit for serving: MatrixFactorization(random_state=0) on all 100,000 ratings" in screen
    assert int(fastmf.load(tmp_path / "m.npz").user_counts_.sum()) == 100_000
    assert dcode == 0 and "ml-100k: 100,000 ratings" in demo, demo
    check_demo_output(demo.replace("\r\n", "\n"))


# ---------------------------------------------------------------------- ml-100k chain
@pytest.mark.data
def test_ml100k_chain(tmp_path):
    folder = need_data("ml-100k")
    model_file = tmp_path / "m.npz"
    p = run("train", folder, *SMALL, "--save", model_file, "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["data"]["n_ratings"] == 100_000 and out["split"]["n_test"] == 20_000
    assert 0.85 < out["metrics"]["rmse"] < 1.0  # 5 epochs, k=10: about 0.94
    model = fastmf.load(model_file)
    rec, star, god, none, sim_json, ev = run_many([
        ["recommend", model_file, "--user", "196"],
        ["similar", model_file, "--title", "star wars", "-n", "5"],
        ["similar", model_file, "--title", "GODFATHER"],
        ["similar", model_file, "--title", "no such film zzz"],
        ["similar", model_file, "--item", "127", "--json"],
        ["evaluate", model_file, folder, "--ratings-file", "u1.test", "--json"],
    ])
    assert rec.returncode == 0, rec.stderr
    lines = rec.stdout.splitlines()
    assert lines[0] == "top-10 for user 196 (items they rated excluded):"
    assert lines[1].split() == ["rank", "score", "item", "title", "genres"]
    rows = lines[2:]
    ids, _ = model.recommend(196, n=10)
    assert len(rows) == 10
    for row, item in zip(rows, ids.tolist()):
        title = model.item_info_.get(item, "title")
        shown = title if len(title) <= 60 else title[:57] + "..."  # the table clips long titles
        assert re.match(rf"^\s*\d+\s+\d\.\d{{4}}\s+{item}  {re.escape(shown)}", row), row
        assert re.search(r"\(\d{4}\)", title)

    assert star.returncode == 0, star.stderr
    assert star.stdout.startswith("items most similar to 50 Star Wars (1977) (cosine")
    assert [int(r[2]) for r in table_rows(star.stdout)] == model.similar_items(50, n=5)[0].tolist()

    assert god.returncode == 2 and god.stdout == "" and "Traceback" not in god.stderr
    glines = god.stderr.splitlines()
    assert glines[0] == "fastmf similar: error: 2 titles contain 'GODFATHER'; pick one with --item ID:"
    assert glines[1:] == ["  127  Godfather, The (1972)", "  187  Godfather: Part II, The (1974)"]
    check_error(none, "similar", "no item title contains 'no such film zzz'")

    out = json.loads(sim_json.stdout)
    assert out["item"] == 127 and out["title"] == "Godfather, The (1972)" and len(out["items"]) == 10
    assert all(e["title"] and "genres" in e for e in out["items"])

    # the saved model is refit on all 100,000 ratings, so u1.test is training data: evaluate says so
    assert ev.returncode == 0, ev.stderr
    assert ev.stderr.startswith("fastmf evaluate: warning: evaluate: 20000 of the 20000 test ratings")
    assert "training data" in ev.stderr and len(ev.stderr.splitlines()) == 1  # one line, no source echo
    test = fastmf.load_movielens("ml-100k", path=folder, ratings_file="u1.test", download=False)
    with pytest.warns(fastmf.EvaluationWarning, match="training data"):
        expected = fastmf.evaluate(model, test, k=10)
    assert json.loads(ev.stdout)["metrics"] == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------------- user mistakes
def main_in_process(capsys, *args):
    """cli.main(args) as a CompletedProcess (argparse usage errors exit through SystemExit)."""
    capsys.readouterr()
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["fastmf", *map(str, args)], code, out, err)


def test_user_mistakes_give_one_line_and_exit_2(synth, tmp_path, capsys, monkeypatch):
    d, _ = synth
    data, model = d / "train.tsv", d / "m.npz"
    truncated = tmp_path / "trunc.npz"
    truncated.write_bytes(model.read_bytes()[:3000])
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("not a model\n")
    biases = tmp_path / "b.npz"
    p = run("train", data, "--model", "biases", "--split", "none", "--save", biases)
    assert p.returncode == 0, p.stderr
    cases = [
        (["train", tmp_path / "nope.tsv"], "train", "nope.tsv: no such file"),
        (["train", data, "--model", "foo"], "train", "unknown model 'foo'; choose one of: mf, als, ials, "),
        (["train", data, "--lr", "-1"], "train", "MatrixFactorization: lr must be", "got -1.0"),
        (["train", data, "--factors", "0"], "train", "n_factors must be"),
        (["train", data, "--lr", "abc"], "train", "argument --lr: invalid float value: 'abc'"),
        (["train", data, "--model", "biases", "--factors", "3"], "train", "--factors does not apply to --model biases"),
        (["train", data, "--model", "popularity", "--plot", tmp_path / "c.png"], "train", "records no training history"),
        (["train", data, "--param", "nope=1"], "train", "MatrixFactorization has no parameter 'nope'"),
        (["train", data, "--save", tmp_path / "no" / "m.npz"], "train", "does not exist"),
        (["train", data, "--split", "leave-last-out", "--test-size", "0.5"], "train", "number of ratings held out per user"),
        (["train", data, "--validation", "0", "--early-stopping", "2"], "train", "--early-stopping needs a validation split"),
        (["train", data, "--validation", "1.5"], "train", "--validation: a fraction of the train part in [0, 1), got 1.5"),
        (["train", data, "--model", "biases", "--validation", "0.2"], "train", "--validation applies to iterative models"),
        (["train", data, "--lr", "1e6", "--epochs", "2"], "train", "diverged"),
        (["train", "ml-100k", "--offline"], "train", "was not found", "FASTMF_DATA"),
        (["evaluate", model, tmp_path / "nope.tsv"], "evaluate", "nope.tsv: no such file"),
        (["evaluate", tmp_path / "nope.npz", data], "evaluate", "no such model file"),
        (["recommend", model, "--user", "123456"], "recommend", "user 123456 is not in the model (300 ids, 0..299)"),
        (["recommend", model, "--user", "abc"], "recommend", "user id 'abc' is not an integer"),
        (["recommend", model], "recommend", "--user --all is required"),
        (["recommend", model, "--user", "1", "-n", "0"], "recommend", "n must be a positive int"),
        (["recommend", truncated, "--user", "1"], "recommend", "truncated or corrupted model file"),
        (["recommend", garbage, "--user", "1"], "recommend", "not a fastmf model file"),
        (["info", garbage], "info", "not a fastmf model file"),
        (["similar", model, "--item", "99999"], "similar", "item 99999 is not in the model"),
        (["similar", model, "--title", "x"], "similar", "no item titles"),
        (["similar", model, "--item", "1", "--metric", "manhattan"], "similar", "metric 'manhattan'"),
        (["similar", model], "similar", "one of the arguments --item --title --features is required"),
        (["similar", biases, "--item", "1"], "similar", "Biases has no item factors"),
        (["plot", model], "plot", "nothing to draw"),
        (["plot", model, "--factor-map", tmp_path / "x.png", "--dims", "0"], "plot", "--dims '0'"),
        (["plot", model, "--factor-map", tmp_path / "x.png", "--dims", "0,10"], "plot", "factor 10 is outside [0, 10)"),
        (["plot", biases, "--curves", tmp_path / "x.png"], "plot", "no training history"),
        (["plot", biases, "--factor-map", tmp_path / "x.png"], "plot", "Biases has no item factors"),
    ]
    # every case in process (fast: cli.main is what `python -m fastmf` runs) ...
    monkeypatch.delenv("FASTMF_DATA", raising=False)
    monkeypatch.setenv("FASTMF_CACHE", str(tmp_path / "cache"))
    for args, command, *fragments in cases:
        check_error(main_in_process(capsys, *args), command, *fragments)
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "c.png").exists()
    # ... and one of each command through a real process
    picked = [cases[j] for j in (0, 2, 4, 15, 17, 21, 25, 31)]
    for (args, command, *fragments), p in zip(picked, run_many([c[0] for c in picked], tmp_path=tmp_path)):
        check_error(p, command, *fragments)
    # --verbose (before or after the command) shows the traceback instead
    for p in run_many([["--verbose", "recommend", garbage, "--user", "1"],
                       ["recommend", garbage, "--user", "1", "--verbose"]]):
        assert p.returncode != 0 and "Traceback" in p.stderr and "ModelFileError" in p.stderr


def test_string_ids_unknown_user_fallback_and_baselines(tmp_path):
    f = tmp_path / "s.tsv"
    f.write_text("alice\tm1\t5\nalice\tm2\t3\nbob\tm1\t4\nbob\tm3\t2\ncarol\tm2\t5\ncarol\tm3\t4\ncarol\tm4\t1\n")
    m = tmp_path / "s.npz"
    p = run("train", f, "--model", "biases", "--split", "none", "--save", m)
    assert p.returncode == 0, p.stderr
    assert "split: none: trained on all 7 ratings; no test metrics" in p.stdout and "rmse" not in p.stdout
    model = fastmf.load(m)
    known, unknown, fb = run_many([
        ["recommend", m, "--user", "alice", "--json"],
        ["recommend", m, "--user", "dave"],
        ["recommend", m, "--user", "dave", "--fallback", "--json"],
    ])
    out = json.loads(known.stdout)
    ids, scores = model.recommend("alice", n=10)
    assert [e["item"] for e in out["items"]] == ["m3", "m4"] == ids[np.isfinite(scores)].tolist()
    check_error(unknown, "recommend", "user 'dave' is not in the model (3 ids such as 'alice')", "--fallback")
    assert fb.returncode == 0 and "unknown to the model" in fb.stderr
    out = json.loads(fb.stdout)
    assert out["known_user"] is False
    assert [e["item"] for e in out["items"]] == ["m1", "m2", "m3", "m4"]  # mean + item bias, high first
    np.testing.assert_allclose([e["score"] for e in out["items"]],
                               model.global_mean_ + np.sort(model.item_bias_)[::-1], rtol=1e-12)


def test_model_table_availability(synth):
    """Names resolve through one table; a model this fastmf lacks is a clear error, not a crash."""
    d, _ = synth
    from fastmf._validation import check_params

    try:
        check_params("MatrixFactorization", {"solver": "als"}, fastmf.MatrixFactorization._constraints)
        als_available = True
    except ValueError:
        als_available = False
    ials_available = hasattr(fastmf, "ImplicitALS")
    als, ials = run_many([["train", d / "train.tsv", "--model", "als", "--epochs", "2", "--factors", "4", "--json"],
                          ["train", d / "train.tsv", "--model", "ials", "--epochs", "2", "--factors", "4", "--json"]])
    if als_available:
        assert als.returncode == 0 and json.loads(als.stdout)["model"]["params"]["solver"] == "als"
    else:
        check_error(als, "train", "model 'als' is not available in this version of fastmf")
    if ials_available:
        assert ials.returncode == 0 and json.loads(ials.stdout)["model"]["class"] == "ImplicitALS"
    else:
        check_error(ials, "train", "model 'ials' is not available", "fastmf.ImplicitALS")


# ---------------------------------------------------------------------- helpers in process
# (make_model and the model table moved to the service: tests/app/test_service.py)
class FakeStream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_helpers():
    from fastmf import _progress

    entry = {"epoch": 3, "train_rmse": 0.912345, "eval_rmse": 0.934567, "eval_mae": 0.7, "seconds": 0.1}
    assert _progress.format_entry(entry, 20) == "epoch 3/20  train_rmse 0.9123  eval_rmse 0.9346  0.10 s"
    assert _progress.entry_metrics({"train_loss": 352032.5, "eval_ndcg@10": 0.25, "x": float("nan")}) == {
        "train_loss": "3.52e+05", "eval_ndcg@10": "0.2500"}
    assert _progress.entry_metrics(entry, limit=1) == {"train_rmse": "0.9123"}
    assert _progress.wants_bar(True, FakeStream(False)) and not _progress.wants_bar(False, FakeStream(True))
    assert _progress.wants_bar("auto", FakeStream(True)) and not _progress.wants_bar("auto", FakeStream(False))
    with pytest.raises(ValueError, match="progress must be True, False or 'auto', got 'always'"):
        _progress.wants_bar("always")
    s = FakeStream(True)
    bar = _progress.epoch_bar("auto", 2, stream=s)
    assert bar(None, {"epoch": 1, "train_rmse": 1.5, "eval_rmse": 1.25}) is None  # never stops training
    bar(None, {"epoch": 2, "train_rmse": 1.0, "eval_rmse": 1.125})
    bar.close()
    last = s.getvalue().rstrip("\n").split("\r")[-1]
    assert re.fullmatch(r"epoch 2/2 \|.{10}\| 00:00, train_rmse=1\.0000, eval_rmse=1\.1250", last), last
    assert _progress.epoch_bar("auto", 2, stream=FakeStream(False)) is None


def test_fit_progress_verbose_logging_and_history_frame_from_the_api(capsys, caplog):
    import logging

    ds = fastmf.make_ratings(100, 80, 2000, seed=1)
    tr, te = fastmf.split.random_split(ds, test_size=0.2, random_state=0)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    m = fastmf.MatrixFactorization(n_factors=4, random_state=0)  # n_epochs=None: 40
    m.fit(tr, eval_set=te)
    assert capsys.readouterr().err == ""  # silent by default
    m.fit(tr, eval_set=te, progress=True)
    err = capsys.readouterr().err
    assert re.search(r"epoch 40/40 \|.*\| \d\d:\d\d, train_rmse=\d\.\d{4}, eval_rmse=\d\.\d{4}", err), err
    with pytest.raises(ValueError, match="progress must be"):
        m.fit(tr, progress="sometimes")
    # verbose: one INFO record per epoch from fastmf's own logger; the root logger is untouched
    with caplog.at_level(logging.INFO, logger="fastmf"):
        fastmf.MatrixFactorization(n_factors=4, n_epochs=3, verbose=True, random_state=0).fit(tr, eval_set=te)
    records = [r for r in caplog.records if r.name == "fastmf.models.mf"]
    assert [r.getMessage().split("  ")[0] for r in records] == [
        f"MatrixFactorization epoch {j}/3" for j in (1, 2, 3)]
    assert root.handlers == handlers and root.level == level
    pd = pytest.importorskip("pandas")
    frame = m.history_frame()
    assert isinstance(frame, pd.DataFrame) and frame.index.name == "epoch" and len(frame) == 40
    assert frame["eval_rmse"].tolist() == [h["eval_rmse"] for h in m.history_]
    with pytest.raises(ValueError, match="has no training history"):
        fastmf.Biases().fit(tr).history_frame()


def test_verbose_without_logging_configured_shows_lines_and_leaves_root_alone():
    code = ("import logging, fastmf\n"
            "ds = fastmf.make_ratings(50, 40, 800, seed=1)\n"
            "fastmf.MatrixFactorization(n_factors=2, n_epochs=2, verbose=True).fit(ds)\n"
            "assert logging.getLogger().handlers == [], logging.getLogger().handlers\n"
            "assert logging.getLogger().level == logging.WARNING\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    assert p.returncode == 0, p.stderr
    assert [x.split("  ")[0] for x in p.stderr.splitlines()] == [
        "MatrixFactorization epoch 1/2", "MatrixFactorization epoch 2/2"]


def test_version():
    p = run("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"fastmf {fastmf.__version__}"


def test_ials_history_in_train_and_its_learning_curve(synth, tmp_path):
    d, _ = synth
    p = run("train", d / "train.tsv", "--model", "ials", "--epochs", "4", "--factors", "8", "--k", "5",
            "--early-stopping", "2", "--save", tmp_path / "i.npz", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert [set(h) for h in out["history"]] == [{"epoch", "train_loss", "eval_ndcg@5", "eval_precision@5",
                                                 "eval_recall@5", "seconds"}] * len(out["history"])
    ds = read_tsv(d / "train.tsv")
    tr, te = fastmf.split.random_split(ds, test_size=0.2, random_state=0)
    fit_part, val = fastmf.split.random_split(tr, test_size=0.1, random_state=0)
    ref = fastmf.ImplicitALS(n_factors=8, n_epochs=4, random_state=0)
    ref.fit(fit_part, eval_set=val, eval_k=5, early_stopping_rounds=2)
    assert [h["eval_ndcg@5"] for h in out["history"]] == [h["eval_ndcg@5"] for h in ref.history_]
    assert out["best_epoch"] == ref.best_epoch_
    assert out["metrics"] == pytest.approx(fastmf.evaluate(ref, te, k=5), rel=1e-12)
    # --plot for every iterative model (needs fastmf.plot.learning_curve drawing any history keys)
    from fastmf import plot

    try:
        plot.learning_curve([{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5}],
                            path=str(tmp_path / "probe.png"))
    except ValueError as exc:
        pytest.skip(f"fastmf.plot.learning_curve cannot draw a train_loss history yet: {exc}")
    p, q = run_many([["train", d / "train.tsv", "--model", "ials", "--epochs", "3", "--plot", tmp_path / "i.png"],
                     ["plot", tmp_path / "i.npz", "--curves", tmp_path / "i2.png"]])
    assert p.returncode == 0 and f"saved learning curve: {tmp_path / 'i.png'}" in p.stdout, p.stderr
    assert q.returncode == 0, q.stderr
    assert png_size(tmp_path / "i.png")[1] > 5000 and png_size(tmp_path / "i2.png")[1] > 5000


def test_jsonable():
    out = cli.jsonable({"a": np.float32(0.5), 1.0: (np.int64(3), float("nan")), "d": np.dtype("float32"),
                        "arr": np.array([1, 2])})
    assert out == {"a": 0.5, "1.0": [3, None], "d": "float32", "arr": [1, 2]}
    json.dumps(out, allow_nan=False)


def test_recommend_all_batch_job_matches_the_library_and_shows_progress(synth):
    d, _ = synth
    model = fastmf.load(d / "m.npz")
    p = run("recommend", d / "m.npz", "--all", "-n", "4", "--output", d / "recs.csv")
    assert p.returncode == 0, p.stderr
    assert p.stderr == "" and f"{model.n_users_:,} users" in p.stdout
    rows = (d / "recs.csv").read_text().splitlines()
    assert rows[0] == "user,rank,item,score"
    users, ids, scores = model.recommend_all(n=4)
    want = [f"{u},{r + 1},{ids[k, r]},{scores[k, r]:.6g}" for k, u in enumerate(users.tolist())
            for r in range(4) if ids[k, r] >= 0]
    assert rows[1:] == want
