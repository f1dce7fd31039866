"""Dense linear algebra of the ALS twins: a Cholesky solve written out step by step."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def cholesky_solve(A: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
    """Solve the symmetric positive definite system ``A x = b`` by Cholesky, in float64.

    .. math::  A = L L^\\top,\\qquad L y = b \\ (\\text{forward}),\\qquad L^\\top x = y \\ (\\text{backward})

    Raises
    ------
    numpy.linalg.LinAlgError
        When ``A`` is not (numerically) positive definite.
    """
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    L = np.linalg.cholesky(A)
    n = b.shape[0]
    y = np.empty(n)
    for i in range(n):                      # forward substitution: L y = b
        y[i] = (b[i] - L[i, :i] @ y[:i]) / L[i, i]
    x = np.empty(n)
    for i in range(n - 1, -1, -1):          # back substitution: L^T x = y
        x[i] = (y[i] - L[i + 1:, i] @ x[i + 1:]) / L[i, i]
    return x


# ------------------------------------------------------------------------------------- prediction
