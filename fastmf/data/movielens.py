"""The MovieLens data sets: where they are found or downloaded (:func:`load_movielens`), their
metadata files, and the ml-100k predefined splits (:func:`load_movielens_split`).

Where MovieLens comes from (first match wins)
--------------------------------------------
1. ``path=``: a folder holding the files of the archive (``u.data``, ``u.item``... or ``ratings.dat``,
   ``movies.dat``... or ``ratings.csv``, ``movies.csv``), used as is (an error if the ratings file is
   not there).
2. ``$FASTMF_DATA/<name>`` when the environment variable ``FASTMF_DATA`` is set.
3. The cache, ``<cache>/<name>`` with ``<cache>`` = ``cache_dir=`` or ``$FASTMF_CACHE`` or
   ``$XDG_CACHE_HOME/fastmf`` or ``~/.cache/fastmf``.
4. Download of ``https://files.grouplens.org/datasets/movielens/<name>.zip`` (``url=`` overrides), checked
   against the pinned MD5 (or ``checksum=``, or the ``.md5`` GroupLens publishes beside the archive for
   the re-issued ``ml-latest*``), extracted with path-traversal checks into a temporary folder inside
   the cache and renamed into place only when complete.

MovieLens is licensed by GroupLens Research for research use; it is never shipped with fastmf.
Please cite F. M. Harper and J. A. Konstan, "The MovieLens Datasets: History and Context",
ACM TiiS 5(4), 2015.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
import shutil
import stat
import sys
import tempfile
import warnings
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from fastmf.data.ratings import Metadata, Ratings
from fastmf.data.readers import BASE_URL, FIELD_NAMES, MISSING_YEAR, _as_array, _parse_file, _to_ratings
from fastmf.errors import DataError, DatasetNotFoundError, UnverifiedDownloadWarning

__all__ = ["load_movielens", "load_movielens_split", "DatasetNotFoundError", "MOVIELENS",
           "default_cache_dir"]

logger = logging.getLogger(__name__)

ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western")

ML1M_OCCUPATIONS = ("other", "academic/educator", "artist", "clerical/admin", "college/grad student",
                    "customer service", "doctor/health care", "executive/managerial", "farmer",
                    "homemaker", "K-12 student", "lawyer", "programmer", "retired", "sales/marketing",
                    "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
                    "unemployed", "writer")


def _spec(ratings, sep, header, scale, md5, layout, meta, max_extract):
    return {"ratings": ratings, "sep": sep, "header": header, "rating_scale": scale, "md5": md5,
            "layout": layout, "metadata": meta, "max_extract": max_extract}


_CSV = ("movies.csv",)
_MiB = 1 << 20
#: The MovieLens sets :func:`load_movielens` knows: ratings file, format, rating scale, the archive's
#: MD5 as GroupLens publishes it for the stable releases (pinned here, never fetched), and the most
#: bytes its archive may extract to (the real archives extract to 16 MB, 25 MB, 3.3 MB, about 1.2 GB,
#: 875 MB and 1.2 GB).
MOVIELENS = {
    "ml-100k": _spec("u.data", "\t", False, (1.0, 5.0), "0e33842e24a9c977be4e0107933c0723", "100k",
                     ("u.item", "u.user"), 64 * _MiB),
    "ml-1m": _spec("ratings.dat", "::", False, (1.0, 5.0), "c4d9eecfca2ab87c1945afe126590906", "1m",
                   ("movies.dat", "users.dat"), 128 * _MiB),
    "ml-latest-small": _spec("ratings.csv", ",", True, (0.5, 5.0), None, "csv", _CSV, 64 * _MiB),
    "ml-latest": _spec("ratings.csv", ",", True, (0.5, 5.0), None, "csv", _CSV, 4096 * _MiB),
    "ml-20m": _spec("ratings.csv", ",", True, (0.5, 5.0), "cd245b17a1ae2cc31bb14903e1204af3", "csv", _CSV,
                    2048 * _MiB),
    "ml-25m": _spec("ratings.csv", ",", True, (0.5, 5.0), "6b51fb2759a8657d3bfcbfc42b592ada", "csv", _CSV,
                    3072 * _MiB),
}

#: The most an archive member may expand, relative to its compressed size (MovieLens text
#: compresses 3-6x; a zip bomb reaches 1000x).
MAX_COMPRESSION_RATIO = 100

#: Known releases, pinned by the digest of every file they hold (computed from the GroupLens files,
#: which are byte for byte as distributed): a downloaded archive whose extracted files all match one
#: release is genuine whatever its zip packaging, and needs no archive checksum. "git-blob:" is the
#: id ``git hash-object`` prints (SHA-1 of the blob), the only pin known for ml-1m's ratings.dat.
#: ml-latest (re-issued, no release known here) and an ml-latest-small other than this one need
#: ``checksum=`` or ``trust_server_checksum=True``.
_RELEASES = {
    "ml-100k": (
        ("1998-04 (the 2016 README)", {
            "README": "sha256:4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52",
            "allbut.pl": "sha256:bfc6a75cbd65c74bb38a0b580dbe866af252733dfa9a65a2c4b93258774ee8a3",
            "mku.sh": "sha256:7929735c375e89a04340e34de621bf2ea643cd04b0bcda2c6f458e4be961ae71",
            "u.data": "sha256:06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
            "u.genre": "sha256:9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
            "u.info": "sha256:5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b",
            "u.item": "sha256:553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
            "u.occupation": "sha256:cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
            "u.user": "sha256:f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
            "u1.base": "sha256:ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
            "u1.test": "sha256:18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
            "u2.base": "sha256:6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
            "u2.test": "sha256:4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
            "u3.base": "sha256:afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
            "u3.test": "sha256:0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
            "u4.base": "sha256:219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
            "u4.test": "sha256:7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
            "u5.base": "sha256:a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485",
            "u5.test": "sha256:351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634",
            "ua.base": "sha256:67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2",
            "ua.test": "sha256:d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42",
            "ub.base": "sha256:237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881",
            "ub.test": "sha256:d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da",
        }),
    ),
    "ml-latest-small": (
        ("2018-09-26", {
            "README.txt": "sha256:63d22ac138e80fae37021797ed8e1b9424b5239dc576a137422adf783ae3f404",
            "links.csv": "sha256:97ad18e4e56a09363c65676b6cb3482ce3e2cea2372a24620c1599c843325f31",
            "movies.csv": "sha256:5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
            "ratings.csv": "sha256:aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
            "tags.csv": "sha256:92a9f8bb7916dceef6151209845788c3643f794dfa79d1feaec7121b5960399d",
        }),
    ),
    "ml-1m": (
        ("2003-02", {
            "README": "sha256:2d5ddce86ccbd247207456165827b4b9ddf27282bca93807d4c763e28414f133",
            "movies.dat": "sha256:0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9",
            "users.dat": "sha256:1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3",
            "ratings.dat": "git-blob:77a7c4b150f588c23bb9e1f068aa996c0b413695",
        }),
    ),
}


_ML100K_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")




def default_cache_dir() -> Path:
    """``$FASTMF_CACHE``, else ``$XDG_CACHE_HOME/fastmf``, else ``~/.cache/fastmf``."""
    env = os.environ.get("FASTMF_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fastmf"


def _check_name(name):
    if name not in MOVIELENS:
        raise DataError(f"unknown MovieLens set {name!r}; known: {', '.join(MOVIELENS)}")
    return MOVIELENS[name]


def _is_bare_name(fname):
    p = Path(fname)
    return not p.is_absolute() and len(p.parts) == 1


def _missing_ratings_hint(folder, fname):
    """Sentence naming other rating-like files in ``folder`` and the ratings_file= argument."""
    others = []
    if folder.is_dir():
        stem = Path(fname).stem
        others = sorted(p.name for p in folder.iterdir()
                        if p.is_file() and p.name != fname and p.name.startswith(stem))
    hint = "pass ratings_file= to read the ratings from another file"
    if others:
        hint += f" (this folder has {', '.join(others)}: e.g. ratings_file={others[0]!r})"
    return hint


def _where_message(name, spec, fname, searched, cache_root, reason, ratings_hint=True):
    lines = [f"MovieLens {name!r} was not found ({reason}). Searched, in order:"]
    for i, (label, folder, why) in enumerate(searched, 1):
        lines.append(f"  {i}. {label}: {folder}: {why}")
    needed = ", ".join([fname, *spec["metadata"]])
    lines.append(f"To use a local copy, unpack {name}.zip ({BASE_URL}/{name}.zip) so that its files "
                 f"({needed}) are in one of:")
    lines.append(f"  - $FASTMF_DATA/{name}  (set the environment variable FASTMF_DATA to the folder "
                 f"that holds {name}/)")
    lines.append(f"  - {cache_root / name}  (the download cache; FASTMF_CACHE or cache_dir= moves it)")
    lines.append("  - any folder, passed as path=...")
    if ratings_hint and (fname != spec["ratings"] or name == "ml-1m"):
        lines.append(f"The ratings file is {fname!r}; pass ratings_file= to read another file.")
    return "\n".join(lines)


def _resolve(name, spec, path, fname, download, cache_dir, checksum, url, progress, ratings_hint=True,
             trust_server_checksum=False, max_extracted_bytes=None, validate=None):
    """The folder holding ``name``'s files, by the documented order."""
    if path is not None:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise DatasetNotFoundError(f"path={os.fspath(path)!r} is not a folder (it should hold the "
                                       f"files of {name}.zip: {fname}, {', '.join(spec['metadata'])})")
        if not (folder / fname).is_file():
            hint = f"; {_missing_ratings_hint(folder, fname)}" if ratings_hint else ""
            raise DatasetNotFoundError(f"{folder}: no {fname} (the {name} ratings file){hint}")
        return folder
    cache_root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    searched = []
    env = os.environ.get("FASTMF_DATA")
    candidates = []
    if env:
        candidates.append(("$FASTMF_DATA", Path(env).expanduser() / name))
    else:
        searched.append(("$FASTMF_DATA", f"<unset>/{name}", "FASTMF_DATA is not set"))
    candidates.append(("cache", cache_root / name))
    for label, folder in candidates:
        if (folder / fname).is_file():
            logger.debug("fastmf: %s found in %s", name, folder)
            return folder
        why = "does not exist" if not folder.is_dir() else f"has no {fname}; {_missing_ratings_hint(folder, fname)}"
        searched.append((label, folder, why))
    if not download:
        raise DatasetNotFoundError(_where_message(name, spec, fname, searched, cache_root,
                                                  "download=False", ratings_hint),
                                   dataset=name, reason="offline")
    try:
        return _download(name, spec, fname, cache_root, url, checksum, progress, trust_server_checksum,
                         max_extracted_bytes, validate)
    except _NetworkError as exc:
        raise DatasetNotFoundError(_where_message(name, spec, fname, searched, cache_root,
                                                  f"download failed: {exc}", ratings_hint),
                                   dataset=name, reason="download_failed", detail=str(exc)) from exc


