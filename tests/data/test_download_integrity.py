"""Download integrity (issue 21): pinned digests instead of the server's own .md5, a cap on what an
archive may extract to, nothing cached that does not parse; metadata ids outside int64. Every
download goes to a local HTTP server on 127.0.0.1."""

import functools
import hashlib
import http.server
import io
import struct
import threading
import warnings
import zipfile

import pytest

import fastmf
from fastmf.data import movielens
from fastmf.errors import DataError, UnverifiedDownloadWarning
from fastmf.io import load_movielens

from conftest import need_data
from test_io import SYN_B, check_rows, ml100k_files, zip_bytes


def _zip_folder(folder, prefix):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.iterdir()):
            if p.is_file():
                zf.write(p, prefix + p.name)
    return buf.getvalue()


def _raw_zip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve(tmp_path):
    """serve({relative path: bytes}) -> base URL of a server on 127.0.0.1 holding those files."""
    root = tmp_path / "www"
    servers = []

    def start(files):
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
        t = threading.Thread(target=httpd.serve_forever, daemon=True)
        t.start()
        servers.append((httpd, t))
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd, t in servers:
        httpd.shutdown()
        httpd.server_close()
        t.join(5)


@pytest.fixture
def real():
    """need_data, resolved before the `cache` fixture unsets FASTMF_DATA (list it first)."""
    folders = {name: need_data(name) for name in ("ml-100k", "ml-latest-small")}
    return folders.__getitem__


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTMF_DATA", raising=False)
    monkeypatch.delenv("FASTMF_CACHE", raising=False)
    return tmp_path / "cache"


def _empty(cache):
    return not cache.exists() or list(cache.iterdir()) == []


SMALL = {"ratings.csv": "userId,movieId,rating,timestamp\r\n1,1,4.5,1\r\n2,1,0.5,2\r\n",
         "movies.csv": "movieId,title,genres\r\n1,Alpha (1990),Drama\r\n"}


def test_forged_archive_with_forged_md5_is_refused(serve, cache):
    forged = zip_bytes(SMALL, prefix="ml-latest-small/")
    base = serve({"ml-latest-small.zip": forged,
                  "ml-latest-small.zip.md5": hashlib.md5(forged).hexdigest().encode()})
    with pytest.raises(DataError, match="not a release fastmf knows"):
        load_movielens("ml-latest-small", cache_dir=cache, url=base + "/ml-latest-small.zip")
    assert _empty(cache)
    with pytest.raises(DataError, match="not a release fastmf knows"):
        load_movielens("ml-latest", cache_dir=cache, url=base + "/ml-latest-small.zip")
    assert _empty(cache)


def test_trust_server_checksum_warns_and_still_checks_the_md5(serve, cache):
    archive = zip_bytes(SMALL, prefix="ml-latest/")
    base = serve({"good/ml-latest.zip": archive, "good/ml-latest.zip.md5": hashlib.md5(archive).hexdigest().encode(),
                  "bad/ml-latest.zip": archive, "bad/ml-latest.zip.md5": b"0" * 32})
    with pytest.raises(DataError, match="the server's .* says 0{32}"):
        load_movielens("ml-latest", cache_dir=cache, url=base + "/bad/ml-latest.zip", trust_server_checksum=True)
    assert _empty(cache)
    with pytest.warns(UnverifiedDownloadWarning, match="checksum='sha256:[0-9a-f]{64}'"):
        ds = load_movielens("ml-latest", cache_dir=cache, url=base + "/good/ml-latest.zip",
                            trust_server_checksum=True)
    check_rows(ds, [(1, 1, 4.5, 1), (2, 1, 0.5, 2)])
    with pytest.raises(DataError, match="trust_server_checksum must be True or False"):
        load_movielens("ml-latest", cache_dir=cache, trust_server_checksum="yes")


