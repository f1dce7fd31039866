"""The JSON API of ``fastmf web`` through Starlette's test client: every endpoint, bad input, the
limits, static files only from the package (path traversal), JSON errors never tracebacks, the Host
check, and concurrent requests answering as serial ones. Skips without the web extra."""

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the web extra (starlette) is not installed")
pytest.importorskip("httpx", reason="httpx (Starlette's test client) is not installed")

from starlette.testclient import TestClient  # noqa: E402

import fastmf  # noqa: E402
from fastmf.app import service  # noqa: E402
from fastmf.app.web import server  # noqa: E402

from test_catalog import TITLES, titled  # noqa: E402

BASE = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def data():
    return titled(fastmf.make_ratings(120, 40, 2400, seed=3), TITLES)


@pytest.fixture(scope="module")
def catalog(data):
    m = fastmf.MatrixFactorization(n_factors=6, n_epochs=20, random_state=0, n_threads=1).fit(data)
    return service.Catalog(m, data)


@pytest.fixture(scope="module")
def client(catalog):
    with TestClient(server.create_app(catalog), base_url=BASE, raise_server_exceptions=False) as c:
        yield c


def ok(response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def error(response, status, kind, match=""):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["kind"] == kind and match in body["error"], body
    assert "Traceback" not in response.text
    return body


def post(client, body, **kwargs):
    return client.post("/api/recommend", content=json.dumps(body), headers={"content-type": "application/json"},
                       **kwargs)


# ---------------------------------------------------------------------- every endpoint
def test_page_and_static_files(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script src="/static/app.js"' in r.text and "http" not in r.text.split("<body>")[1].replace(
        "http-equiv", "")  # nothing fetched from elsewhere
    for name, kind in server.STATIC_FILES.items():
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"] == kind
        from importlib import resources

        assert r.content == (resources.files("fastmf.app.web") / "static" / name).read_bytes()
    assert "Content-Security-Policy" in r.headers and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path", ["/static/server.py", "/static/../server.py", "/static/..%2Fserver.py",
                                  "/static/%2e%2e/%2e%2e/__init__.py", "/static/static/app.js", "/static/",
                                  "/static//etc/passwd", "/server.py", "/static/APP.JS", "/fastmf/app/web/server.py"])
def test_no_other_file_is_served(client, path):
    r = client.get(path)
    assert r.status_code == 404 and r.headers["content-type"] == "application/json", (path, r.text)
    assert "import" not in r.text


def test_info(client, catalog):
    info = ok(client.get("/api/info"))
    assert info == service.jsonable(catalog.info())
    assert info["rating_scale"] == [1.0, 5.0] and info["feedback"] == "ratings" and info["cold_items"] is False


def test_onboarding(client, catalog):
    got = ok(client.get("/api/onboarding", params={"n": 6, "offset": 2, "exclude": "0,3"}))
    assert got == service.jsonable(catalog.onboarding(n=6, offset=2, exclude=[0, 3]))
    assert len(got["items"]) == 6
    assert len(ok(client.get("/api/onboarding"))["items"]) == 12


def test_search(client, catalog):
    got = ok(client.get("/api/search", params={"q": "Matrix, The", "n": 2}))
    assert [r["display_title"] for r in got["items"]] == ["The Matrix (1999)", "The Matrix Reloaded (2003)"]
    assert got["total"] == 2  # "the matrix" is not in "the animatrix"
    assert ok(client.get("/api/search", params={"q": "nothing like it"}))["items"] == []


def test_item_and_similar(client, catalog):
    assert ok(client.get("/api/items/3")) == service.jsonable(catalog.item(3))
    got = ok(client.get("/api/items/3/similar", params={"n": 4}))
    assert got == service.jsonable(catalog.similar(3, n=4))