# ------------------------------------------------------------------------------------------ download


class _NetworkError(OSError):
    pass


def _progress_fn(progress):
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    if progress is True:
        def bar(done, total):
            if total:
                frac = min(done / total, 1.0)
                fill = int(frac * 30)
                sys.stderr.write(f"\r[{'#' * fill}{' ' * (30 - fill)}] {frac:6.1%} "
                                 f"{done / 1e6:.1f}/{total / 1e6:.1f} MB")
            else:
                sys.stderr.write(f"\r{done / 1e6:.1f} MB")
            if total and done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        return bar
    raise DataError(f"progress must be None, a bool or a callable(done_bytes, total_bytes), got {progress!r}")


def _parse_checksum(checksum):
    """(algorithm, lowercase hex) from an MD5 (32 hex) or SHA-256 (64 hex) string, optionally
    prefixed 'md5:' / 'sha256:'."""
    if not isinstance(checksum, str):
        raise DataError(f"checksum must be a hex MD5 or SHA-256 string, got {checksum!r}")
    text = checksum.strip().lower()
    algo = None
    if ":" in text:
        algo, text = text.split(":", 1)
    if not re.fullmatch(r"[0-9a-f]{32}|[0-9a-f]{64}", text):
        raise DataError(f"checksum must be 32 (MD5) or 64 (SHA-256) hex digits, got {checksum!r}")
    guessed = "md5" if len(text) == 32 else "sha256"
    if algo not in (None, guessed):
        raise DataError(f"checksum {checksum!r}: {algo} needs {32 if algo == 'md5' else 64} hex digits")
    return guessed, text