def test_explicit_sha256_checksum(serve, cache):
    archive = zip_bytes(SMALL, prefix="ml-latest/")
    base = serve({"ml-latest.zip": archive})
    with pytest.raises(DataError, match="checksum mismatch"):
        load_movielens("ml-latest", cache_dir=cache, url=base + "/ml-latest.zip", checksum="sha256:" + "1" * 64)
    assert _empty(cache)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnverifiedDownloadWarning)
        ds = load_movielens("ml-latest", cache_dir=cache, url=base + "/ml-latest.zip",
                            checksum="sha256:" + hashlib.sha256(archive).hexdigest())
    assert len(ds) == 2


def test_known_release_is_accepted_by_its_pinned_file_digests(real, serve, cache):
    # GroupLens' ml-latest-small of 2018-09-26, re-zipped here (so the archive bytes are new): the
    # SHA-256 of every extracted file is pinned, no checksum and no warning needed
    folder = real("ml-latest-small")
    base = serve({"ml-latest-small.zip": _zip_folder(folder, "ml-latest-small/")})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnverifiedDownloadWarning)
        ds = load_movielens("ml-latest-small", cache_dir=cache, url=base + "/ml-latest-small.zip")
    assert len(ds) == 100_836 and ds.n_users == 610
    assert sorted(p.name for p in cache.iterdir()) == ["ml-latest-small"]


def test_ml100k_repack_passes_on_content_and_a_changed_file_fails(real, serve, cache, tmp_path):
    folder = real("ml-100k")
    good = _zip_folder(folder, "ml-100k/")
    tampered_dir = tmp_path / "t"
    tampered_dir.mkdir()
    for p in folder.iterdir():
        data = p.read_bytes()
        if p.name == "u.data":
            data = data.replace(b"196\t242\t3\t", b"196\t242\t5\t", 1)  # one rating changed
        (tampered_dir / p.name).write_bytes(data)
    base = serve({"good/ml-100k.zip": good, "bad/ml-100k.zip": _zip_folder(tampered_dir, "ml-100k/")})
    with pytest.raises(DataError, match="expected md5 0e33842e.* not those of a ml-100k release"):
        load_movielens("ml-100k", cache_dir=cache, url=base + "/bad/ml-100k.zip")
    assert _empty(cache)
    ds = load_movielens("ml-100k", cache_dir=cache, url=base + "/good/ml-100k.zip")
    assert len(ds) == 100_000


def test_pins_match_the_grouplens_files():
    for name in ("ml-100k", "ml-latest-small"):
        folder = need_data(name)
        assert movielens._known_release(name, folder) is not None, name
    ml1m = need_data("ml-1m")
    # the git blob ids of shared/data/README.md, as `git hash-object` prints them
    assert movielens._file_digest(ml1m / "README", "git-blob") == "3d0acab0029027ec47ef446ad12210f0d2c2a9f6"
    pins = dict(movielens._RELEASES["ml-1m"][0][1])
    assert pins.pop("ratings.dat") == "git-blob:77a7c4b150f588c23bb9e1f068aa996c0b413695"
    for fname, pin in pins.items():
        kind, hexdigest = pin.split(":")
        assert movielens._file_digest(ml1m / fname, kind) == hexdigest, fname
    # the partial ratings file is not the release: the release check refuses the folder
    assert movielens._known_release("ml-1m", ml1m) is None


