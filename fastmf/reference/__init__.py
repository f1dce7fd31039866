"""Pure NumPy/Python reference implementations: the oracle every C kernel is tested against.

Everything here is written for clarity, in the notation of the docstrings, not for speed: the SGD
epoch is a Python loop over ratings and the ALS sweeps solve one small system per row. The C kernels
(``csrc/``) and their wrappers compute the same quantities; tests run both on the same inputs.

Notation (explicit feedback). A rating ``r_ui`` of user ``u`` for item ``i`` is predicted by

.. math::

    \\hat r_{ui} = \\mu + b_u + b_i + p_u^\\top q_i
    \\qquad (\\text{unbiased model: } \\hat r_{ui} = p_u^\\top q_i)

with global mean :math:`\\mu`, user and item biases :math:`b_u, b_i` (arrays ``bu``, ``bi``) and factor
rows :math:`p_u = P[u]`, :math:`q_i = Q[i]`. Both SGD (Funk; Koren, Bell & Volinsky 2009, "Matrix
factorization techniques for recommender systems") and ALS (Zhou et al. 2008, "Large-scale parallel
collaborative filtering for the Netflix prize") minimise

.. math::

    \\sum_{(u,i)} (r_{ui} - \\hat r_{ui})^2
    + \\sum_u \\big(\\lambda_u \\lVert p_u\\rVert^2 + \\lambda^b_u b_u^2\\big)
    + \\sum_i \\big(\\lambda_i \\lVert q_i\\rVert^2 + \\lambda^b_i b_i^2\\big)

with :math:`\\lambda_u = \\mathrm{reg}` (or :math:`\\mathrm{reg}\\cdot n_u` when ``weighted``, the
"weighted-lambda" regularisation of Zhou et al.) and :math:`\\lambda^b` the same with ``reg_bias``.

Implicit feedback follows Hu, Koren & Volinsky 2008, "Collaborative filtering for implicit feedback
datasets": confidences :math:`c_{uj}` and preferences :math:`p_{uj} = [r_{uj} > 0]`.

Sparse matrices are passed as CSR triples ``(indptr, indices, data)``: row ``r`` holds the columns
``indices[indptr[r]:indptr[r+1]]`` with values ``data[indptr[r]:indptr[r+1]]``. Validation of the
inputs is the callers' job; this module only checks that shapes and dtypes agree.

One file per kernel: :mod:`~fastmf.reference.sgd`, :mod:`~fastmf.reference.als`,
:mod:`~fastmf.reference.ials`, :mod:`~fastmf.reference.bayes` (the Gibbs sampler of Bayesian MF), :mod:`~fastmf.reference.svdpp`,
:mod:`~fastmf.reference.timesvd`, :mod:`~fastmf.reference.sgd_side` (MF with jointly learned side-feature factors),
:mod:`~fastmf.reference.als_side` (the same model trained by ALS),
:mod:`~fastmf.reference.topk` (the factor scores of the top-k kernels),
:mod:`~fastmf.reference.rng` (the C random streams), :mod:`~fastmf.reference.layout` (CSR and block
layouts) and
:mod:`~fastmf.reference.linalg`. Every public name is also importable from ``fastmf.reference``.
"""

from fastmf.reference.als import als_half_sweep, als_sweep
from fastmf.reference.als_side import als_joint_objective, als_joint_sweep, als_side_features, als_side_offsets
from fastmf.reference.bayes import bag_sums, gibbs_bag_sweep, gibbs_half_sweep, row_normals
from fastmf.reference.ials import Scaling, confidence, ials_half_sweep, ials_objective, ialspp_half_sweep
from fastmf.reference.layout import block_layout, csr_compress, csr_transpose
from fastmf.reference.linalg import cholesky_solve
from fastmf.reference.rng import block_permutations, normals, permutation
from fastmf.reference.sgd import objective, predict, rmse, sgd_epoch
from fastmf.reference.sgd_side import sgd_side_epoch
from fastmf.reference.svdpp import svdpp_epoch, svdpp_epoch_delayed, svdpp_user_order, svdpp_user_sums
from fastmf.reference.timesvd import timesvd_epoch, timesvd_predict
from fastmf.reference.topk import factor_scores

__all__ = ["csr_compress", "csr_transpose", "block_layout", "permutation", "block_permutations", "normals", "predict", "rmse", "sgd_epoch", "als_half_sweep",
           "als_sweep", "objective", "cholesky_solve", "confidence", "ials_half_sweep", "ials_objective",
           "ialspp_half_sweep", "Scaling", "gibbs_half_sweep", "gibbs_bag_sweep", "bag_sums", "row_normals", "svdpp_epoch",
           "svdpp_epoch_delayed", "svdpp_user_order", "svdpp_user_sums", "timesvd_epoch", "timesvd_predict",
           "sgd_side_epoch", "factor_scores", "als_side_offsets", "als_side_features", "als_joint_sweep",
           "als_joint_objective"]
