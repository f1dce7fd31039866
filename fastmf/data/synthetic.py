"""Synthetic rating data with planted structure: :func:`make_ratings`.

The generator mimics the shape of MovieLens (heavy-tailed user activity and item popularity, a floor of
ratings per user, no repeated (user, item) pair, ratings on a star grid with mean about 3.5 and standard
deviation about 1.1 on a 1-5 scale) while keeping the latent factors and biases that produced the
ratings, so tests can check that a model recovers them.

Everything is vectorised NumPy, processed in chunks of users so that the memory beyond the output
arrays stays bounded (a few tens of MB) whatever the number of ratings.
"""

from __future__ import annotations

import numbers
from collections import namedtuple
from typing import TYPE_CHECKING, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from fastmf._validation import FloatDType, Interval, Options, RandomState, SeedLike
from fastmf.data.ratings import _check_data_params
from fastmf.errors import DataError

if TYPE_CHECKING:  # pragma: no cover - fastmf.data is imported when the data is built
    from fastmf.data.ratings import Ratings

__all__ = ["make_ratings", "PlantedFactors"]

# ---------------------------------------------------------------------- model constants
# All spreads live on a reference 1-5 star scale and are mapped affinely onto ``rating_scale``.
_REF_LOW, _REF_WIDTH = 1.0, 4.0
_MU = 3.45            # global offset before rounding and clipping
_SIGMA_USER_BIAS = 0.50
_SIGMA_ITEM_BIAS = 0.60
_RHO_POPULARITY = 0.3  # correlation of the item bias with log popularity (popular items rate higher)
_SIGMA_INTERACTION = 0.80  # std of p_u . q_i
_MIN_USER_RATINGS = 20   # MovieLens keeps users with at least 20 ratings
_T0 = 946_684_800        # 2000-01-01T00:00:00Z
_PERIOD = 3 * 365 * 86_400

# ---------------------------------------------------------------------- sampler tuning (speed only)
_CHUNK = 1 << 19          # draws (or ratings) handled per chunk of users
_DENSE_RATIO = 0.5        # users expected to need > ratio * n_items draws use the exact dense path
_DENSE_BATCH = 1 << 21    # matrix entries per dense batch
_MAX_ROUNDS = 8           # top-up rounds before the dense fallback
_FIRST_MARGIN = 1.5       # first-round draws: expected + margin * sqrt(expected) + 2
_ALIAS_MAX_ITEMS = 1 << 18  # alias table up to this many items (built in Python), inverse CDF above

_GENRES = ("Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
           "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
           "Western")


class PlantedFactors(namedtuple("PlantedFactors", ["P", "Q", "bu", "bi", "mu"])):
    """The planted model behind :func:`make_ratings`, on the output rating scale.

    ``P`` (n_users, rank), ``Q`` (n_items, rank), ``bu`` (n_users,), ``bi`` (n_items,), ``mu`` a float,
    indexed by dense index (which equals the raw id for synthetic data). The rating of user ``u`` on item
    ``i`` is ``mu + bu[u] + bi[i] + P[u] @ Q[i]`` plus Gaussian noise of std ``noise`` (also on the
    output scale), then rounded and clipped.
    """

    __slots__ = ()

    def predict(self, user_index: npt.ArrayLike, item_index: npt.ArrayLike) -> np.ndarray:
        """Noise-free planted prediction (float64, not rounded or clipped) for dense indices."""
        u = np.asarray(user_index, dtype=np.int64)
        i = np.asarray(item_index, dtype=np.int64)
        dot = np.einsum("ij,ij->i", self.P[u].astype(np.float64), self.Q[i].astype(np.float64))
        return self.mu + self.bu[u].astype(np.float64) + self.bi[i].astype(np.float64) + dot