def test_zip_bomb_is_refused_before_it_fills_the_disk(serve, cache):
    bomb = _raw_zip([("ml-latest-small/ratings.csv", b"userId,movieId,rating,timestamp\n1,1,4,1\n"),
                     ("ml-latest-small/movies.csv", b"movieId,title,genres\n1,A (1990),Drama\n"),
                     ("ml-latest-small/pad.bin", b"\0" * (80 << 20))])
    assert len(bomb) < 200_000
    base = serve({"ml-latest-small.zip": bomb})
    with pytest.raises(DataError, match="more than the limit of 67,108,864 bytes"):
        load_movielens("ml-latest-small", cache_dir=cache, url=base + "/ml-latest-small.zip",
                       checksum=hashlib.md5(bomb).hexdigest())
    assert _empty(cache)
    with pytest.raises(DataError, match=r"expands .* \(more than 100x\)"):
        load_movielens("ml-latest-small", cache_dir=cache, url=base + "/ml-latest-small.zip",
                       checksum=hashlib.md5(bomb).hexdigest(), max_extracted_bytes=1 << 30)
    assert _empty(cache)
    with pytest.raises(DataError, match="max_extracted_bytes must be a positive"):
        load_movielens("ml-latest-small", cache_dir=cache, max_extracted_bytes=0)


def test_size_cap_and_a_lying_size_header(tmp_path):
    data = "".join(f"{i},{i * 7919 % 1000},{i % 5 + 1}\n" for i in range(30_000)).encode()
    archive = tmp_path / "a.zip"
    raw = _raw_zip([("x/r.csv", data)])
    archive.write_bytes(raw)
    with pytest.raises(DataError, match="more than the limit of 100,000 bytes"):
        movielens._safe_extract(archive, tmp_path / "out", 100_000)
    movielens._safe_extract(archive, tmp_path / "ok", len(data))
    assert (tmp_path / "ok" / "x" / "r.csv").read_bytes() == data
    # the central directory understates the size (1,000 bytes): at most that much is written, then
    # the CRC check fails and the archive is refused as invalid
    cd = raw.index(b"PK\x01\x02")
    forged = raw[:cd + 24] + struct.pack("<I", 1000) + raw[cd + 28:]
    archive.write_bytes(forged)
    with pytest.raises(DataError, match="not a valid zip archive"):
        movielens._safe_extract(archive, tmp_path / "forged", 100_000)
    assert (tmp_path / "forged" / "x" / "r.csv").stat().st_size <= 1000


def test_archive_that_does_not_parse_is_not_cached(serve, cache):
    bad = dict(ml100k_files(SYN_B))
    bad["u.data"] += "4\t2\tfive\t14\n"
    archive = zip_bytes(bad)
    base = serve({"ml-100k.zip": archive})
    with pytest.raises(DataError, match=r"do not parse.*line 5: field 3 \(rating\) 'five'"):
        load_movielens("ml-100k", cache_dir=cache, url=base + "/ml-100k.zip",
                       checksum=hashlib.md5(archive).hexdigest())
    assert _empty(cache)
    bad_meta = dict(ml100k_files(SYN_B))
    bad_meta["u.user"] += "99999999999999999999|20|M|writer|1\n"
    archive = zip_bytes(bad_meta)
    base = serve({"m/ml-100k.zip": archive})
    with pytest.raises(DataError, match="u.user, line 4: user id '99999999999999999999' is outside the 64-bit"):
        load_movielens("ml-100k", cache_dir=cache, url=base + "/m/ml-100k.zip",
                       checksum=hashlib.md5(archive).hexdigest())
    assert _empty(cache)


@pytest.mark.parametrize("text,match", [("9223372036854775808", "outside the 64-bit integer range"),
                                        ("-9223372036854775809", "outside the 64-bit integer range"),
                                        ("1" * 5000, "is not an integer"), ("1_0", "is not an integer"),
                                        ("", "is not an integer")])
def test_metadata_ids_outside_int64_are_data_errors(tmp_path, text, match):
    files = ml100k_files(SYN_B)
    files["u.item"] = files["u.item"].replace("3|Gamma", f"{text}|Gamma")
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name, body in files.items():
        (folder / name).write_bytes(body.encode("latin-1"))
    with pytest.raises(DataError, match=f"u.item, line 3: movie id .*{match}"):
        load_movielens("ml-100k", path=folder)
    assert issubclass(DataError, ValueError) and fastmf.errors.ParseError.__mro__[1] is DataError
