"""Shared fixtures. Real-data tests read MovieLens from $FASTMF_DATA and skip with a reason otherwise."""

import os
from pathlib import Path

import numpy as np
import pytest

# expected files per dataset (GroupLens layout)
DATASET_FILES = {
    "ml-100k": ("u.data", "u.item", "u1.base", "u1.test"),
    "ml-1m": ("movies.dat", "users.dat", "ratings.PARTIAL_users_1-2999.dat"),
    "ml-latest-small": ("ratings.csv", "movies.csv"),
}
ML1M_PARTIAL = "ratings.PARTIAL_users_1-2999.dat"


def data_root():
    """The folder named by $FASTMF_DATA, or None."""
    root = os.environ.get("FASTMF_DATA")
    return Path(root) if root else None


def need_data(name):
    """Path of MovieLens dataset ``name`` under $FASTMF_DATA, or skip the test with the reason."""
    root = data_root()
    if root is None:
        pytest.skip("FASTMF_DATA is not set (real MovieLens data not available)")
    folder = root / name
    missing = [f for f in DATASET_FILES.get(name, ()) if not (folder / f).exists()]
    if not folder.is_dir() or missing:
        pytest.skip(f"{name} not found under FASTMF_DATA={root} (missing {missing or [name]})")
    return folder


@pytest.fixture
def ml100k_dir():
    return need_data("ml-100k")


@pytest.fixture
def ml1m_dir():
    return need_data("ml-1m")


@pytest.fixture
def mlsmall_dir():
    return need_data("ml-latest-small")


@pytest.fixture(scope="session")
def ml100k():
    """The full ml-100k Ratings (u.data with titles), loaded once per session."""
    folder = need_data("ml-100k")
    import fastmf

    return fastmf.load_movielens("ml-100k", path=folder, download=False)


@pytest.fixture(scope="session")
def ml100k_u1():
    """(train, test) Ratings of ml-100k's u1.base / u1.test sharing one id map."""
    folder = need_data("ml-100k")
    from fastmf.io import load_movielens_split

    return load_movielens_split(folder, "u1")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


#: the tests CI also runs against kernels built with -fsanitize=address,undefined (marker
#: `sanitize`, see .ci/run): every kernel test, the parser tests (tests/data/test_io.py and any
#: parser fuzz file), the hostile model files and the interrupt tests
SANITIZE_PATHS = ("tests/kernels/", "tests/data/test_io.py", "tests/data/test_pars", "tests/data/test_fuzz",
                  "tests/models/test_hostile_files.py", "tests/models/test_interrupt.py",
                  "tests/models/test_request_bounds.py")


def pytest_collection_modifyitems(config, items):
    root = Path(__file__).resolve().parent.parent
    for item in items:
        try:
            rel = Path(item.fspath).resolve().relative_to(root).as_posix()
        except ValueError:
            continue
        if rel.startswith(SANITIZE_PATHS):
            item.add_marker(pytest.mark.sanitize)