def _open_url(url, timeout=60):
    import urllib.error
    import urllib.request

    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except (urllib.error.URLError, OSError) as exc:
        raise _NetworkError(f"cannot fetch {url}: {getattr(exc, 'reason', exc)}") from exc


def _published_md5(url):
    with _open_url(url + ".md5") as resp:
        text = resp.read(4096).decode("ascii", errors="replace")
    m = re.search(r"\b([0-9a-fA-F]{32})\b", text)
    if m is None:
        raise DataError(f"{url}.md5 holds no MD5 ({text[:80]!r}); pass checksum= to verify the archive")
    return "md5", m.group(1).lower()


def _fetch(url, dest, algo, progress):
    """Stream ``url`` to ``dest``; return the hex digest. Raises ValueError on a short read."""
    import http.client

    h = hashlib.new(algo)
    with _open_url(url) as resp, open(dest, "wb") as out:
        total = resp.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        done = 0
        report = _progress_fn(progress)
        try:
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if report:
                    report(done, total)
        except (OSError, http.client.HTTPException) as exc:  # IncompleteRead, reset connection
            raise DataError(f"download of {url} was cut short after {done:,} bytes ({exc!r})") from exc
    if total is not None and done != total:
        raise DataError(f"download of {url} is truncated: {done:,} of {total:,} bytes")
    logger.info("fastmf: downloaded %s (%d bytes)", url, done)
    return h.hexdigest()


