"""Mutation fuzzer for :func:`fastmf.read_ratings`, checked against :mod:`fastmf.reference.parse`.

``make_case(i)`` builds input number ``i`` (deterministic: a MovieLens-style file made up from a seeded
RNG, then a few random mutations: byte flips, inserted NULs / CRs / quotes / separators / spaces,
long mantissas, very long ids, duplicated or dropped lines, a BOM...). ``check_case(case, path)``
reads it with fastmf and with the reference and returns ``(verdict, detail)``:

* ``"same"``: both read the same ratings, or both reject the file and fastmf's ParseError names the
  reference's line (and field);
* ``"clean_error"``: the reference does not model the input (unusual quoting) and fastmf raised a
  ValueError, or the reference rejects it for a reason without a line and fastmf raised a ValueError;
* ``"diff"``: anything else: a different result, a missing error, an error on a well-formed file, a
  wrong line, or an exception that is not a ValueError (``detail`` says which).

``run(n, start, timeout, workers)`` checks inputs ``start .. start+n-1`` in worker processes with a
per-input timeout (a worker that does not answer in time is killed and the input counted as a hang)
and returns the counts plus the failing case numbers. ``python tests/data/parse_fuzzer.py N`` runs it.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
import warnings

SEPS = ("\t", "::", ",", ";", "|")
COLUMN_SETS = (("user", "item", "rating", "timestamp"), ("user", "item", "rating"), ("user", "item"),
               ("user", "item", None, "rating"), ("item", "user", "rating", "timestamp"))
TOKENS = (b"\x00", b"\x00\x00", b"\r", b"\r\n", b"\n", b'"', b'""', b" ", b"  ", b"-", b"+", b".", b"e",
          b"E", b"e-", b"e+400", b"nan", b"inf", b"-inf", b"Infinity", b"0", b"00", b"9" * 20,
          b"9223372036854775807", b"9223372036854775808", b"-9223372036854775809", b"#", b"%", b"\xff",
          b"\xc3\xa9", b"\xef\xbb\xbf", b"\x1f", b"\x1e", b"::", b":", b"\t", b",", b";", b"|", b"1e5",
          b".5", b"5.", b"\\", b"'", b"u", b"1_0", b"\x0b", b"\x0c")


def _seed_file(rng: random.Random):
    """A small well-formed MovieLens-style file and the arguments to read it with."""
    sep = rng.choice(SEPS)
    columns = rng.choice(COLUMN_SETS)
    n = rng.choice((1, 2, 3, 5, 8, 20))
    string_ids = rng.random() < 0.25
    lines = []
    if rng.random() < 0.3:
        lines.append(sep.join({"user": "userId", "item": "movieId", "rating": "rating",
                               "timestamp": "timestamp", None: "x"}[c] for c in columns))
    for _ in range(n):
        fields = []
        for c in columns:
            if c in ("user", "item"):
                v = rng.randint(1, 12)
                fields.append(f"{'u' if c == 'user' else 'm'}{v}" if string_ids else str(v))
            elif c == "rating":
                fields.append(rng.choice(("1", "2", "3", "4", "5", "0.5", "3.5", "4.0", "2.25")))
            elif c == "timestamp":
                fields.append(str(rng.randint(874724710, 1537799250)))
            else:
                fields.append(rng.choice(("F", "x", "")))
        lines.append(sep.join(fields))
    eol = "\r\n" if rng.random() < 0.3 else "\n"
    text = eol.join(lines) + (eol if rng.random() < 0.8 else "")
    header = rng.choice((True, False, "infer", "infer"))
    comment = rng.choice((None, None, "#", "%"))
    scale = rng.choice((None, None, (0.5, 5.0)))
    encoding = "latin-1" if rng.random() < 0.1 else "utf-8"
    kw = dict(sep=sep, columns=columns, header=header, comment=comment, rating_scale=scale,
              encoding=encoding)
    if rng.random() < 0.1:
        kw["sep"] = None                                     # let read_ratings guess them
        if rng.random() < 0.5:
            kw["columns"] = None
    return bytearray(text.encode()), kw


def _mutate(rng: random.Random, data: bytearray, sep: str):
    kind = rng.randrange(13)
    if kind == 12 and rng.random() < 0.5:                                           # amplify: repeat a chunk many times
        a = rng.randint(0, len(data))
        chunk = bytes(data[a:a + rng.randint(1, 40)]) or b","
        data[a:a] = chunk * rng.choice((50, 50, 1000, 1000, 20000))
        return data
    pos = rng.randint(0, len(data))
    if kind == 0 and data:                                   # flip a byte
        data[min(pos, len(data) - 1)] = rng.randrange(256)
    elif kind == 1:                                          # insert a token
        data[pos:pos] = rng.choice(TOKENS)
    elif kind == 2 and data:                                 # delete a few bytes
        del data[pos:pos + rng.randint(1, 4)]
    elif kind == 3:                                          # insert the separator
        data[pos:pos] = sep.encode()
    elif kind == 4:                                          # trailing NULs on a field
        end = data.find(sep.encode(), pos)
        end = data.find(b"\n", pos) if end < 0 else end
        end = len(data) if end < 0 else end
        data[end:end] = b"\x00" * rng.randint(1, 3)
    elif kind == 5:                                          # a long mantissa / many digits
        digits = rng.choice((30, 80, 200, 600, 1200))
        body = rng.choice(("4.0", "3.", "0.000", "1")) + "".join(rng.choice("0123456789") for _ in range(digits))
        if rng.random() < 0.3:
            body += rng.choice(("e-3", "e+2", "e0", "E-300"))
        data[pos:pos] = body.encode()
    elif kind == 6:                                          # a long id
        data[pos:pos] = rng.choice(b"abcxyz019") .to_bytes(1, "little") * rng.choice((100, 256, 257, 300, 5000))
    elif kind == 7:                                          # duplicate a line
        lines = bytes(data).split(b"\n")
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        data[:] = b"\n".join(lines)
    elif kind == 8:                                          # drop or swap lines
        lines = bytes(data).split(b"\n")
        if len(lines) > 1:
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            if rng.random() < 0.5:
                del lines[i]
            else:
                lines[i], lines[j] = lines[j], lines[i]
        data[:] = b"\n".join(lines)
    elif kind == 9:                                          # quote a field
        start = data.rfind(sep.encode(), 0, pos)
        start = 0 if start < 0 else start + len(sep)
        end = data.find(sep.encode(), pos)
        nl = data.find(b"\n", pos)
        end = min(e for e in (end, nl, len(data)) if e >= 0)
        field = bytes(data[start:end]).rstrip(b"\r")
        data[start:start + len(field)] = b'"' + field.replace(b'"', b'""') + b'"'
    elif kind == 10:                                         # spaces around a field, or a blank line
        data[pos:pos] = rng.choice((b" ", b"   ", b"\n", b"\r\n", b"\n\n", b" \n"))
    else:                                                    # truncate
        del data[pos:]
    return data


def make_case(i: int):
    """Input number ``i``: ``(bytes, read_ratings keyword arguments)``."""
    rng = random.Random(i * 0x9E3779B1 + 12345)
    data, kw = _seed_file(rng)
    for _ in range(rng.choice((0, 1, 1, 2, 3, 5))):
        data = _mutate(rng, data, kw["sep"] or ",")
    return bytes(data), kw


def _same_values(a, b):
    return len(a) == len(b) and all(type(x) is type(y) and x == y for x, y in zip(a, b))


def check_case(case, path):
    """``(verdict, detail)`` for one input: see the module docstring."""
    import numpy as np

    from fastmf import read_ratings
    from fastmf.errors import ParseError
    from fastmf.reference.parse import RefParseError, Unspecified, read_ratings_reference

    from fastmf.data import readers

    data, kw = case
    with open(path, "wb") as fh:
        fh.write(data)
    ref_kw = dict(kw)
    if kw["sep"] is None or kw["columns"] is None:
        # the guesses are heuristics, documented as guess_sep / guess_columns on the first data line
        body = data[3:] if data.startswith(b"\xef\xbb\xbf") and kw["encoding"] == "utf-8" else data
        comment_b = kw["comment"].encode() if kw["comment"] else None
        first = (readers._first_lines(body, comment_b, 1) or [b""])[0]
        if kw["sep"] is None:
            ref_kw["sep"] = readers.guess_sep(path, first)
        if kw["columns"] is None:
            ref_kw["columns"] = readers.guess_columns(path, ref_kw["sep"], first)
    try:
        expected = read_ratings_reference(data, **ref_kw)
        ref_err = None
    except RefParseError as exc:
        expected, ref_err = None, exc
    except Unspecified:
        expected, ref_err = None, "unspecified"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = read_ratings(path, duplicates="last", dtype="float64", **kw)
        got, got_err = ds.to_arrays(), None
    except ValueError as exc:
        got, got_err = None, exc
    except Exception as exc:  # anything else is a failure: report it
        return "diff", f"{type(exc).__name__}: {exc}"
    if ref_err == "unspecified":
        return ("clean_error", "") if got_err is not None else ("same", "unmodelled input, read")
    if ref_err is not None:
        if got_err is None:
            return "diff", f"reference rejects it ({ref_err}), fastmf read {len(got[0])} ratings"
        if ref_err.line is None:
            return "clean_error", ""
        if not isinstance(got_err, ParseError):
            return "diff", f"reference: {ref_err}; fastmf: {type(got_err).__name__}: {got_err}"
        if got_err.line != ref_err.line or got_err.field != ref_err.field or got_err.reason != ref_err.reason:
            return "diff", f"reference: {ref_err}; fastmf: line {got_err.line}, field {got_err.field}: " \
                           f"{got_err.reason}: {got_err}"
        if f"line {ref_err.line}" not in str(got_err):
            return "diff", f"message does not name line {ref_err.line}: {got_err}"
        return "same", "rejected"
    if got_err is not None:
        return "diff", f"fastmf rejects a well-formed file: {type(got_err).__name__}: {got_err}"
    users, items, ratings, ts = got
    e_users, e_items, e_ratings, e_ts = expected
    if not (_same_values(users.tolist(), e_users) and _same_values(items.tolist(), e_items)):
        return "diff", f"ids differ: {users.tolist()[:8]} {items.tolist()[:8]} vs {e_users[:8]} {e_items[:8]}"
    if not _same_values([float(r) for r in ratings], [float(r) for r in e_ratings]):
        return "diff", f"ratings differ: {ratings.tolist()[:8]} vs {e_ratings[:8]}"
    if (ts is None) != (e_ts is None) or (ts is not None and not np.array_equal(ts, np.asarray(e_ts, np.int64))):
        return "diff", f"timestamps differ: {None if ts is None else ts.tolist()[:8]} vs {e_ts}"
    return "same", ""


def scratch_dir():
    """A folder for the input file: /dev/shm when it is writable (a RAM disk: opening and rewriting a
    file there is 5x faster than on a disk), else the default temporary folder."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else tempfile.gettempdir()


