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
    counters = xp.arange(start, start + count, dtype=xp.uint64) + xp.uint64(_base(seed, stream))
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


def _base(seed: int, stream: int) -> int:
    return (seed * 0x100000001B3 + stream * 0x1000193) & 0xFFFFFFFFFFFFFFFF


# One pass over the output on the GPU: the same integer hash and float32 arithmetic as the
# NumPy expression in generate(), fused, so generation runs near memory speed instead of
# launching a kernel (and allocating a temporary array) per operation.
_FUSED = r"""
unsigned long long e = i;
unsigned long long per_sample = 3ULL * size * size;
unsigned long long sample = e / per_sample;
unsigned long long rem = e % per_sample;
int k = (int)(rem / (size * size));
int y = (int)((rem / size) % size);
int x = (int)(rem % size);
float u_label = (float)(mix(mix(start + sample + base1)) >> 40) * (1.0f / 16777216.0f);
float cls = (float)(long long)(u_label * (float)classes);
float u_noise = (float)(mix(mix(start * per_sample + e + base2)) >> 40) * (1.0f / 16777216.0f);
float noise = u_noise * 2.0f - 1.0f;
float angle = cls * angle_step;
float freq = 2.0f + fmodf(cls, 3.0f);
float cx = (float)x / (float)size;
float cy = (float)y / (float)size;
float phase = (two_pi * freq) * (cx * cosf(angle) + cy * sinf(angle));
float channel = sinf(phase + (float)(k * 2.0));
out = 0.35f * channel + 0.65f * noise;
"""
_PREAMBLE = r"""
__device__ unsigned long long mix(unsigned long long x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}
"""
_kernel_cache: dict[str, Any] = {}


def _cupy_images(cp: Any, seed: int, start: int, count: int, size: int, classes: int) -> Any:
    kernel = _kernel_cache.get("images")
    if kernel is None:
        kernel = _kernel_cache["images"] = cp.ElementwiseKernel(
            "uint64 start, uint64 base1, uint64 base2, int32 size, int32 classes, float32 angle_step, float32 two_pi",
            "float32 out",
            _FUSED,
            "baseimage_synthetic_images",
            preamble=_PREAMBLE,
        )
    out = cp.empty((count, 3, size, size), dtype=cp.float32)
    kernel(
        cp.uint64(start),
        cp.uint64(_base(seed, 1)),
        cp.uint64(_base(seed, 2)),
        cp.int32(size),
        cp.int32(classes),
        cp.float32(np.pi / classes),
        cp.float32(2 * np.pi),
        out,
    )
    return out


def generate(xp: Any, seed: int, start: int, count: int, size: int = 32, classes: int = 10) -> Batch:
    """Samples start..start+count of the dataset for `seed` (disjoint ranges never overlap)."""
    _sync(xp)
    began = time.perf_counter()
    label_bits = uniform(xp, seed, start, count, stream=1)
    labels = (label_bits * classes).astype(xp.int64)
    if xp is not np:
        images = _cupy_images(xp, seed, start, count, size, classes)
        _sync(xp)
        return Batch(images, labels, "cupy", time.perf_counter() - began)
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
    return Batch(images, labels, "numpy", time.perf_counter() - began)