def _safe_extract(archive, dest, max_bytes):
    """Extract ``archive`` into ``dest`` after rejecting any absolute, '..', drive-letter or symlink
    member (the whole archive is refused, nothing is extracted then), and stop with a DataError as
    soon as the members would take more than ``max_bytes`` or one expands more than
    MAX_COMPRESSION_RATIO times: declared sizes are checked first, and the bytes actually written
    are counted too (a forged header cannot lie its way past the cap)."""
    import zipfile
    import zlib

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(dest)

    def too_big(what):
        return DataError(f"{archive.name}: {what}, more than the limit of {max_bytes:,} bytes for this "
                         "data set (max_extracted_bytes= raises it); the archive is rejected")

    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            declared = 0
            for info in members:
                n = info.filename
                parts = PurePosixPath(n.replace("\\", "/")).parts
                if (n.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", n) or ".." in parts
                        or "\x00" in n):
                    raise DataError(f"{archive.name}: unsafe member {n!r} (absolute path or '..'); "
                                    "the archive is rejected")
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise DataError(f"{archive.name}: member {n!r} is a symbolic link; the archive is rejected")
                target = os.path.realpath(os.path.join(root, *parts)) if parts else root
                if os.path.commonpath([root, target]) != root:
                    raise DataError(f"{archive.name}: member {n!r} would be written outside the "
                                    "target folder; the archive is rejected")
                declared += info.file_size
                if declared > max_bytes:
                    raise too_big(f"its members declare {declared:,}+ bytes")
                if info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1024):
                    raise DataError(f"{archive.name}: member {n!r} expands {info.compress_size:,} bytes "
                                    f"to {info.file_size:,} (more than {MAX_COMPRESSION_RATIO}x); the "
                                    "archive is rejected")
            written = 0
            for info in members:
                path = Path(root, *PurePosixPath(info.filename.replace("\\", "/")).parts)
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(path, "wb") as out:
                    while True:
                        chunk = src.read(1 << 20)
                        if not chunk:
                            break
                        written += len(chunk)
                        if written > max_bytes:
                            raise too_big(f"it extracts to more than {written:,} bytes")
                        out.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, NotImplementedError) as exc:
        raise DataError(f"{archive.name} is not a valid zip archive ({exc}); it may be truncated or "
                        "corrupted") from exc


def _file_digest(path, kind):
    if kind == "git-blob":
        h = hashlib.sha1(b"blob %d\x00" % path.stat().st_size)
    else:
        h = hashlib.new(kind)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _known_release(name, folder):
    """The label of the pinned release whose every file ``folder`` holds byte for byte, or None."""
    for label, files in _RELEASES.get(name, ()):
        ok = True
        for fname, pin in files.items():
            kind, hexdigest = pin.split(":")
            if not (folder / fname).is_file() or _file_digest(folder / fname, kind) != hexdigest:
                ok = False
                break
        if ok:
            return label
    return None