# ---------------------------------------------------------------------- public entry point
def make_ratings(n_users: int, n_items: int, n_ratings: int, rank: int = 10, noise: float = 0.5,
                 rating_scale: Sequence[float] = (1, 5), seed: SeedLike = 0, *, user_skew: float = 1.0,
                 item_skew: float = 1.2, min_user_ratings: Optional[int] = None,
                 round_to: Optional[float] = 1.0, timestamps: bool = False, dtype: FloatDType = "float32",
                 item_info: bool = True, return_factors: bool = False,
                 name: Optional[str] = None) -> Union[Ratings, Tuple[Ratings, PlantedFactors]]:
    r"""Generate a MovieLens-like explicit rating data set from planted factors and biases.

    Parameters
    ----------
    n_users, n_items : int
        Sizes of the id maps; raw ids are ``0 .. n_users-1`` and ``0 .. n_items-1`` (equal to the
        dense indices). Every user has ratings; an item may have none (it stays in the map).
    n_ratings : int
        Exact number of ratings, in ``[n_users, n_users * n_items]``.
    rank : int, default 10
        Dimension :math:`k` of the planted factors.
    noise : float, default 0.5
        Standard deviation :math:`\sigma_\varepsilon` of the Gaussian noise, in stars of a 1-5 scale
        (scaled with the width of ``rating_scale``). 0 gives ratings that are the rounded and
        clipped planted predictions.
    rating_scale : (low, high), default (1, 5)
        Ratings are clipped to this closed interval.
    seed : None, int or numpy.random.Generator, default 0
        Same seed, same data (the arrays are identical). Independent random streams feed the
        counts, the item sets, the factors, the noise and the timestamps, so changing ``noise``,
        ``rank`` or ``timestamps`` keeps the same (user, item) pairs.
    user_skew : float in [0, 4], default 1.0
        :math:`\sigma_U`, log-std of the user activity weights (0: every user rates about as much).
    item_skew : float in [0, 4], default 1.2
        :math:`\sigma_I`, log-std of the item popularity weights (0: uniform popularity). With the
        defaults on the ML-1M shape the top 10% of items hold about 40% of the ratings (ML-1M: 43%).
    min_user_ratings : int or None
        Floor :math:`m` of ratings per user. None: :math:`m = \max(1, \min(20, n_{items},
        \lfloor n_{ratings} / (4 n_{users}) \rfloor))`, i.e. MovieLens' 20 whenever the average
        activity is at least 80 ratings per user, and a floor that leaves three quarters of the
        ratings to the heavy-tailed allocation otherwise. Must satisfy :math:`m \le n_{items}` and
        :math:`m \, n_{users} \le n_{ratings}`.
    round_to : float or None, default 1.0
        Grid step of the ratings, anchored at ``low`` (1.0: whole stars, 0.5: half stars; None: keep
        continuous values). ``high - low`` must be a multiple of it.
    timestamps : bool, default False
        Add int64 timestamps (seconds since the epoch, from 2000-01-01 over three years). Each user
        is active in one window of time and the user's rows are in time order, so temporal and
        leave-last-out splits are meaningful. Without them the rows are sorted by (user, item).
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the ratings (and of the returned factors).
    item_info : bool, default True
        Attach item metadata: titles ``"Item 17"`` and ``"|"``-joined genres read off the planted
        item factors (genre :math:`g` for latent dimension :math:`g < \min(k, 18)` when
        :math:`q_{ig}` is more than one standard deviation above zero, and always the genre of the
        largest coordinate), so similar items tend to share genres.
    return_factors : bool, default False
        Also return the planted :class:`PlantedFactors` ``(P, Q, bu, bi, mu)`` on the output scale.
    name : str or None
        Name of the data set (default ``"synthetic"``).

    Returns
    -------
    Ratings, or (Ratings, PlantedFactors) when ``return_factors`` is True.

    Notes
    -----
    **Who rates what.** User activity weights :math:`a_u \sim \mathrm{LogNormal}(0, \sigma_U^2)` and
    item popularity weights :math:`w_i \sim \mathrm{LogNormal}(0, \sigma_I^2)`, independent of the
    ids. User :math:`u` gets :math:`n_u = m + e_u` ratings, where :math:`e_u` is the share of the
    :math:`E = n_{ratings} - m\,n_{users}` remaining ratings proportional to :math:`a_u`, capped at
    :math:`n_{items} - m` (water filling: :math:`e_u = \min(n_{items} - m, \lambda a_u)` with
    :math:`\lambda` such that :math:`\sum_u e_u = E`), made integral by the largest-remainder rule so
    that :math:`\sum_u n_u = n_{ratings}` exactly. The items of user :math:`u` are a sample of size
    :math:`n_u` without replacement with probabilities :math:`\propto w_i`, by successive sampling:
    draw items i.i.d. with :math:`P(i) = w_i / \sum_j w_j`, discard repeats, stop at :math:`n_u`
    distinct items (equivalently, the :math:`n_u` smallest :math:`E_i / w_i` with
    :math:`E_i \sim \mathrm{Exp}(1)`, Efraimidis and Spirakis, 2006, which is how users needing
    many draws are served).

    **What they rate.** On the reference 1-5 scale,

    .. math::

        x_{ui} = \mu + b_u + b_i + p_u^\top q_i + \sigma_\varepsilon \varepsilon_{ui}, \qquad
        \varepsilon_{ui} \sim N(0, 1),

    with :math:`\mu = 3.45`, :math:`b_u \sim N(0, 0.5^2)`,
    :math:`b_i = 0.6\,(\rho z_i + \sqrt{1-\rho^2}\,\xi_i)`, :math:`\rho = 0.3`,
    :math:`z_i = \log(w_i)/\sigma_I` (popular items rate a little higher), :math:`\xi_i \sim N(0, 1)`,
    and :math:`p_u, q_i \sim N(0, (0.8/\sqrt{k})\,I_k)` so that :math:`\mathrm{sd}(p_u^\top q_i)
    = 0.8`. The value is mapped onto the scale, :math:`y = \mathrm{low} + (\mathrm{high} -
    \mathrm{low})(x - 1)/4` (the returned factors are mapped with it: :math:`\mu, b` scaled by
    :math:`s = (\mathrm{high} - \mathrm{low})/4`, :math:`P, Q` by :math:`\sqrt{s}`), rounded to the
    grid :math:`\mathrm{low} + \mathbb{Z}\,\mathrm{round\_to}` and clipped to the scale. With the
    defaults the ratings have mean about 3.57 and standard deviation about 1.1 on 1-5 (ML-1M: 3.58,
    1.12; about 4% ones and 23% fives, ML-1M 6% and 23%).

    **When.** With ``timestamps=True`` user :math:`u` starts at :math:`s_u \sim U(0, T)` (:math:`T`
    = three years), stays for :math:`(T - s_u)\,B_u` with :math:`B_u \sim \mathrm{Beta}(0.5, 3)`,
    and rates its items in a uniformly random order at sorted uniform times in that window.

    Examples
    --------
    >>> ds = make_ratings(6040, 3706, 1_000_209, seed=0)          # the ML-1M shape, well under 1 s
    >>> ds, planted = make_ratings(500, 300, 20_000, noise=0.1, return_factors=True)
    """
    owner = "make_ratings"
    _check_data_params(owner, {
        "n_users": n_users, "n_items": n_items, "n_ratings": n_ratings, "rank": rank, "noise": noise,
        "seed": seed, "user_skew": user_skew, "item_skew": item_skew,
        "min_user_ratings": min_user_ratings, "round_to": round_to, "timestamps": timestamps,
        "item_info": item_info, "return_factors": return_factors,
    }, {
        "n_users": Interval("int", 1, 2**31 - 1),
        "n_items": Interval("int", 1, 2**31 - 1),
        "n_ratings": Interval("int", 1, None),
        "rank": Interval("int", 1, 10_000),
        "noise": Interval("real", 0, None),
        "seed": RandomState(),
        "user_skew": Interval("real", 0, 4),
        "item_skew": Interval("real", 0, 4),
        "min_user_ratings": (Options(None), Interval("int", 1, None)),
        "round_to": (Options(None), Interval("real", 0, None, closed="neither")),
        "timestamps": Options(True, False),
        "item_info": Options(True, False),
        "return_factors": Options(True, False),
    })
    n_users, n_items, n_ratings, rank = int(n_users), int(n_items), int(n_ratings), int(rank)
    if not n_users <= n_ratings <= n_users * n_items:
        raise DataError(f"{owner}: n_ratings must be an int in [{n_users}, {n_users * n_items}] "
                         f"(at least one rating per user, at most n_users * n_items), got {n_ratings!r}")
    low, high = _check_scale(owner, rating_scale)
    if round_to is not None:
        steps = (high - low) / round_to
        if abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
            raise DataError(f"{owner}: round_to must divide high - low = {high - low:g} of rating_scale "
                             f"{rating_scale!r} (e.g. 1.0 or 0.5), got {round_to!r}")
    try:
        dt = np.dtype(dtype) if dtype is not None else None
    except TypeError:
        dt = None
    if dt is None or dt.type not in (np.float32, np.float64):
        raise DataError(f"{owner}: dtype must be one of 'float32', 'float64', got {dtype!r}")
    if name is not None and not isinstance(name, str):
        raise DataError(f"{owner}: name must be a str or None, got {name!r}")
    if min_user_ratings is None:
        m = max(1, min(_MIN_USER_RATINGS, n_items, n_ratings // (4 * n_users)))
    else:
        m = int(min_user_ratings)
        if m > n_items or m * n_users > n_ratings:
            raise DataError(f"{owner}: min_user_ratings must be an int in "
                             f"[1, {min(n_items, n_ratings // n_users)}] (at most n_items and "
                             f"n_ratings / n_users), got {min_user_ratings!r}")

    s_counts, s_items, s_factors, s_noise, s_time = _streams(seed, 5)

    # who rates what
    counts = _allocate_counts(n_users, n_items, n_ratings, m, float(user_skew), s_counts)
    log_w = _lognormal_logs(n_items, float(item_skew), s_items)
    weights = np.exp(log_w - log_w.max())
    items = _sample_items(counts, weights, s_items)
    users = np.repeat(np.arange(n_users, dtype=np.int32), counts)

    # planted model, on the output scale
    scale = (high - low) / _REF_WIDTH
    k = rank
    f_std = np.sqrt(_SIGMA_INTERACTION / np.sqrt(k))
    P = s_factors.standard_normal((n_users, k)) * (f_std * np.sqrt(scale))
    Q = s_factors.standard_normal((n_items, k)) * (f_std * np.sqrt(scale))
    bu = s_factors.standard_normal(n_users) * (_SIGMA_USER_BIAS * scale)
    z = log_w / item_skew if item_skew > 0 else np.zeros(n_items)
    xi = s_factors.standard_normal(n_items)
    bi = (_RHO_POPULARITY * z + np.sqrt(1 - _RHO_POPULARITY**2) * xi) * (_SIGMA_ITEM_BIAS * scale)
    mu = low + (_MU - _REF_LOW) * scale
    P, Q, bu, bi = (a.astype(dt) for a in (P, Q, bu, bi))
    noise_std = float(noise) * scale

    ts = None
    if timestamps:
        start = s_time.uniform(0, _PERIOD, n_users)
        span = (_PERIOD - start) * s_time.beta(0.5, 3.0, n_users)
        ts = np.empty(n_ratings, dtype=np.int64)

    rating = np.empty(n_ratings, dtype=dt)
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    PT = np.ascontiguousarray(P.T)
    QT = np.ascontiguousarray(Q.T)
    for a, b in _user_chunks(offsets, _CHUNK):
        lo_r, hi_r = int(offsets[a]), int(offsets[b])
        u = users[lo_r:hi_r]
        it = items[lo_r:hi_r]
        x = np.empty(hi_r - lo_r, dtype=dt)
        np.take(bu, u, out=x)
        x += np.take(bi, it)
        x += mu
        tmp = np.empty_like(x)
        for j in range(k):
            np.take(PT[j], u, out=tmp)
            tmp *= np.take(QT[j], it)
            x += tmp
        if noise_std > 0:
            tmp = s_noise.standard_normal(x.shape[0], dtype=dt)
            tmp *= noise_std
            x += tmp
        if round_to is not None:
            x -= low
            x /= round_to
            np.rint(x, out=x)
            x *= round_to
            x += low
        np.clip(x, low, high, out=x)
        if timestamps:   # after the values, so that they do not depend on the order
            cnt = counts[a:b]
            perm = _shuffle_within_users(cnt, s_time)
            it[:] = it[perm]
            x = x[perm]
            ts[lo_r:hi_r] = _sorted_times(cnt, start[a:b], span[a:b], s_time)
        rating[lo_r:hi_r] = x

    from fastmf.data.ratings import IdMap, Metadata, Ratings

    info = None
    if item_info:
        info = Metadata(np.arange(n_items), {"title": _titles(n_items), "genres": _genres(Q)})
    ds = Ratings(users, items, rating, ts, user_map=IdMap(np.arange(n_users)),
                 item_map=IdMap(np.arange(n_items)), rating_scale=(low, high), item_info=info,
                 name=name if name is not None else "synthetic", _validated=True)
    if return_factors:
        return ds, PlantedFactors(P, Q, bu, bi, float(mu))
    return ds


# ---------------------------------------------------------------------- argument helpers
def _check_scale(owner, rating_scale):
    try:
        low, high = rating_scale
        ok = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in (low, high))
    except (TypeError, ValueError):
        ok = False
    if ok:
        low, high = float(low), float(high)
        ok = bool(np.isfinite(low) and np.isfinite(high) and low < high)
    if not ok:
        raise DataError(f"{owner}: rating_scale must be a pair (low, high) of finite numbers with "
                         f"low < high, got {rating_scale!r}")
    return low, high


def _streams(seed, n):
    """``n`` independent Generators derived from ``seed`` (None, int or Generator)."""
    if isinstance(seed, np.random.Generator):
        ss = np.random.SeedSequence(seed.integers(0, 2**63 - 1, size=4).tolist())
    else:
        ss = np.random.SeedSequence(None if seed is None else int(seed))
    return [np.random.default_rng(c) for c in ss.spawn(n)]


def _bits(x):
    """Bits needed to hold the non-negative integers ``0 .. x``."""
    return max(1, int(x).bit_length())


def _lognormal_logs(n, sigma, rng):
    """log of n LogNormal(0, sigma^2) weights (zeros when sigma is 0)."""
    return rng.standard_normal(n) * sigma if sigma > 0 else np.zeros(n)


# ---------------------------------------------------------------------- ratings per user
def _allocate_counts(n_users, n_items, n_ratings, m, skew, rng):
    """Ratings per user (int64): m + a capped share of the rest proportional to LogNormal weights,
    summing to n_ratings exactly (see make_ratings, Notes)."""
    extra = n_ratings - m * n_users
    cap = n_items - m
    a = np.exp(_lognormal_logs(n_users, skew, rng))
    counts = np.full(n_users, m, dtype=np.int64)
    if extra == 0:
        return counts
    share = _water_fill(a, extra, cap)
    base = np.floor(share).astype(np.int64)
    np.minimum(base, cap, out=base)
    rest = extra - int(base.sum())
    if rest > 0:   # largest remainders among users below the cap
        frac = share - base
        frac[base >= cap] = -np.inf
        base[np.argpartition(-frac, rest - 1)[:rest]] += 1
    elif rest < 0:  # float round-off only: take back from the smallest remainders
        frac = share - base
        frac[base <= 0] = np.inf
        base[np.argpartition(frac, -rest - 1)[:-rest]] -= 1
    counts += base
    return counts


def _water_fill(a, total, cap):
    """``min(cap, lam * a)`` with ``lam`` chosen so that the values sum to ``total`` (<= cap * len(a))."""
    n = a.shape[0]
    if total >= cap * n:
        return np.full(n, float(cap))
    s = np.sort(a)[::-1]
    suffix = np.cumsum(s[::-1])[::-1]            # suffix[k] = sum(s[k:])
    k = np.arange(n)
    # with the k largest at the cap, lam_k = (total - k cap) / suffix[k]; take the first k whose next
    # weight stays under the cap
    ok = s * (total - k * cap) <= cap * suffix
    first = int(np.argmax(ok))
    lam = (total - first * cap) / suffix[first]
    return np.minimum(float(cap), lam * a)


def _user_chunks(offsets, size):
    """Contiguous user ranges [a, b) holding about ``size`` ratings each (at least one user)."""
    n = offsets.shape[0] - 1
    a = 0
    while a < n:
        b = int(np.searchsorted(offsets, offsets[a] + size, side="right")) - 1
        b = min(n, max(b, a + 1))
        yield a, b
        a = b


# ---------------------------------------------------------------------- items per user
class _ItemDraws:
    """i.i.d. item draws with P(i) = p_i: Walker's alias method (O(1) per draw) or inverse CDF."""

    def __init__(self, weights):
        p = np.asarray(weights, dtype=np.float64)
        p = p / p.sum()
        self.n = p.shape[0]
        self.p = p
        if self.n <= _ALIAS_MAX_ITEMS:
            self.prob, self.alias = _alias_table(p)
            self.cdf = None
        else:
            self.cdf = np.cumsum(p)
            self.cdf /= self.cdf[-1]
        self.itype = np.int32 if self.n < 2**31 else np.int64
        self._g = None

    def draw(self, size, rng):
        u = rng.random(size)
        if self.cdf is not None:
            return np.minimum(np.searchsorted(self.cdf, u, side="right"), self.n - 1).astype(np.int64)
        u *= self.n
        j = u.astype(self.itype)
        np.minimum(j, self.n - 1, out=j)
        u -= j                                    # uniform in [0, 1) again, independent of j
        out = np.where(u < self.prob[j], j, self.alias[j])
        return out.astype(np.int64)

    def expected_draws(self, counts, top):
        """Approximate number of i.i.d. draws needed to see ``counts`` distinct items, by inverting
        g(D) = sum_i (1 - exp(-D p_i)) (expected distinct items after D Poisson draws) on a grid of
        D up to ``top``; ``inf`` where g(top) < counts. Only sizes the draws, never affects results'
        distribution."""
        if self._g is None or self._g[0] != top:
            srt = np.sort(self.p)
            edges = np.unique(np.linspace(0, self.n, min(4096, self.n) + 1).astype(np.int64))
            sizes = np.diff(edges)
            means = np.add.reduceat(srt, edges[:-1]) / sizes
            grid = np.geomspace(1.0, max(2.0, top), 96)
            g = np.maximum.accumulate((sizes * -np.expm1(-np.outer(grid, means))).sum(axis=1))
            self._g = (top, grid, g)
        _, grid, g = self._g
        d = np.interp(counts, g, grid)
        d[counts > g[-1]] = np.inf
        return np.maximum(d, counts)


def _alias_table(p):
    """Vose's alias table: column j keeps item j with probability prob[j], else alias[j]."""
    n = p.shape[0]
    scaled = (p * n).tolist()
    prob = [1.0] * n
    alias = list(range(n))
    small = [j for j in range(n) if scaled[j] < 1.0]
    large = [j for j in range(n) if scaled[j] >= 1.0]
    while small and large:
        s = small.pop()
        g = large[-1]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] += scaled[s] - 1.0
        if scaled[g] < 1.0:
            large.pop()
            small.append(g)
    return np.array(prob), np.array(alias, dtype=np.int64)


