"""The ``fastmf`` command line (also ``python -m fastmf``).

Commands: ``demo`` (train and evaluate on the best data found, show one user's top-10) and ``info``
(describe a data set). User mistakes print one line on stderr and exit with status 2; ``--verbose``
shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
import time

EXIT_USAGE = 2

DEMO_EPILOG = """examples:
  fastmf demo                      MovieLens 100K if found (FASTMF_DATA, cache, download), else synthetic
  fastmf demo --offline            never download
  fastmf demo --dataset ml-latest-small
"""

INFO_EPILOG = """examples:
  fastmf info ml-100k
  fastmf info ml-1m --ratings-file ratings.PARTIAL_users_1-2999.dat
  fastmf info ratings.csv --sep , --header
"""


class UserError(Exception):
    """A mistake the user can fix; reported as one line, no traceback."""


def _log(msg):
    print(msg, file=sys.stderr)


def find_dataset(name="ml-100k", offline=False, path=None, ratings_file=None):
    """Load MovieLens ``name`` from a local folder or the cache (downloading unless ``offline``), or
    return ``(None, reason)`` when it cannot be had."""
    import fastmf

    try:
        return fastmf.load_movielens(name, path=path, download=not offline, ratings_file=ratings_file), None
    except (OSError, ValueError) as exc:
        text = str(exc)
        if "download failed" in text:
            return None, "not in FASTMF_DATA or the cache, and the download failed (offline?)"
        if "download=False" in text:
            return None, "not in FASTMF_DATA or the cache (--offline: no download)"
        return None, text.splitlines()[0]


def _guess_columns(path, sep, header):
    """user,item[,rating[,timestamp]] from the field count of the first data line."""
    with open(path, "rb") as fh:
        lines = [line for line in (fh.readline() for _ in range(2)) if line.strip()]
    if not lines:
        return ("user", "item", "rating", "timestamp")
    line = lines[1] if header and len(lines) > 1 else lines[0]
    n = len(line.decode("utf-8", "replace").rstrip("\r\n").split(sep))
    names = ("user", "item", "rating", "timestamp")
    return names[:n] if 2 <= n <= 4 else names


def load_data(spec, ratings_file=None, sep=None, header=False, offline=False, columns=None):
    """A data set from a MovieLens name, a MovieLens folder or a delimited ratings file."""
    import os

    import fastmf
    from fastmf.io import MOVIELENS

    if spec in MOVIELENS:
        return fastmf.load_movielens(spec, download=not offline, ratings_file=ratings_file)
    if os.path.isdir(spec):
        name = os.path.basename(os.path.normpath(spec))
        if name not in MOVIELENS:
            raise UserError(f"{spec}: a folder must be one of the MovieLens sets {sorted(MOVIELENS)}")
        return fastmf.load_movielens(name, path=spec, download=False, ratings_file=ratings_file)
    if os.path.isfile(spec):
        if sep is None:
            sep = "," if spec.endswith(".csv") else ("::" if spec.endswith(".dat") else "\t")
        if columns is None:
            columns = _guess_columns(spec, sep, header)
        return fastmf.read_ratings(spec, sep=sep, header=header, columns=columns)
    raise UserError(f"{spec}: no such file, folder or MovieLens name (known: {', '.join(sorted(MOVIELENS))})")


def cmd_demo(args):
    import numpy as np

    import fastmf

    t0 = time.perf_counter()
    ds, why = find_dataset(args.dataset, offline=args.offline)
    if ds is None:
        _log(f"fastmf demo: {args.dataset} {why}; using a synthetic MovieLens-shaped set instead")
        ds = fastmf.make_ratings(943, 1682, 100_000, seed=0, name="synthetic ml-100k shape")
    print(f"data: {ds!r} loaded in {time.perf_counter() - t0:.2f} s")
    train, test = fastmf.split.random_split(ds, test_size=0.2, random_state=0)
    model = best_model()
    t0 = time.perf_counter()
    model.fit(train)
    print(f"model: {model!r} trained in {time.perf_counter() - t0:.2f} s on {len(train):,} ratings")
    scores = fastmf.evaluate(model, test, k=10)
    print("test: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if k != "n_users"))
    user = train.user_map.ids[int(np.argmax(train.user_counts()))] if args.user is None else args.user
    ids, s = model.recommend(user, n=10)
    print(f"top-10 for user {user} (items they rated excluded):")
    for rank, (item, score) in enumerate(zip(ids, s), 1):
        title = _title(ds, item)
        print(f"  {rank:2d}. {score:6.3f}  {title}")
    return 0


def best_model():
    """The most accurate model fastmf has so far."""
    import fastmf

    return fastmf.MatrixFactorization(random_state=0)


def _title(ds, item):
    if ds.item_info is not None and "title" in ds.item_info:
        t = ds.item_info.get(item, "title")
        if t is not None:
            g = ds.item_info.get(item, "genres") if "genres" in ds.item_info else None
            return f"{t}  [{g}]" if g else f"{t}"
    return f"item {item}"


def cmd_info(args):
    columns = tuple(c.strip() or None for c in args.columns.split(",")) if args.columns else None
    ds = load_data(args.data, ratings_file=args.ratings_file, sep=args.sep, header=args.header,
                   offline=args.offline, columns=columns)
    print(repr(ds))
    print(ds.describe())
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="fastmf", description="Fast matrix-factorization recommenders.")
    p.add_argument("--verbose", action="store_true", help="show tracebacks and details")
    # --verbose is accepted after the command too (SUPPRESS keeps a top-level --verbose)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and details")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("demo", parents=[common], help="train and evaluate on the best data found, show a top-10",
                       epilog=DEMO_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--dataset", default="ml-100k", help="MovieLens set to look for (default ml-100k)")
    d.add_argument("--offline", action="store_true", help="never download")
    d.add_argument("--user", type=int, default=None, help="user to recommend for (default: the most active)")
    d.set_defaults(func=cmd_demo)

    i = sub.add_parser("info", parents=[common], help="describe a data set", epilog=INFO_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    i.add_argument("data", help="a MovieLens name (ml-100k, ...), a MovieLens folder or a ratings file")
    i.add_argument("--ratings-file", default=None, help="ratings file name inside a MovieLens folder")
    i.add_argument("--sep", default=None, help="field separator of a ratings file (default by extension)")
    i.add_argument("--header", action="store_true", help="the ratings file has a header line")
    i.add_argument("--columns", default=None,
                   help="field names in order, e.g. user,item,rating,timestamp (default: by field count; "
                        "an empty name skips a field)")
    i.add_argument("--offline", action="store_true", help="never download")
    i.set_defaults(func=cmd_info)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except (UserError, ValueError, KeyError, OSError) as exc:
        if args.verbose:
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"fastmf {args.command}: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
