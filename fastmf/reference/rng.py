"""The random streams of the C kernels (csrc/rng.c) in pure Python: splitmix64 seeding,
xoshiro256**, Lemire's bounded draws, Fisher-Yates, normals, and the blocked SGD order."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import numpy.typing as npt



_M64 = (1 << 64) - 1
_M32 = (1 << 32) - 1


def _splitmix64(x):
    """(next state, output) of splitmix64 (Steele, Lea & Flood 2014) from state ``x``."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return x, z ^ (z >> 31)


class _Xoshiro256:
    """xoshiro256** (Blackman & Vigna 2018) seeded from (seed, a, b) through splitmix64, with the
    32-bit draws (high half, then low half of each output) and bounded draws of the C kernels."""

    def __init__(self, seed, a, b):
        x, h = _splitmix64(seed & _M64)
        x, h = _splitmix64(h ^ a)
        x = h ^ b
        self.s = []
        for _ in range(4):
            x, v = _splitmix64(x)
            self.s.append(v)
        if not any(self.s):
            self.s[0] = 1
        self.spare = None

    def next64(self):
        s = self.s

        def rotl(v, r):
            return ((v << r) | (v >> (64 - r))) & _M64

        result = (rotl((s[1] * 5) & _M64, 7) * 9) & _M64
        t = (s[1] << 17) & _M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def next32(self):
        if self.spare is not None:
            v, self.spare = self.spare, None
            return v
        x = self.next64()
        self.spare = x & _M32
        return x >> 32

    def below(self, bound):
        """Uniform in [0, bound): Lemire's multiply-shift with rejection below 2**32, else plain
        rejection sampling."""
        if bound <= _M32:
            m = self.next32() * bound
            if (m & _M32) < bound:
                threshold = ((1 << 32) - bound) % bound
                while (m & _M32) < threshold:
                    m = self.next32() * bound
            return m >> 32
        threshold = ((1 << 64) - bound) % bound
        while True:
            x = self.next64()
            if x >= threshold:
                return x % bound


def _fisher_yates(a, g):
    for i in range(len(a) - 1, 0, -1):
        j = g.below(i + 1)
        a[i], a[j] = a[j], a[i]


def permutation(n: int, seed: int, stream: int = 0) -> np.ndarray:
    """The permutation of ``0..n-1`` that ``fastmf._sgd.permutation(n, seed, stream)`` computes in C
    (Fisher-Yates with xoshiro256** seeded from ``(seed, stream)``), in pure Python: the order the
    ``"shuffle"`` schedule visits in each epoch (``stream`` = the epoch)."""
    a = list(range(n))
    _fisher_yates(a, _Xoshiro256(seed, stream, 0))
    return np.array(a, dtype=np.int64)


def normals(n: int, seed: int, stream: int = 0, sub: int = 0) -> np.ndarray:
    """``n`` standard normal draws of the xoshiro256** stream seeded from ``(seed, stream, sub)``, as
    ``fastmf._sgd.normals`` draws them in C (csrc/rng.h, for Gibbs sampling): Marsaglia's polar
    method on uniforms ``U = (x >> 11) 2**-53`` of the 64-bit outputs ``x``, returning both normals
    of each accepted pair, the first first::

        u, v = 2 U1 - 1, 2 U2 - 1     until 0 < s = u**2 + v**2 < 1
        f = sqrt(-2 log(s) / s);  draws u f, v f

    The two agree up to the rounding of ``log`` (and FMA contraction of ``s`` on some CPUs)."""
    g = _Xoshiro256(seed, stream, sub)
    out = np.empty(n, dtype=np.float64)
    i = 0
    while i < n:
        while True:
            u = 2.0 * ((g.next64() >> 11) * 2.0**-53) - 1.0
            v = 2.0 * ((g.next64() >> 11) * 2.0**-53) - 1.0
            s = u * u + v * v
            if 0.0 < s < 1.0:
                break
        f = np.sqrt(-2.0 * np.log(s) / s)
        out[i] = u * f
        if i + 1 < n:
            out[i + 1] = v * f
        i += 2
    return out


def block_permutations(block_ptr: Sequence[int], block_order: npt.ArrayLike, seed: int, epoch: int) -> np.ndarray:
    """``block_order`` with each block's segment ``block_ptr[b] .. block_ptr[b + 1] - 1`` shuffled
    by the stream of ``(seed, epoch, b + 1)``: what ``fastmf._sgd`` does to every block of a blocked
    epoch before running it (pure Python)."""
    out = np.array(block_order, dtype=np.int64)
    for b in range(len(block_ptr) - 1):
        seg = out[block_ptr[b]:block_ptr[b + 1]].tolist()
        _fisher_yates(seg, _Xoshiro256(seed, epoch, b + 1))
        out[block_ptr[b]:block_ptr[b + 1]] = seg
    return out


# -------------------------------------------------------------------------------------------- SGD
