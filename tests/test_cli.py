"""The command line, end to end through subprocess (python -m fastmf)."""

import os
import re
import subprocess
import sys

import pytest


def run(*args, env_extra=None, data=False, tmp_path=None):
    env = {k: v for k, v in os.environ.items() if k not in ("FASTMF_DATA", "FASTMF_CACHE")}
    if data and os.environ.get("FASTMF_DATA"):
        env["FASTMF_DATA"] = os.environ["FASTMF_DATA"]
    if tmp_path is not None:
        env["FASTMF_CACHE"] = str(tmp_path / "cache")
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "fastmf", *args], capture_output=True, text=True,
                          env=env, timeout=300)


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
    p = run("--help")
    assert p.returncode == 0 and "demo" in p.stdout and "info" in p.stdout
    p = run("demo", "--help")
    assert p.returncode == 0 and "examples:" in p.stdout
    p = run()
    assert p.returncode == 2
