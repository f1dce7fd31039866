"""Training past one machine (optional extras): :func:`fit` trains a fastmf model on a Dask cluster.

``pip install fastmf[dask]`` brings Dask and distributed; nothing here imports them until
:func:`fit` runs. The result is an ordinary fastmf model (``save``, ``fastmf.load``,
``recommend`` as usual), equal to the one a single process trains on the same data: bit for bit
for SGD (the blocked schedule, for the same seed and ``n_blocks``), within rounding for ALS and
implicit ALS.
"""

from __future__ import annotations

from typing import Any

__all__ = ["fit"]


def fit(model: Any, ratings: Any, client: Any = None, **options: Any) -> Any:
    """Train ``model`` (a :class:`fastmf.MatrixFactorization` or :class:`fastmf.ImplicitALS`) on
    ``ratings`` with a Dask cluster;
    returns the model. See :func:`fastmf.distributed.dask.fit` for the arguments."""
    from fastmf.distributed.dask import fit as dask_fit

    return dask_fit(model, ratings, client=client, **options)