def test_recommend(client, catalog):
    body = {"ratings": [[0, 5], [3, 4], [8, 1]], "n": 5}
    got = ok(post(client, body))
    assert got.pop("server_ms") >= 0
    assert got == service.jsonable(catalog.recommend(body["ratings"], n=5))
    empty = ok(post(client, {}))
    assert empty["personal"] is False and len(empty["items"]) == 10


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("path, status, kind, match", [
    ("/api/items/999", 404, "unknown_id", "item 999 is not in the model"),
    ("/api/items/abc", 404, "unknown_id", "not an integer"),
    ("/api/items/999/similar", 404, "unknown_id", "999"),
    ("/api/items/1/similar?n=0", 400, "bad_request", "n must be an integer in [1, 100]"),
    ("/api/items/1/similar?n=101", 400, "bad_request", "[1, 100]"),
    ("/api/search?q=", 400, "bad_request", "q is empty"),
    ("/api/search?q=matrix&n=ten", 400, "bad_request", "n must be an integer"),
    ("/api/search?q=" + "x" * 201, 400, "bad_request", "at most 200"),
    ("/api/onboarding?offset=-1", 400, "bad_request", "offset must be an integer"),
    ("/api/onboarding?exclude=1,zz", 404, "unknown_id", "'zz' is not an integer"),
    ("/api/nothing", 404, "not_found", "no such page"),
])
def test_bad_get(client, path, status, kind, match):
    error(client.get(path), status, kind, match)


@pytest.mark.parametrize("body, status, kind, match", [
    ({"ratings": [[0, 6]]}, 400, "bad_request", "ratings[0] = 6 is outside the model's rating scale [1, 5]"),
    ({"ratings": [[0, None]]}, 400, "bad_request", "finite number"),
    ({"ratings": [[999, 3]]}, 404, "unknown_id", "item 999"),
    ({"ratings": [["0", 3]]}, 200, None, ""),  # an id as text is the same id
    ({"ratings": [[0, 3]], "n": 0}, 400, "bad_request", "n must be an integer"),
    ({"ratings": [[0, 3]], "n": 1e3}, 400, "bad_request", "n must be an integer"),
    ({"ratings": {"0": 3}}, 400, "bad_request", "list of [item, rating] pairs"),
    ({"ratings": [[0, 3]], "user": 1}, 400, "bad_request", "must be a JSON object"),
    ([[0, 3]], 400, "bad_request", "must be a JSON object"),
    ({"ratings": [[i % 40, 3] for i in range(1001)]}, 400, "bad_request", "1001 ratings; at most 1000"),
])
def test_bad_post(client, body, status, kind, match):
    r = post(client, body)
    if status == 200:
        ok(r)
    else:
        error(r, status, kind, match)


def test_post_must_be_json(client):
    error(client.post("/api/recommend", content=b'{"ratings": []}', headers={"content-type": "text/plain"}),
          415, "media_type", "application/json")
    error(client.post("/api/recommend", data={"ratings": "1"}), 415, "media_type")
    error(client.post("/api/recommend", content=b'{"ratings": [', headers={"content-type": "application/json"}),
          400, "bad_request", "not valid JSON")
    error(client.post("/api/recommend", content=b"\xff\xfe", headers={"content-type": "application/json"}),
          400, "bad_request", "not valid JSON")
    error(client.post("/api/recommend", content=b"[" * 100_00 + b"]" * 100_00,
                      headers={"content-type": "application/json"}), 400, "bad_request", "not valid JSON")
    error(client.get("/api/recommend"), 405, "method_not_allowed")
    error(client.post("/api/info"), 405, "method_not_allowed")


