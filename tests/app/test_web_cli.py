"""``fastmf web`` as a command: its help and start-up line at a (pseudo-)terminal, Ctrl-C, the
warning when it listens beyond this computer, clear errors (no extra, no file, port taken), and
that the core package imports nothing web-related."""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

import fastmf

needs_pty = pytest.mark.skipif(not hasattr(os, "openpty"), reason="no pseudo-terminals on this platform")
WEB_MODULES = ("starlette", "uvicorn", "httpx", "anyio", "h11", "selenium", "fastmf.app.web")


def _have_web():
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        return False
    return True


needs_web = pytest.mark.skipif(not _have_web(), reason="the web extra (starlette, uvicorn) is not installed")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("webcli") / "m.npz"
    ds = fastmf.make_ratings(100, 60, 2000, seed=0)
    fastmf.MatrixFactorization(n_factors=4, n_epochs=3, random_state=0).fit(ds).save(path)
    return str(path)


def test_core_imports_nothing_web_related():
    code = ("import sys, fastmf, fastmf.app.cli, fastmf.app.service\n"
            "ds = fastmf.make_ratings(30, 20, 200, seed=0)\n"
            "m = fastmf.MatrixFactorization(n_factors=2, n_epochs=1).fit(ds)\n"
            "fastmf.app.service.Catalog(m).recommend([[1, 4]])\n"
            "fastmf.app.cli.build_parser().parse_args(['web', '--help']) if False else None\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {WEB_MODULES!r} or m in {WEB_MODULES!r}))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def _on_terminal(args, until, timeout=120.0):
    """Start ``python -m fastmf *args`` on a pseudo-terminal, read until ``until`` (a regex) shows,
    then press Ctrl-C (``until`` None: wait for the exit); returns (exit status, everything shown,
    the match)."""
    import pty

    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([sys.executable, "-m", "fastmf", *map(str, args)], stdin=slave, stdout=slave,
                             stderr=slave, start_new_session=True)
    finally:
        os.close(slave)
    screen, found = b"", None
    end = time.monotonic() + timeout
    os.set_blocking(master, False)
    while time.monotonic() < end and p.poll() is None:
        try:
            screen += os.read(master, 65536)
        except (BlockingIOError, OSError):
            time.sleep(0.05)
        found = until is not None and re.search(until, screen.decode("utf-8", "replace"))
        if found:
            break
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGINT)
    code = p.wait(timeout=60)
    os.set_blocking(master, True)
    try:
        while True:
            chunk = os.read(master, 65536)
            if not chunk:
                break
            screen += chunk
    except OSError:
        pass
    os.close(master)
    return code, screen.decode("utf-8", "replace"), found


@needs_pty
def test_help_at_a_terminal():
    code, screen, _ = _on_terminal(["web", "--help"], None)
    assert code == 0, screen
    assert "usage: fastmf web" in screen and "--host HOST" in screen and "--port PORT" in screen
    assert "pip install 'fastmf[web]'" in screen and "127.0.0.1" in screen


@needs_pty
@needs_web
def test_start_up_line_and_ctrl_c(model_file):
    code, screen, found = _on_terminal(["web", model_file, "--port", "0"],
                                       r"serving MatrixFactorization \(60 items\) on http://127\.0\.0\.1:(\d+)/ "
                                       r"\(this computer only; Ctrl-C stops\)")
    assert found, screen
    # Ctrl-C: the server shuts down and the command exits as every fastmf command does on Ctrl-C
    assert code == 130 and "Traceback" not in screen, screen
    assert "warning" not in screen


@needs_pty
@needs_web
def test_listening_beyond_this_computer_warns(model_file):
    code, screen, found = _on_terminal(["web", model_file, "--host", "0.0.0.0", "--port", "0"],
                                       r"serving .* on http://127\.0\.0\.1:\d+/ \(open to the network")
    assert found, screen
    assert "fastmf web: warning: listening on 0.0.0.0, so other computers can reach this page" in screen
    assert code == 130 and "Traceback" not in screen, screen


@needs_pty
@needs_web
def test_serving_a_data_set_trains_first(tmp_path):
    ds = fastmf.make_ratings(80, 50, 1500, seed=2)
    path = tmp_path / "r.tsv"
    path.write_text("".join(f"{u}\t{i}\t{r:g}\n" for u, i, r in zip(ds.user_map.ids[ds.user_index],
                                                                  ds.item_map.ids[ds.item_index], ds.rating)))
    code, screen, found = _on_terminal(["web", path, "--port", "0"], r"serving MatrixFactorization \(50 items\) on "
                                       r"http://127\.0\.0\.1:\d+/")
    assert found, screen
    assert "fastmf web: training MatrixFactorization on 1,500 ratings" in screen and "trained in" in screen
    assert code == 130 and "Traceback" not in screen, screen


@needs_web
def test_a_real_server_answers_parallel_requests_as_serial_ones(model_file):
    """Several "tabs" at once against the real server (uvicorn, its thread pool): the same answers."""
    import json
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    p = subprocess.Popen([sys.executable, "-m", "fastmf", "web", model_file, "--port", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, (line, p.stderr.read() if p.poll() is not None else "")
        url = f"http://127.0.0.1:{m.group(1)}"

        def ask(i):
            if i % 4 == 3:
                with urllib.request.urlopen(f"{url}/api/items/{i % 60}/similar?n=5", timeout=60) as r:
                    return json.load(r)
            body = json.dumps({"ratings": [[i % 60, 1 + i % 5], [(7 * i) % 60, 5]], "n": 10}).encode()
            req = urllib.request.Request(f"{url}/api/recommend", data=body,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as r:
                out = json.load(r)
            out.pop("server_ms")
            return out

        serial = [ask(i) for i in range(24)]
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(ask, range(24))) == serial
    finally:
        p.terminate()
        p.wait(timeout=30)


def _run(*args, code=None):
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "fastmf", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_errors_are_one_line():
    p = _run(code="import sys\nsys.modules['starlette'] = None\nfrom fastmf.app import cli\n"
                  "sys.exit(cli.main(['web', 'nothing.npz']))")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "fastmf web: error: fastmf web needs the web extra" in p.stderr and "pip install 'fastmf[web]'" in p.stderr


@needs_web
def test_bad_model_or_port(model_file, tmp_path):
    p = _run("web", tmp_path / "missing.npz")
    assert p.returncode == 2 and "no such file, folder or MovieLens name" in p.stderr, p.stderr
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not a model")
    p = _run("web", bad)
    assert p.returncode == 2 and p.stderr.startswith("fastmf web: error:") and "Traceback" not in p.stderr
    p = _run("web", model_file, "--port", "70000")
    assert p.returncode == 2 and "--port 70000: a port number in [0, 65535]" in p.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        p = _run("web", model_file, "--port", port)
    assert p.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in p.stderr, p.stderr