def _download(name, spec, fname, cache_root, url, checksum, progress, trust_server_checksum=False,
              max_extracted_bytes=None, validate=None):
    """Download, verify, extract (size-capped), check the files parse, then move into the cache.

    Trust, in order: ``checksum=`` (the archive must match it); the pinned archive MD5 of a stable
    set; the pinned file digests of a known release (checked after extraction, so a repacked
    mirror passes); the server's ``<url>.md5`` only with ``trust_server_checksum=True`` (with an
    UnverifiedDownloadWarning). Anything else is refused, and nothing is left in the cache.
    """
    url = url or f"{BASE_URL}/{name}.zip"
    server_md5 = None
    if checksum is not None:
        algo, expected = _parse_checksum(checksum)
    elif spec["md5"] is not None:
        algo, expected = "md5", spec["md5"]
    else:
        algo, expected = "sha256", None  # only a known release's file digests can vouch for it
    max_bytes = spec["max_extract"] if max_extracted_bytes is None else max_extracted_bytes
    cache_root.mkdir(parents=True, exist_ok=True)
    target = cache_root / name
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=cache_root))
    try:
        archive = tmp / f"{name}.zip"
        logger.info("fastmf: downloading %s to %s", url, cache_root)
        digest = _fetch(url, archive, algo, progress)
        archive_ok = expected is not None and digest == expected
        if checksum is not None and not archive_ok:
            raise DataError(f"checksum mismatch for {url}: expected {algo} {expected}, got {digest}; "
                            "the download is corrupt or the archive changed. Nothing was written to "
                            f"{cache_root}.")
        extracted = tmp / "extract"
        _safe_extract(archive, extracted, max_bytes)
        entries = [p for p in extracted.iterdir() if p.name != "__MACOSX"]
        if (extracted / fname).is_file():
            root = extracted
        elif len(entries) == 1 and entries[0].is_dir():
            root = entries[0]
        elif (extracted / name).is_dir():
            root = extracted / name
        else:
            root = extracted
        release = None if archive_ok else _known_release(name, root)
        if not archive_ok and release is None:
            if expected is not None:
                raise DataError(f"checksum mismatch for {url}: expected {algo} {expected}, got {digest}, "
                                f"and its files are not those of a {name} release fastmf knows; the "
                                "download is corrupt or the archive changed (pass checksum= to accept "
                                f"another release). Nothing was written to {cache_root}.")
            if not trust_server_checksum:
                raise DataError(f"{url}: this {name} archive is not a release fastmf knows (its files "
                                f"match no pinned SHA-256), so its integrity cannot be checked: pass "
                                f"checksum='sha256:<digest>' (e.g. from a trusted copy), or "
                                "trust_server_checksum=True to accept the MD5 the same server publishes "
                                f"beside it. Nothing was written to {cache_root}.")
            server_md5 = _published_md5(url)[1]
            got_md5 = _file_digest(archive, "md5")
            if got_md5 != server_md5:
                raise DataError(f"checksum mismatch for {url}: the server's {url}.md5 says {server_md5}, "
                                f"the archive is {got_md5}. Nothing was written to {cache_root}.")
            warnings.warn(f"{url}: accepted on the MD5 published by the same server "
                          f"(trust_server_checksum=True); a forged archive with a forged .md5 would pass "
                          f"too. Pass checksum='sha256:{_file_digest(archive, 'sha256')}' next time to pin "
                          "this release.", UnverifiedDownloadWarning, stacklevel=4)
        if not (root / fname).is_file():
            raise DataError(f"{url}: the archive has no {fname}; nothing was written to {cache_root}")
        if validate is not None:
            try:
                validate(root)
            except ValueError as exc:
                raise DataError(f"{url}: the archive's files do not parse, so nothing was written to "
                                f"{cache_root}: {exc}") from exc
        try:
            os.rename(root, target)  # atomic on one file system; fails if target is a non-empty folder
        except OSError:
            if not (target / fname).is_file():
                raise DataError(f"cannot install {name} into {target}: the folder exists without "
                                f"{fname}; remove it and retry") from None
            # another process installed it meanwhile: use theirs
        logger.info("fastmf: %s cached in %s (%s)", name, target,
                    f"release {release}" if release else f"{algo} {digest if archive_ok else server_md5}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# ------------------------------------------------------------------------------------------ metadata

_YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")


def _title_year(title, fallback=""):
    m = _YEAR_IN_TITLE.search(title)
    if m:
        return int(m.group(1))
    m = re.search(r"(\d{4})\s*$", fallback)
    return int(m.group(1)) if m else MISSING_YEAR


def _read_lines(path, encoding):
    with open(path, "rb") as fh:
        text = fh.read().decode(encoding)
    return text.splitlines()


def _split_checked(path, lines, sep, n_fields, at_least=False):
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split(sep)
        if len(fields) != n_fields and not (at_least and len(fields) > n_fields):
            raise DataError(f"{path}, line {lineno}: expected {n_fields} fields separated by {sep!r}, "
                             f"found {len(fields)}: {line[:120]!r}")
        rows.append((lineno, fields))
    return rows


_INT64 = (-(2 ** 63), 2 ** 63 - 1)


def _int_field(path, lineno, text, what):
    t = text.strip()
    # digits only (int() would also take "1_000" and non-ASCII digits); 20 digits at most, so that
    # int() never meets its 4300-digit limit and the int64 check below is all that is needed
    if not re.fullmatch(r"[+-]?[0-9]{1,20}", t, flags=re.ASCII):
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise DataError(f"{path}, line {lineno}: {what} {shown!r} is not an integer")
    value = int(t)
    if not _INT64[0] <= value <= _INT64[1]:
        raise DataError(f"{path}, line {lineno}: {what} {text!r} is outside the 64-bit integer range "
                        f"[{_INT64[0]}, {_INT64[1]}]")
    return value


def _item_metadata(ids, titles, genres, years):
    return Metadata(np.asarray(ids, dtype=np.int64),
                    {"title": np.asarray(titles, dtype=str), "genres": np.asarray(genres, dtype=str),
                     "year": np.asarray(years, dtype=np.int64)})


def _ml100k_items(folder):
    path = folder / "u.item"
    genre_names = list(ML100K_GENRES)
    gpath = folder / "u.genre"
    if gpath.is_file():
        table = {}
        for lineno, f in _split_checked(gpath, _read_lines(gpath, "latin-1"), "|", 2):
            table[_int_field(gpath, lineno, f[1], "genre index")] = f[0]
        if sorted(table) == list(range(len(table))) and table:
            genre_names = [table[i] for i in range(len(table))]
    ng = len(genre_names)
    ids, titles, genres, years = [], [], [], []
    for lineno, f in _split_checked(path, _read_lines(path, "latin-1"), "|", 5 + ng):
        ids.append(_int_field(path, lineno, f[0], "movie id"))
        titles.append(f[1])
        flags = f[5:]
        if any(x not in ("0", "1") for x in flags):
            raise DataError(f"{path}, line {lineno}: genre flags must be 0 or 1, got {'|'.join(flags)!r}")
        genres.append("|".join(g for g, x in zip(genre_names, flags) if x == "1"))
        years.append(_title_year(f[1], f[2]))
    return _item_metadata(ids, titles, genres, years)


def _ml100k_users(folder):
    path = folder / "u.user"
    rows = _split_checked(path, _read_lines(path, "latin-1"), "|", 5)
    ids = [_int_field(path, ln, f[0], "user id") for ln, f in rows]
    age = [_int_field(path, ln, f[1], "age") for ln, f in rows]
    return Metadata(np.asarray(ids, dtype=np.int64), {
        "age": np.asarray(age, dtype=np.int64),
        "gender": np.asarray([f[2] for _, f in rows], dtype=str),
        "occupation": np.asarray([f[3] for _, f in rows], dtype=str),
        "zip": np.asarray([f[4] for _, f in rows], dtype=str)})


def _ml1m_items(folder):
    path = folder / "movies.dat"
    rows = _split_checked(path, _read_lines(path, "latin-1"), "::", 3)
    return _item_metadata([_int_field(path, ln, f[0], "movie id") for ln, f in rows],
                          [f[1] for _, f in rows], [f[2] for _, f in rows],
                          [_title_year(f[1]) for _, f in rows])


def _ml1m_users(folder):
    path = folder / "users.dat"
    rows = _split_checked(path, _read_lines(path, "latin-1"), "::", 5)
    occ = []
    for ln, f in rows:
        code = _int_field(path, ln, f[3], "occupation code")
        if not 0 <= code < len(ML1M_OCCUPATIONS):
            raise DataError(f"{path}, line {ln}: occupation code {code} outside 0..{len(ML1M_OCCUPATIONS) - 1}")
        occ.append(ML1M_OCCUPATIONS[code])
    return Metadata(np.asarray([_int_field(path, ln, f[0], "user id") for ln, f in rows], dtype=np.int64), {
        "age": np.asarray([_int_field(path, ln, f[2], "age") for ln, f in rows], dtype=np.int64),
        "gender": np.asarray([f[1] for _, f in rows], dtype=str),
        "occupation": np.asarray(occ, dtype=str),
        "zip": np.asarray([f[4] for _, f in rows], dtype=str)})


def _csv_items(folder):
    path = folder / "movies.csv"
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        head = next(reader, None)
        if head is None or [h.strip() for h in head[:3]] != ["movieId", "title", "genres"]:
            raise DataError(f"{path}, line 1: expected the header movieId,title,genres, got {head!r}")
        ids, titles, genres, years = [], [], [], []
        for row in reader:
            if not row:
                continue
            if len(row) != 3:
                raise DataError(f"{path}, line {reader.line_num}: expected 3 fields, found {len(row)}: {row!r}")
            ids.append(_int_field(path, reader.line_num, row[0], "movieId"))
            title = row[1].strip()
            titles.append(title)
            genres.append("" if row[2] == "(no genres listed)" else row[2])
            years.append(_title_year(title))
    return _item_metadata(ids, titles, genres, years)


_METADATA_READERS = {
    "100k": (("u.item", _ml100k_items), ("u.user", _ml100k_users)),
    "1m": (("movies.dat", _ml1m_items), ("users.dat", _ml1m_users)),
    "csv": (("movies.csv", _csv_items),),
}


def _metadata(spec, folder):
    """(item_info, user_info) from the files present in ``folder``; a missing file gives None with a
    warning."""
    out = []
    for fname, reader in _METADATA_READERS[spec["layout"]]:
        if (folder / fname).is_file():
            out.append(reader(folder))
        else:
            warnings.warn(f"{folder}: no {fname}; loading without that metadata", stacklevel=3)
            out.append(None)
    return out[0], (out[1] if len(out) > 1 else None)


def _check_max_bytes(value):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"max_extracted_bytes must be a positive number of bytes or None, got {value!r}")


