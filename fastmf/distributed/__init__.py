"""Training past one machine (optional extras): :func:`fit` trains a fastmf model on a Dask cluster
(or on Spark: :mod:`fastmf.spark`).

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
    ``ratings`` with a Dask cluster, or with Spark when ``ratings`` is a Spark DataFrame (then
    ``client`` is the SparkSession, optional); returns the model. See
    :func:`fastmf.distributed.dask.fit` and :func:`fastmf.distributed.spark.fit` for the arguments."""
    if type(ratings).__module__.startswith("pyspark."):  # a Spark DataFrame: the Spark back end
        if client is not None:
            options["spark"] = client
        from fastmf.distributed.spark import fit as spark_fit

        return spark_fit(model, ratings, **options)
    from fastmf.distributed.dask import fit as dask_fit

    return dask_fit(model, ratings, client=client, **options)
