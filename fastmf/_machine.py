"""What machine a figure was measured on: the CPU model and its cache sizes (Linux ``/proc`` and
``/sys``; "unknown" elsewhere). The one definition used by result tables (:mod:`fastmf.tune`), the
command line and the benchmarks, so every figure names its CPU the same way."""

from __future__ import annotations

import os
import platform
from typing import List


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    name = platform.processor() or platform.machine() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return name


def cache_sizes() -> List[str]:
    """The caches of CPU 0 as ``"L1d 48K"``, ``"L2u 2048K"``, ... (empty when unknown)."""
    caches = []
    base = "/sys/devices/system/cpu/cpu0/cache"
    for entry in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        try:
            with open(f"{base}/{entry}/level") as a, open(f"{base}/{entry}/type") as b, \
                    open(f"{base}/{entry}/size") as c:
                caches.append(f"L{a.read().strip()}{b.read().strip()[0].lower()} {c.read().strip()}")
        except (OSError, IndexError):
            continue
    return caches


def describe() -> str:
    """``"<CPU model>, <n> cores, caches L1d 48K L1i 64K L2u 2048K ..."``."""
    return f"{cpu_model()}, {os.cpu_count()} cores, caches {' '.join(cache_sizes()) or 'unknown'}"


# --------------------------------------------------------------- cache sizes the kernels tune to
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _bytes(text: str) -> int:
    """``"2048K"`` -> 2097152 (sysfs and FASTMF_CACHE_SIZES notation; K/M/G are powers of 1024)."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in ("K", "M", "G") else ""
    return int(float(t[:len(t) - len(unit)]) * _UNITS[unit])


def _cpu_list_count(text: str) -> int:
    """How many CPUs a sysfs list such as ``"0-3,8-11"`` names."""
    n = 0
    for part in text.strip().split(","):
        if part:
            lo, _, hi = part.partition("-")
            n += int(hi or lo) - int(lo) + 1
    return max(n, 1)


def cache_per_core(level: int) -> int:
    """Bytes of the level-``level`` data (or unified) cache that one core can count on: the cache's
    size divided by the number of CPUs sharing it (so the last level is a core's share of it), from
    sysfs (Linux), else ``os.sysconf`` where the C library reports it, else 0 (unknown).

    ``FASTMF_CACHE_SIZES`` overrides it for experiments, e.g. ``FASTMF_CACHE_SIZES="L2=512K,L3=4M"`` (per-core
    bytes, K/M/G = 1024^n); a level it does not name keeps the machine's value. Read on every call
    (cheap: a few small files), so an experiment can change it between fits."""
    override = os.environ.get("FASTMF_CACHE_SIZES", "").strip()
    if override:
        for item in override.split(","):
            name, sep, value = item.partition("=")
            if not sep or name.strip().upper() not in ("L1", "L2", "L3"):
                raise ValueError(f"FASTMF_CACHE_SIZES={override!r}: expected entries like 'L2=512K,L3=4M', "
                                 f"got {item!r}")
            try:
                size = _bytes(value)
            except (ValueError, IndexError):
                raise ValueError(f"FASTMF_CACHE_SIZES={override!r}: {value!r} is not a size such as 512K or 4M") from None
            if size <= 0:
                raise ValueError(f"FASTMF_CACHE_SIZES={override!r}: {name.strip()} must be > 0")
            if int(name.strip()[1]) == level:
                return size
    base = "/sys/devices/system/cpu/cpu0/cache"
    for entry in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        try:
            with open(f"{base}/{entry}/level") as a, open(f"{base}/{entry}/type") as b:
                if int(a.read()) != level or b.read().strip() not in ("Data", "Unified"):
                    continue
            with open(f"{base}/{entry}/size") as c:
                size = _bytes(c.read())
            try:
                with open(f"{base}/{entry}/shared_cpu_list") as d:
                    size //= _cpu_list_count(d.read())
            except OSError:
                pass
            return size
        except (OSError, ValueError, IndexError):
            continue
    name = {1: "SC_LEVEL1_DCACHE_SIZE", 2: "SC_LEVEL2_CACHE_SIZE", 3: "SC_LEVEL3_CACHE_SIZE"}.get(level)
    try:
        return max(int(os.sysconf(name)), 0) if name else 0
    except (ValueError, OSError):
        return 0


def sgd_blocks(n_users: int, n_items: int, row_bytes: int, base: int = 8, max_blocks: int = 64) -> int:
    """Blocks per side of the blocked SGD schedule for this machine: ``base`` (8: serves 1, 2, 4 and 8
    threads evenly), doubled while the factor rows one block touches -- ``(n_users + n_items) / B``
    rows of ``row_bytes`` -- exceed half of a core's share of the last-level cache
    (``cache_per_core(3)``, else ``cache_per_core(2)``; unknown: ``base``), up to ``max_blocks``.

    Why the last level and not L2: with the ratings in block order, a block's rows are visited in a
    random order many times; measured on a Zen 3 (512 KiB L2, 32 MiB L3) at the ML-1M shape, more
    blocks than 8 (so that a block fits in L2) gave no gain and 32 or 64 were slower, while rows
    that spill out of the last level cost a memory access (~550 ns there) per rating. The model
    depends on the block count, so it depends on this machine's cache (never on the thread count);
    pass ``n_blocks`` to the estimator, or set ``FASTMF_CACHE_SIZES``, for the same model everywhere."""
    cache = cache_per_core(3) or cache_per_core(2)
    B = max(int(base), 1)
    if cache <= 0:
        return B
    while B * 2 <= max_blocks and (n_users + n_items) / B * row_bytes > cache / 2:
        B *= 2
    return B