def _validate_folder(spec, root, files):
    """Parse ``files`` and the metadata of a freshly extracted archive (ValueError if they do not),
    so that a download is cached only when it can be loaded."""
    for f in files:
        if (root / f).is_file():
            _parse_file(root / f, spec["sep"], FIELD_NAMES, spec["header"], spec["rating_scale"], None,
                        "utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a missing metadata file is reported when loading
        _metadata(spec, root)


def load_movielens(name: str, path: str | os.PathLike | None = None, download: bool = True,
                   ratings_file: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                   checksum: str | None = None, url: str | None = None, progress: Any = None, *,
                   dtype: Any = None, trust_server_checksum: bool = False,
                   max_extracted_bytes: int | None = None) -> Ratings:
    """Load a MovieLens data set, with item (and, where the set has them, user) metadata.

    Parameters
    ----------
    name : {"ml-100k", "ml-1m", "ml-latest-small", "ml-latest", "ml-20m", "ml-25m"}
        Unknown names raise ValueError listing these.
    path : str or os.PathLike, optional
        Folder holding the set's files in GroupLens' layout; used as is (no search, no download).
    download : bool
        When the set is in no folder searched, download it into the cache (default). With False a
        :class:`DatasetNotFoundError` lists the folders searched and where to put the files.
    ratings_file : str or os.PathLike, optional
        Ratings file to read instead of the set's own (``u.data``, ``ratings.dat``, ``ratings.csv``):
        a bare file name is looked up in the set's folder (e.g. ``"u1.base"``, or
        ``"ratings.PARTIAL_users_1-2999.dat"``); a path with a folder part is read from there, and the
        metadata from ``path`` or else from that file's folder.
    cache_dir : str or os.PathLike, optional
        Cache root (default :func:`default_cache_dir`: ``$FASTMF_CACHE`` or ``~/.cache/fastmf``).
    checksum : str, optional
        Expected MD5 (32 hex digits) or SHA-256 (64; ``"sha256:..."``) of the archive. By default a
        download is accepted when it matches the MD5 pinned in fastmf for the stable sets, or when its
        extracted files all match the SHA-256 pinned for a release fastmf knows (ml-100k, ml-1m,
        ml-latest-small of 2018-09-26); anything else (``ml-latest``, a newer ``ml-latest-small``)
        needs ``checksum=`` or ``trust_server_checksum=True``.
    trust_server_checksum : bool
        Accept an archive fastmf cannot verify on the MD5 the same server publishes beside it
        (``<url>.md5``), with an :class:`~fastmf.errors.UnverifiedDownloadWarning`: this only catches
        a corrupt transfer, not a forged archive. Default False.
    max_extracted_bytes : int, optional
        Most bytes the archive may extract to (default per set: 64 MiB for ml-100k and
        ml-latest-small, 128 MiB for ml-1m, 2-4 GiB for the large sets); a member expanding more than
        100x is refused too.
    url : str, optional
        Archive URL (default ``https://files.grouplens.org/datasets/movielens/<name>.zip``).
    progress : None, bool or callable, optional
        Download progress: None/False silent (messages go to the ``fastmf.data.movielens`` logger at INFO),
        True draws a bar on stderr, a callable is called as ``progress(done_bytes, total_bytes)``
        (total None when the server does not say).
    dtype : {None, "float32", "float64"}
        Rating dtype (None: float32, exact for MovieLens' stars and half-stars).

    Returns
    -------
    Ratings
        Raw MovieLens ids (integers). ``item_info`` has the columns ``title`` (as in the file, e.g.
        ``"Star Wars (1977)"``), ``genres`` (``"|"``-joined, empty when none is listed) and ``year``
        (int64 from the title, for ml-100k else from the release date; ``-1`` when absent).
        ``user_info`` (ml-100k, ml-1m) has ``age`` (int; ml-1m stores its age-bucket code: 1, 18, 25,
        35, 45, 50, 56), ``gender``, ``occupation`` (the name; ml-1m's codes are mapped with its
        README) and ``zip``; None for the CSV sets. Rating scale (1, 5) for ml-100k/ml-1m,
        (0.5, 5) for the others.

    Raises
    ------
    DatasetNotFoundError
        (a FileNotFoundError) when the files are nowhere and cannot be downloaded; the message says
        where they were looked for and where to put them. With ``path=`` it names the missing file
        and, for ml-1m, suggests ``ratings_file=``.
    ValueError
        A corrupt download (checksum mismatch, truncated or invalid zip, an unsafe member such as
        ``../x``) or a malformed file (naming the file and line).

    Notes
    -----
    The search order is ``path`` -> ``$FASTMF_DATA/<name>`` -> ``<cache>/<name>`` -> download; a
    folder counts only when it holds the ratings file. A download is written to a temporary folder
    inside the cache, verified, extracted (absolute, ``..`` and symlink members are refused) and
    renamed to ``<cache>/<name>`` only when complete, so a failed download leaves no partial folder.
    A metadata file missing from the folder gives a warning and ``None`` metadata.

    MovieLens (GroupLens Research, University of Minnesota) is for research use; cite
    F. M. Harper and J. A. Konstan, "The MovieLens Datasets: History and Context", ACM TiiS 5(4), 2015.
    """
    spec = _check_name(name)
    _progress_fn(progress)  # validate now, not only when a download starts
    if checksum is not None:
        _parse_checksum(checksum)
    if not isinstance(trust_server_checksum, bool):
        raise DataError(f"trust_server_checksum must be True or False, got {trust_server_checksum!r}")
    _check_max_bytes(max_extracted_bytes)
    explicit_file = None
    if ratings_file is not None:
        rf = os.fspath(ratings_file)
        if not _is_bare_name(rf):
            explicit_file = Path(rf).expanduser()
            if not explicit_file.is_file():
                raise FileNotFoundError(f"ratings_file={rf!r} does not exist")
        fname = Path(rf).name if explicit_file is None else None
    else:
        fname = spec["ratings"]
    if explicit_file is not None:
        folder = Path(path).expanduser() if path is not None else explicit_file.parent
        if not folder.is_dir():
            raise DatasetNotFoundError(f"path={os.fspath(path)!r} is not a folder")
        ratings_path = explicit_file
    else:
        folder = _resolve(name, spec, path, fname, download, cache_dir, checksum, url, progress,
                          trust_server_checksum=trust_server_checksum,
                          max_extracted_bytes=max_extracted_bytes,
                          validate=lambda root: _validate_folder(spec, root, [fname]))
        ratings_path = folder / fname
    item_info, user_info = _metadata(spec, folder)
    label = name if ratings_file is None else f"{name}:{ratings_path.name}"
    parsed = _parse_file(ratings_path, spec["sep"], FIELD_NAMES, spec["header"], spec["rating_scale"],
                         None, "utf-8")
    return _to_ratings(parsed, spec["rating_scale"], "last", dtype, item_info, user_info, label)


def load_movielens_split(path_or_folder: str | os.PathLike | None = None, split: str = "u1", *,
                         download: bool = True, cache_dir: str | os.PathLike | None = None,
                         dtype: Any = None) -> tuple[Ratings, Ratings]:
    """ml-100k's predefined splits: ``(train, test)`` from ``<split>.base`` and ``<split>.test``.

    Parameters
    ----------
    path_or_folder : str or os.PathLike, optional
        The ml-100k folder, or the path of a ``<split>.base`` file (its folder and split are used).
        None searches like :func:`load_movielens` (``$FASTMF_DATA``, cache, download).
    split : {"u1", "u2", "u3", "u4", "u5", "ua", "ub"}
        u1..u5 are the five 80%/20% folds (disjoint test sets covering all of u.data); ua/ub hold out
        exactly 10 ratings per user.
    download, cache_dir : see :func:`load_movielens`.
    dtype : {None, "float32", "float64"}

    Returns
    -------
    train, test : Ratings
        Sharing one user map and one item map, built over both files (so indices agree), the same
        rating scale (1, 5) and the same item/user metadata. A (user, item) pair present in both
        files raises ValueError (it would leak the test set into training).
    """
    spec = MOVIELENS["ml-100k"]
    if path_or_folder is not None and Path(path_or_folder).suffix == ".base" and Path(path_or_folder).is_file():
        p = Path(path_or_folder)
        folder, split = p.parent, p.stem
    else:
        folder = None if path_or_folder is None else Path(path_or_folder)
    if split not in _ML100K_SPLITS:
        raise DataError(f"split must be one of {_ML100K_SPLITS}, got {split!r}")
    base, test = f"{split}.base", f"{split}.test"
    folder = _resolve("ml-100k", spec, folder, base, download, cache_dir, None, None, None,
                      ratings_hint=False, validate=lambda root: _validate_folder(spec, root, [base, test]))
    if not (folder / test).is_file():
        raise DatasetNotFoundError(f"{folder}: no {test} (the test half of split {split!r})")
    item_info, user_info = _metadata(spec, folder)
    parts = [_parse_file(folder / f, spec["sep"], FIELD_NAMES, False, spec["rating_scale"], None, "utf-8")
             for f in (base, test)]
    n_train = parts[0].users.shape[0]
    both = Ratings.from_arrays(
        np.concatenate([_as_array(p.users) for p in parts]), np.concatenate([_as_array(p.items) for p in parts]),
        np.concatenate([p.ratings for p in parts]), np.concatenate([p.timestamps for p in parts]),
        rating_scale=spec["rating_scale"], duplicates="error",
        dtype=dtype if dtype is not None else np.float32, item_info=item_info, user_info=user_info,
        name=f"ml-100k:{split}")
    positions = np.arange(len(both))
    return (both.subset(positions[:n_train], name=f"ml-100k:{base}"),
            both.subset(positions[n_train:], name=f"ml-100k:{test}"))