def _sample_items(counts, weights, rng, dense_ratio=_DENSE_RATIO, chunk=_CHUNK):
    """For each user u, ``counts[u]`` distinct items drawn without replacement with probabilities
    proportional to ``weights`` (successive sampling). Returns int32 items, user after user, sorted
    ascending within each user.

    Users expected to need few draws go through the vectorised rejection sampler
    (:func:`_sample_sparse`); the others (expected draws > dense_ratio * n_items, or counts close to
    n_items) through the exact dense sampler (:func:`_sample_dense`). Both produce the same
    distribution."""
    counts = np.asarray(counts, dtype=np.int64)
    draws = _ItemDraws(weights)
    n_items = draws.n
    n_users = counts.shape[0]
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.int32)
    expect = draws.expected_draws(counts.astype(np.float64), dense_ratio * n_items)
    dense = ~(expect <= dense_ratio * n_items)
    item_bits = _bits(n_items - 1)

    sparse_users = np.flatnonzero(~dense & (counts > 0))
    e = expect[sparse_users]
    first_draws = np.ceil(e + _FIRST_MARGIN * np.sqrt(e)).astype(np.int64) + 2
    cum = np.cumsum(first_draws)
    start = 0
    while start < sparse_users.shape[0]:
        base = cum[start - 1] if start else 0
        stop = int(np.searchsorted(cum, base + chunk, side="right"))
        stop = min(sparse_users.shape[0], max(stop, start + 1))
        us = sparse_users[start:stop]
        pairs = _sample_sparse(counts[us], expect[us], first_draws[start:stop], draws, rng, item_bits)
        _scatter(out, offsets, us, counts[us], pairs & ((1 << item_bits) - 1))
        start = stop

    dense_users = np.flatnonzero(dense & (counts > 0))
    if dense_users.size:
        rows, its = _sample_dense(counts[dense_users], draws, rng)
        del rows
        _scatter(out, offsets, dense_users, counts[dense_users], its)
    return out


