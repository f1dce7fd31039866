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
from fastmf.data.readers import BASE_URL, FIELD_NAMES, MISSING_YEAR, _parse_file, _to_ratings
from fastmf.errors import DatasetNotFoundError

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


def _spec(ratings, sep, header, scale, md5, layout, meta):
    return {"ratings": ratings, "sep": sep, "header": header, "rating_scale": scale, "md5": md5,
            "layout": layout, "metadata": meta}


_CSV = ("movies.csv",)
#: The MovieLens sets :func:`load_movielens` knows: ratings file, format, rating scale, pinned MD5.
MOVIELENS = {
    "ml-100k": _spec("u.data", "\t", False, (1.0, 5.0), "0e33842e24a9c977be4e0107933c0723", "100k",
                     ("u.item", "u.user")),
    "ml-1m": _spec("ratings.dat", "::", False, (1.0, 5.0), "c4d9eecfca2ab87c1945afe126590906", "1m",
                   ("movies.dat", "users.dat")),
    "ml-latest-small": _spec("ratings.csv", ",", True, (0.5, 5.0), None, "csv", _CSV),
    "ml-latest": _spec("ratings.csv", ",", True, (0.5, 5.0), None, "csv", _CSV),
    "ml-20m": _spec("ratings.csv", ",", True, (0.5, 5.0), "cd245b17a1ae2cc31bb14903e1204af3", "csv", _CSV),
    "ml-25m": _spec("ratings.csv", ",", True, (0.5, 5.0), "6b51fb2759a8657d3bfcbfc42b592ada", "csv", _CSV),
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
        raise ValueError(f"unknown MovieLens set {name!r}; known: {', '.join(MOVIELENS)}")
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


def _resolve(name, spec, path, fname, download, cache_dir, checksum, url, progress, ratings_hint=True):
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
        return _download(name, spec, fname, cache_root, url, checksum, progress)
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
    raise ValueError(f"progress must be None, a bool or a callable(done_bytes, total_bytes), got {progress!r}")


def _parse_checksum(checksum):
    """(algorithm, lowercase hex) from an MD5 (32 hex) or SHA-256 (64 hex) string, optionally
    prefixed 'md5:' / 'sha256:'."""
    if not isinstance(checksum, str):
        raise ValueError(f"checksum must be a hex MD5 or SHA-256 string, got {checksum!r}")
    text = checksum.strip().lower()
    algo = None
    if ":" in text:
        algo, text = text.split(":", 1)
    if not re.fullmatch(r"[0-9a-f]{32}|[0-9a-f]{64}", text):
        raise ValueError(f"checksum must be 32 (MD5) or 64 (SHA-256) hex digits, got {checksum!r}")
    guessed = "md5" if len(text) == 32 else "sha256"
    if algo not in (None, guessed):
        raise ValueError(f"checksum {checksum!r}: {algo} needs {32 if algo == 'md5' else 64} hex digits")
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
        raise ValueError(f"{url}.md5 holds no MD5 ({text[:80]!r}); pass checksum= to verify the archive")
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
            raise ValueError(f"download of {url} was cut short after {done:,} bytes ({exc!r})") from exc
    if total is not None and done != total:
        raise ValueError(f"download of {url} is truncated: {done:,} of {total:,} bytes")
    logger.info("fastmf: downloaded %s (%d bytes)", url, done)
    return h.hexdigest()


def _safe_extract(archive, dest):
    """Extract ``archive`` into ``dest`` after rejecting any absolute, '..', drive-letter or symlink
    member (the whole archive is refused, nothing is extracted then)."""
    import zipfile
    import zlib

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(dest)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                n = info.filename
                parts = PurePosixPath(n.replace("\\", "/")).parts
                if (n.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", n) or ".." in parts
                        or "\x00" in n):
                    raise ValueError(f"{archive.name}: unsafe member {n!r} (absolute path or '..'); "
                                     "the archive is rejected")
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise ValueError(f"{archive.name}: member {n!r} is a symbolic link; the archive is rejected")
                target = os.path.realpath(os.path.join(root, *parts)) if parts else root
                if os.path.commonpath([root, target]) != root:
                    raise ValueError(f"{archive.name}: member {n!r} would be written outside the "
                                     "target folder; the archive is rejected")
            for info in members:
                zf.extract(info, root)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, NotImplementedError) as exc:
        raise ValueError(f"{archive.name} is not a valid zip archive ({exc}); it may be truncated or "
                         "corrupted") from exc


