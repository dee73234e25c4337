"""Synthetic image-classification data, identical for a seed on CuPy and NumPy.

Random numbers come from a counter-based hash (splitmix64) computed with integer array
arithmetic, which both libraries do bit for bit; images are class-specific gratings plus that
noise, so a small CNN can learn them in a few steps. Only float32 ``sin`` may differ between the
libraries, by a few units in the last place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def _splitmix64(x: Any, xp: Any) -> Any:
    x = x + xp.uint64(_GOLDEN)
    x = (x ^ (x >> xp.uint64(30))) * xp.uint64(_M1)
    x = (x ^ (x >> xp.uint64(27))) * xp.uint64(_M2)
    return x ^ (x >> xp.uint64(31))


def uniform(xp: Any, seed: int, start: int, count: int, stream: int) -> Any:
    """`count` float32 values in [0, 1) for counters start..start+count of (seed, stream)."""
    base = (seed * 0x100000001B3 + stream * 0x1000193) & 0xFFFFFFFFFFFFFFFF
    counters = xp.arange(start, start + count, dtype=xp.uint64) + xp.uint64(base)
    bits = _splitmix64(_splitmix64(counters, xp), xp) >> xp.uint64(40)  # 24 random bits
    return bits.astype(xp.float32) * xp.float32(1.0 / (1 << 24))


@dataclass
class Batch:
    images: Any  # (n, 3, size, size) float32, on the backend's device
    labels: Any  # (n,) int64
    backend: str
    seconds: float

    @property
    def nbytes(self) -> int:
        return int(self.images.nbytes + self.labels.nbytes)

    @property
    def gb_per_s(self) -> float:
        return self.nbytes / self.seconds / 1e9 if self.seconds > 0 else float("inf")


def backend(use_gpu: bool) -> tuple[Any, str]:
    """(array module, name): CuPy when asked for and usable, else NumPy."""
    if use_gpu:
        import cupy

        return cupy, "cupy"
    return np, "numpy"


def _sync(xp: Any) -> None:
    if xp is not np:
        xp.cuda.Device().synchronize()


def generate(
    xp: Any, seed: int, start: int, count: int, size: int = 32, classes: int = 10
) -> Batch:
    """Samples start..start+count of the dataset for `seed` (disjoint ranges never overlap)."""
    _sync(xp)
    began = time.perf_counter()
    label_bits = uniform(xp, seed, start, count, stream=1)
    labels = (label_bits * classes).astype(xp.int64)
    coords = xp.arange(size, dtype=xp.float32) / xp.float32(size)
    yy, xx = xp.meshgrid(coords, coords, indexing="ij")
    cls = xp.arange(classes, dtype=xp.float32)
    angle = (cls * xp.float32(np.pi / classes))[:, None, None]
    freq = (xp.float32(2.0) + (cls % 3))[:, None, None]
    phase = xp.float32(2 * np.pi) * freq * (xx[None] * xp.cos(angle) + yy[None] * xp.sin(angle))
    channels = xp.stack([xp.sin(phase + xp.float32(k * 2.0)) for k in range(3)], axis=1)
    noise = uniform(xp, seed, start * 3 * size * size, count * 3 * size * size, stream=2)
    noise = noise.reshape(count, 3, size, size) * xp.float32(2.0) - xp.float32(1.0)
    images = xp.float32(0.35) * channels[labels] + xp.float32(0.65) * noise
    images = xp.ascontiguousarray(images, dtype=xp.float32)
    _sync(xp)
    return Batch(images, labels, "cupy" if xp is not np else "numpy", time.perf_counter() - began)