def _scatter(out, offsets, users, counts, values):
    """Write ``values`` (grouped by ``users``, ``counts`` each) to ``out`` at each user's offsets."""
    local_start = np.cumsum(counts) - counts
    pos = np.repeat(offsets[users] - local_start, counts) + np.arange(values.shape[0])
    out[pos] = values


def _sample_sparse(need, expect, first_draws, draws, rng, item_bits):
    """Successive sampling for a chunk of users by rejection, vectorised.

    Each round draws a batch of i.i.d. items per still-short user (in draw order, user after user),
    finds the first occurrence of every (user, item) pair with one sort of packed int64 keys
    ``((user << item_bits | item) << pos_bits) | draw_position``, drops pairs already held, and keeps
    each user's first ``still_needed`` new distinct items in draw order, which is exactly "draw with
    replacement, skip repeats, stop at n". Users still short after ``_MAX_ROUNDS`` finish with the
    exact dense sampler restricted to the items they do not hold yet (the same distribution,
    conditioned on what was drawn). Returns the sorted keys ``local_user << item_bits | item``.
    """
    m = need.shape[0]
    lu_bits = _bits(m - 1)
    rem = need.copy()
    held = None
    active = np.arange(m)
    d = first_draws
    for rnd in range(_MAX_ROUNDS):
        total = int(d.sum())
        item = draws.draw(total, rng)
        pair = np.repeat(active << item_bits, d)
        pair |= item
        del item
        pos_bits = _bits(total - 1)
        if lu_bits + item_bits + pos_bits <= 63:
            key = pair << pos_bits
            key |= np.arange(total, dtype=np.int64)
            del pair
            key.sort()
            spos = key & ((1 << pos_bits) - 1)
            key >>= pos_bits
            spair = key
        else:   # keys too wide to pack: a stable argsort does the same job, more slowly
            spos = np.argsort(pair, kind="stable")
            spair = pair[spos]
        first = np.empty(total, dtype=bool)
        first[0] = True
        np.not_equal(spair[1:], spair[:-1], out=first[1:])
        if held is not None:
            at = np.searchsorted(held, spair)
            np.minimum(at, held.shape[0] - 1, out=at)
            first &= held[at] != spair
        flag = np.zeros(total, dtype=bool)          # new distinct pair, by draw position
        flag[spos[first]] = True
        cs = np.cumsum(flag, dtype=np.int64)
        ends = np.cumsum(d)
        before = np.zeros(d.shape[0], dtype=np.int64)
        before[1:] = cs[ends[:-1] - 1]
        found = cs[ends - 1] - before
        ra = rem[active]
        limit = np.repeat(before + ra, d)           # keep while rank within user <= still needed
        flag &= cs <= limit
        new = spair[first & flag[spos]]              # sorted
        rem[active] = ra - np.minimum(found, ra)
        held = new if held is None else _merge_sorted(held, new)
        short = rem[active] > 0
        if not short.any():
            return held
        active = active[short]
        # draws for the shortfall: expected extra draws (tail of the inverse of g) with a margin
        ra = rem[active]
        nd = need[active]
        e_all = expect[active]
        e_part = draws.expected_draws((nd - ra).astype(np.float64), draws._g[0])
        extra = np.maximum(e_all - e_part, ra) * (1.5 * 2**rnd)
        d = np.ceil(extra + 2 * np.sqrt(extra)).astype(np.int64) + 2
    # dense fallback for the last few, excluding what they hold
    held_user = held >> item_bits
    sel = np.isin(held_user, active)
    row_of = np.full(m, -1, dtype=np.int64)
    row_of[active] = np.arange(active.shape[0])
    rows, its = _sample_dense(rem[active], draws, rng, row_of[held_user[sel]],
                              held[sel] & ((1 << item_bits) - 1))
    extra_pairs = (active[rows] << item_bits) | its
    return _merge_sorted(held, extra_pairs)