def test_body_size_limit(catalog):
    app = server.create_app(catalog, max_body=1000)
    with TestClient(app, base_url=BASE) as c:
        small = {"ratings": [[0, 3]] * 50}
        assert len(json.dumps(small)) < 1000
        ok(post(c, small))
        big = json.dumps({"ratings": [[0, 3]] * 200}).encode()
        error(c.post("/api/recommend", content=big, headers={"content-type": "application/json"}),
              413, "too_large", "over 1,000 bytes")

        def chunks():  # no Content-Length: counted while reading
            for i in range(0, len(big), 100):
                yield big[i:i + 100]

        error(c.post("/api/recommend", content=chunks(), headers={"content-type": "application/json"}),
              413, "too_large")
        error(c.post("/api/recommend", content=b"{}", headers={"content-type": "application/json",
                                                                "content-length": "10000000"}), 413, "too_large")
    assert server.MAX_BODY == 64 * 1024


def test_host_header_is_checked(catalog):
    app = server.create_app(catalog)
    for host, status in [("127.0.0.1:8000", 200), ("localhost", 200), ("[::1]:9", 200), ("evil.example", 400),
                         ("evil.example:8000", 400), ("127.0.0.1.evil.example", 400)]:
        with TestClient(app, base_url=BASE) as c:
            r = c.get("/api/info", headers={"host": host})
            assert r.status_code == status, (host, r.text)
            if status == 400:
                assert r.json()["kind"] == "bad_host"
    with TestClient(server.create_app(catalog, allowed_hosts=("*",)), base_url="http://anything.example") as c:
        ok(c.get("/api/info"))


def test_internal_errors_are_json_without_traceback(catalog, monkeypatch):
    app = server.create_app(catalog)

    def broken():
        raise RuntimeError("secret detail at /home/someone/model.npz")

    monkeypatch.setattr(catalog, "info", broken)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        r = c.get("/api/info")
    body = error(r, 500, "internal", "internal error")
    assert "secret" not in r.text and body == {"error": "internal error", "kind": "internal"}


# ---------------------------------------------------------------------- other models
def test_models_without_factors_or_titles():
    ds = fastmf.make_ratings(60, 30, 900, seed=5, item_info=False)
    c = service.Catalog(fastmf.Biases().fit(ds))
    with TestClient(server.create_app(c), base_url=BASE) as client:
        info = ok(client.get("/api/info"))
        assert info["has_factors"] is False and info["has_titles"] is False
        error(client.get("/api/items/1/similar"), 400, "capability", "no item factors")
        error(client.get("/api/search", params={"q": "x"}), 400, "capability", "no item titles")
        got = ok(post(client, {"ratings": [[1, 5]], "n": 3}))
        assert len(got["items"]) == 3 and all(r["because"] is None for r in got["items"])


def test_implicit_model_takes_strengths():
    ds = fastmf.make_ratings(80, 30, 900, seed=2)
    m = fastmf.ImplicitALS(n_factors=4, n_epochs=3, random_state=0).fit(ds)
    with TestClient(server.create_app(service.Catalog(m)), base_url=BASE) as client:
        assert ok(client.get("/api/info"))["feedback"] == "strengths"
        got = ok(post(client, {"ratings": [[1, 1], [2, 1]], "n": 4}))
        ids, _ = m.recommend_new([1, 2], [1, 1], n=4)
        assert [r["item"] for r in got["items"]] == ids.tolist()
        error(post(client, {"ratings": [[1, -1]]}), 400, "bad_request", "negative")


# ---------------------------------------------------------------------- concurrency
def test_concurrent_requests_answer_as_serial_ones(catalog):
    app = server.create_app(catalog)
    requests = [("post", {"ratings": [[i % 40, 1 + i % 5], [(3 * i) % 40, 5]], "n": 10}) for i in range(16)]
    requests += [("get", f"/api/items/{i}/similar?n=6") for i in range(6)]
    requests += [("get", "/api/search?q=the"), ("get", "/api/onboarding?n=8&offset=4")]

    def answer(req):
        with TestClient(app, base_url=BASE) as c:  # one client per thread, one app for all
            if req[0] == "post":
                out = ok(post(c, req[1]))
                out.pop("server_ms")
                return out
            return ok(c.get(req[1]))

    serial = [answer(r) for r in requests]
    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(answer, requests)) == serial
