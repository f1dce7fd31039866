"""Baseline recommenders: :class:`GlobalMean`, :class:`Biases` and :class:`Popularity`.

Every model should be compared with these; a latent-factor model that does not beat ``Biases`` on RMSE
or ``Popularity`` on ranking metrics has learned nothing.
"""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np

from fastmf._validation import MAX_EPOCHS, Interval, Options
from fastmf.models.base import Recommender
from fastmf.data.ratings import Ratings

__all__ = ["GlobalMean", "Biases", "Popularity"]


class GlobalMean(Recommender):
    """Predicts the mean training rating for every pair: :math:`\\hat r_{ui} = \\mu`.

    Its ranking is uninformative (every item scores the same, ties go to the lower item index);
    use :class:`Popularity` as the ranking baseline.
    """

    _new_user_needs_ratings = False

    def __init__(self) -> None:
        pass

    def fit(self, train: Ratings) -> GlobalMean:
        """Record the global mean of ``train``; returns self."""
        self._start_fit(train)
        return self

    def _predict_pairs(self, u, i):
        return np.full(u.shape, self.global_mean_, dtype=np.float64)

    def _score_users(self, u):
        return np.full((u.size, self.n_items_), self.global_mean_, dtype=np.float64)


class Biases(Recommender):
    """User and item biases around the global mean (the "baseline predictor" of Koren 2010).

    .. math::

        \\hat r_{ui} = \\mu + b_u + b_i, \\qquad
        \\min_{b} \\sum_{(u,i) \\in R} (r_{ui} - \\mu - b_u - b_i)^2
             + \\lambda_u \\sum_u b_u^2 + \\lambda_i \\sum_i b_i^2

    fitted by alternating exact minimisation over one side with the other fixed (each step has the
    closed form below, so the objective never increases):

    .. math::

        b_i \\leftarrow \\frac{\\sum_{u \\in R(i)} (r_{ui} - \\mu - b_u)}{\\lambda_i + |R(i)|}, \\qquad
        b_u \\leftarrow \\frac{\\sum_{i \\in R(u)} (r_{ui} - \\mu - b_i)}{\\lambda_u + |R(u)|}

    Parameters
    ----------
    reg : float
        Regularisation of both sides unless ``reg_user``/``reg_item`` are given. Acts as a prior
        count of "average" ratings: an item with few ratings is pulled toward the global mean.
    reg_user, reg_item : float or None
        Per-side overrides of ``reg``.
    n_epochs : int
        Alternating rounds (items, then users). Convergence is fast; 10-20 rounds are plenty.
        Formerly ``n_iter`` (still accepted, with a FutureWarning, until fastmf 0.4).

    The default ``reg=5`` (both sides) was chosen on ml-100k u1.base/u1.test, where it gives RMSE
    0.9548 (Surprise's ``BaselineOnly`` gives 0.960); the optimum there is flat (0.953-0.955 for
    ``reg_user`` in 3..10 and ``reg_item`` in 1..5), so the round value was kept.

    References
    ----------
    Y. Koren. Factor in the neighbors: scalable and accurate collaborative filtering. ACM TKDD 4(1), 2010.
    """

    _renamed_params = {"n_iter": "n_epochs"}
    _constraints = {
        "reg": Interval("real", 0, None),
        "reg_user": (Options(None), Interval("real", 0, None)),
        "reg_item": (Options(None), Interval("real", 0, None)),
        "n_epochs": Interval("int", 1, MAX_EPOCHS),
    }

    def __init__(self, reg: float = 5.0, reg_user: Optional[float] = None, reg_item: Optional[float] = None,
                 n_epochs: int = 15) -> None:
        self.reg = reg
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.n_epochs = n_epochs

    def fit(self, train: Ratings) -> Biases:
        """Fit the biases on ``train`` (a Ratings); returns self."""
        self._start_fit(train)
        lam_u = float(self.reg if self.reg_user is None else self.reg_user)
        lam_i = float(self.reg if self.reg_item is None else self.reg_item)
        u = train.user_index
        i = train.item_index
        r = train.rating.astype(np.float64) - self.global_mean_
        n_u = self.user_counts_.astype(np.float64)
        n_i = self.item_counts_.astype(np.float64)
        bu = np.zeros(self.n_users_)
        bi = np.zeros(self.n_items_)
        for _ in range(self.n_epochs):
            bi = np.bincount(i, weights=r - bu[u], minlength=self.n_items_) / _positive(lam_i + n_i)
            bu = np.bincount(u, weights=r - bi[i], minlength=self.n_users_) / _positive(lam_u + n_u)
        self.user_bias_ = bu
        self.item_bias_ = bi
        return self

    def _predict_pairs(self, u, i):
        pred = np.full(u.shape, self.global_mean_, dtype=np.float64)
        pred[u >= 0] += self.user_bias_[u[u >= 0]]
        pred[i >= 0] += self.item_bias_[i[i >= 0]]
        return pred

    def _score_users(self, u):
        return (self.global_mean_ + self.user_bias_[u])[:, None] + self.item_bias_[None, :]

    def _fallback_scores(self):
        return self.global_mean_ + self.item_bias_

    def _new_user_scores(self, idx, values):
        """mu + b_u + b_i with the new user's bias from the same closed-form step as in fit."""
        lam_u = float(self.reg if self.reg_user is None else self.reg_user)
        resid = values - self.global_mean_ - self.item_bias_[idx]
        b_u = resid.sum() / (lam_u + idx.size) if lam_u + idx.size > 0 else 0.0
        return self.global_mean_ + b_u + self.item_bias_


class Popularity(Recommender):
    """Recommends the most rated items: the score of item ``i`` is its number of training ratings
    :math:`|R(i)|` (``by="count"``) or the sum of its ratings (``by="sum"``).

    ``predict`` returns these popularity scores, not ratings (``predicts_ratings`` is False, so
    :func:`fastmf.evaluate` reports ranking metrics only). Unknown items score 0.
    """

    predicts_ratings = False
    _new_user_needs_ratings = False
    _constraints = {"by": Options("count", "sum")}

    def __init__(self, by: Literal["count", "sum"] = "count") -> None:
        self.by = by

    def fit(self, train: Ratings) -> Popularity:
        """Count the ratings per item in ``train``; returns self."""
        self._start_fit(train)
        if self.by == "count":
            self.item_scores_ = self.item_counts_.astype(np.float64)
        else:
            self.item_scores_ = np.bincount(train.item_index, weights=train.rating.astype(np.float64),
                                            minlength=self.n_items_)
        return self

    def _predict_pairs(self, u, i):
        return np.where(i >= 0, self.item_scores_[np.maximum(i, 0)], 0.0)

    def _score_users(self, u):
        return np.broadcast_to(self.item_scores_, (u.size, self.n_items_))

    def _fallback_scores(self):
        return self.item_scores_


def _positive(x):
    """Denominators for the closed-form bias steps: an unrated row with zero regularisation gets
    bias 0 instead of 0/0."""
    return np.where(x > 0, x, 1.0)