def _download(name, spec, fname, cache_root, url, checksum, progress):
    url = url or f"{BASE_URL}/{name}.zip"
    if checksum is not None:
        algo, expected = _parse_checksum(checksum)
    elif spec["md5"] is not None:
        algo, expected = "md5", spec["md5"]
    else:
        algo, expected = _published_md5(url)
    cache_root.mkdir(parents=True, exist_ok=True)
    target = cache_root / name
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=cache_root))
    try:
        archive = tmp / f"{name}.zip"
        logger.info("fastmf: downloading %s to %s", url, cache_root)
        digest = _fetch(url, archive, algo, progress)
        if digest != expected:
            raise ValueError(f"checksum mismatch for {url}: expected {algo} {expected}, got {digest}; "
                             "the download is corrupt or the archive changed (pass checksum= to accept "
                             f"another release). Nothing was written to {cache_root}.")
        extracted = tmp / "extract"
        _safe_extract(archive, extracted)
        entries = [p for p in extracted.iterdir() if p.name != "__MACOSX"]
        if (extracted / fname).is_file():
            root = extracted
        elif len(entries) == 1 and entries[0].is_dir():
            root = entries[0]
        elif (extracted / name).is_dir():
            root = extracted / name
        else:
            root = extracted
        if not (root / fname).is_file():
            raise ValueError(f"{url}: the archive has no {fname}; nothing was written to {cache_root}")
        try:
            os.rename(root, target)  # atomic on one file system; fails if target is a non-empty folder
        except OSError:
            if not (target / fname).is_file():
                raise ValueError(f"cannot install {name} into {target}: the folder exists without "
                                 f"{fname}; remove it and retry") from None
            # another process installed it meanwhile: use theirs
        logger.info("fastmf: %s cached in %s", name, target)
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
            raise ValueError(f"{path}, line {lineno}: expected {n_fields} fields separated by {sep!r}, "
                             f"found {len(fields)}: {line[:120]!r}")
        rows.append((lineno, fields))
    return rows


def _int_field(path, lineno, text, what):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{path}, line {lineno}: {what} {text!r} is not an integer") from None


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
            raise ValueError(f"{path}, line {lineno}: genre flags must be 0 or 1, got {'|'.join(flags)!r}")
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
            raise ValueError(f"{path}, line {ln}: occupation code {code} outside 0..{len(ML1M_OCCUPATIONS) - 1}")
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
            raise ValueError(f"{path}, line 1: expected the header movieId,title,genres, got {head!r}")
        ids, titles, genres, years = [], [], [], []
        for row in reader:
            if not row:
                continue
            if len(row) != 3:
                raise ValueError(f"{path}, line {reader.line_num}: expected 3 fields, found {len(row)}: {row!r}")
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


def load_movielens(name: str, path: str | os.PathLike | None = None, download: bool = True,
                   ratings_file: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                   checksum: str | None = None, url: str | None = None, progress: Any = None, *,
                   dtype: Any = None) -> Ratings:
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
        Expected MD5 (32 hex digits) or SHA-256 (64) of the archive; by default the pinned MD5 of the
        stable sets, and for ``ml-latest*`` the ``<url>.md5`` GroupLens publishes beside the archive.
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
        folder = _resolve(name, spec, path, fname, download, cache_dir, checksum, url, progress)
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
        raise ValueError(f"split must be one of {_ML100K_SPLITS}, got {split!r}")
    base, test = f"{split}.base", f"{split}.test"
    folder = _resolve("ml-100k", spec, folder, base, download, cache_dir, None, None, None,
                      ratings_hint=False)
    if not (folder / test).is_file():
        raise DatasetNotFoundError(f"{folder}: no {test} (the test half of split {split!r})")
    item_info, user_info = _metadata(spec, folder)
    parts = [_parse_file(folder / f, spec["sep"], FIELD_NAMES, False, spec["rating_scale"], None, "utf-8")
             for f in (base, test)]
    n_train = parts[0].users.shape[0]
    both = Ratings.from_arrays(
        np.concatenate([p.users for p in parts]), np.concatenate([p.items for p in parts]),
        np.concatenate([p.ratings for p in parts]), np.concatenate([p.timestamps for p in parts]),
        rating_scale=spec["rating_scale"], duplicates="error",
        dtype=dtype if dtype is not None else np.float32, item_info=item_info, user_info=user_info,
        name=f"ml-100k:{split}")
    positions = np.arange(len(both))
    return (both.subset(positions[:n_train], name=f"ml-100k:{base}"),
            both.subset(positions[n_train:], name=f"ml-100k:{test}"))