def _merge_sorted(a, b):
    out = np.concatenate([a, b])
    out.sort()
    return out


def _sample_dense(need, draws, rng, excl_rows=None, excl_items=None):
    """Exact weighted sampling without replacement by exponential races: row r keeps the ``need[r]``
    items with the smallest E_ri / p_i, E_ri ~ Exp(1) (Efraimidis-Spirakis / Gumbel top-k), items
    listed in (excl_rows, excl_items) excluded. Returns (rows, items) sorted by row then item."""
    n = draws.n
    inv_p = 1.0 / draws.p
    n_rows = need.shape[0]
    batch = max(1, _DENSE_BATCH // n)
    rows_out, items_out = [], []
    for a in range(0, n_rows, batch):
        b = min(n_rows, a + batch)
        key = rng.standard_exponential((b - a, n))
        key *= inv_p
        if excl_rows is not None:
            sel = (excl_rows >= a) & (excl_rows < b)
            key[excl_rows[sel] - a, excl_items[sel]] = np.inf
        nb = need[a:b]
        thr = np.sort(key, axis=1)[np.arange(b - a), nb - 1]
        mask = key <= thr[:, None]
        cnt = mask.sum(axis=1)
        for r in np.flatnonzero(cnt != nb):         # exact ties (probability ~0): break by position
            mask[r] = False
            mask[r, np.argsort(key[r], kind="stable")[:nb[r]]] = True
        r, it = np.nonzero(mask)
        rows_out.append(r + a)
        items_out.append(it)
    return (np.concatenate(rows_out).astype(np.int64), np.concatenate(items_out).astype(np.int64))


def _sample_items_reference(counts, weights, rng):
    """Naive reference sampler: one ``Generator.choice(replace=False, p=...)`` call per user (also
    successive sampling). Same distribution as :func:`_sample_items`, different stream; used by the
    tests and as the benchmark baseline."""
    p = np.asarray(weights, dtype=np.float64)
    p = p / p.sum()
    n = p.shape[0]
    parts = [np.sort(rng.choice(n, size=int(c), replace=False, p=p)) for c in counts]
    return np.concatenate(parts).astype(np.int32) if parts else np.empty(0, dtype=np.int32)


# ---------------------------------------------------------------------- timestamps
def _shuffle_within_users(counts, rng):
    """A permutation of ``0 .. sum(counts)-1`` that keeps each user's block (``counts`` rows each, in
    order) in place and orders the rows within the block uniformly at random."""
    total = int(counts.sum())
    m = counts.shape[0]
    lu_bits, pos_bits = _bits(m - 1), _bits(total - 1)
    rand_bits = min(32, 63 - lu_bits - pos_bits)
    lu = np.repeat(np.arange(m, dtype=np.int64), counts)
    if rand_bits >= 20:   # sort packed (user, random, position) keys; equal randoms (rare) keep order
        key = lu << (rand_bits + pos_bits)
        key |= rng.integers(0, 1 << rand_bits, size=total, dtype=np.int64) << pos_bits
        key |= np.arange(total, dtype=np.int64)
        key.sort()
        key &= (1 << pos_bits) - 1
        return key
    return np.lexsort((rng.random(total), lu))


def _sorted_times(counts, start, span, rng):
    """Per user, ``counts[u]`` sorted uniform times in [start_u, start_u + span_u] (normalised
    partial sums of exponentials), as int64 seconds from 2000-01-01."""
    total = int(counts.sum())
    e = rng.standard_exponential(total)
    cs = np.cumsum(e)
    ends = np.cumsum(counts)
    before = np.zeros(counts.shape[0])
    before[1:] = cs[ends[:-1] - 1]
    denom = cs[ends - 1] - before + rng.standard_exponential(counts.shape[0])
    frac = (cs - np.repeat(before, counts)) / np.repeat(denom, counts)
    t = np.repeat(start, counts) + np.repeat(span, counts) * frac
    return (t + _T0).astype(np.int64)


# ---------------------------------------------------------------------- item metadata
def _titles(n):
    return np.char.add("Item ", np.arange(n).astype(str))


def _genres(Q):
    """One "|"-joined genre string per item from the planted item factors (see make_ratings)."""
    n, k = Q.shape
    g = min(k, len(_GENRES))
    q = np.asarray(Q[:, :g], dtype=np.float64)
    sd = q.std(axis=0)
    sd[sd == 0] = 1.0
    member = q > sd
    member[np.arange(n), np.argmax(q, axis=1)] = True
    code = member.astype(np.int64) @ (np.int64(1) << np.arange(g, dtype=np.int64))
    uniq, inv = np.unique(code, return_inverse=True)
    names = np.array(["|".join(_GENRES[j] for j in range(g) if (c >> j) & 1) for c in uniq.tolist()])
    return names[inv.reshape(-1)]