def _worker(conn, start, stop):
    fd, path = tempfile.mkstemp(suffix=".dat", prefix="fastmf-fuzz-", dir=scratch_dir())
    os.close(fd)
    try:
        for i in range(start, stop):
            conn.send(("start", i))
            try:
                verdict, detail = check_case(make_case(i), path)
            except Exception as exc:  # a fault of the harness or the reference: report it as a failure
                verdict, detail = "diff", f"harness: {type(exc).__name__}: {exc}"
            conn.send((verdict, i, detail))
    finally:
        os.unlink(path)
        conn.send(("done", stop))


def run(n, start=0, timeout=10.0, workers=2):
    """Check inputs ``start .. start + n - 1`` in ``workers`` processes, ``timeout`` seconds each.

    Returns a dict: counts of ``same``, ``clean_error``, ``diff``, ``crash`` (a worker that died),
    ``hang`` (an input over the timeout), ``rejected`` (inputs fastmf refused with a clean error, among
    ``same`` and ``clean_error``), and ``failures``, a list of ``(kind, case number, detail)``.
    """
    import multiprocessing as mp

    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    counts = {"same": 0, "clean_error": 0, "diff": 0, "crash": 0, "hang": 0, "rejected": 0}
    failures = []
    bounds = [start + n * w // workers for w in range(workers + 1)]
    pending = [(bounds[w], bounds[w + 1]) for w in range(workers) if bounds[w] < bounds[w + 1]]
    active = []

    def launch(lo, hi):
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_worker, args=(child, lo, hi), daemon=True)
        p.start()
        child.close()
        active.append({"proc": p, "conn": parent, "hi": hi, "cur": None, "since": time.monotonic()})

    for lo, hi in pending:
        launch(lo, hi)
    while active:
        for w in list(active):
            conn = w["conn"]
            while conn.poll(0):
                try:
                    msg = conn.recv()
                except EOFError:
                    break
                if msg[0] == "start":
                    w["cur"], w["since"] = msg[1], time.monotonic()
                elif msg[0] == "done":
                    w["cur"] = "done"
                else:
                    verdict, i, detail = msg
                    counts[verdict] += 1
                    counts["rejected"] += verdict == "clean_error" or detail == "rejected"
                    if verdict == "diff":
                        failures.append(("diff", i, detail))
                    w["cur"] = None
            p = w["proc"]
            if w["cur"] == "done":
                p.join()
                active.remove(w)
                continue
            late = w["cur"] is not None and time.monotonic() - w["since"] > timeout
            if late or not p.is_alive():
                if p.is_alive():
                    p.kill()
                p.join()
                conn.close()
                active.remove(w)
                if w["cur"] is not None:
                    kind = "hang" if late else "crash"
                    counts[kind] += 1
                    failures.append((kind, w["cur"], f"exit code {p.exitcode}"))
                    if w["cur"] + 1 < w["hi"]:
                        launch(w["cur"] + 1, w["hi"])
        time.sleep(0.002)
    counts["failures"] = failures
    return counts


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    t0 = time.monotonic()
    res = run(n, start=int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    fails = res.pop("failures")
    print(res, f"{time.monotonic() - t0:.1f} s")
    for f in fails[:40]:
        print(f)
