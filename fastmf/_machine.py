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
