"""fastmf on Spark: :func:`fit` (explicit ALS with biases, implicit ALS) and :func:`recommend_all`
(top-n per partition). ``pip install 'fastmf[spark]'``; PySpark is imported only when they run.
The code lives in :mod:`fastmf.distributed.spark`."""

from fastmf.distributed.spark import fit, recommend_all

__all__ = ["fit", "recommend_all"]
