"""Train the model for a few steps on the synthetic data, then evaluate it (torch only)."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class TrainResult:
    losses: list[float]
    seconds: float
    images_per_s: float
    peak_memory_bytes: int
    peak_memory_kind: str

    @property
    def loss_fell(self) -> bool:
        window = max(1, min(5, len(self.losses) // 4))
        return sum(self.losses[-window:]) / window < sum(self.losses[:window]) / window


def to_torch(array: Any, device: str) -> Any:
    """Zero-copy from CuPy (DLPack) or NumPy into a torch tensor on `device`."""
    import torch

    if hasattr(array, "__dlpack__") and device == "cuda" and not hasattr(array, "__array_interface__"):
        return torch.utils.dlpack.from_dlpack(array)
    return torch.from_numpy(array).to(device)


def train(
    model: Any, images: Any, labels: Any, steps: int, batch_size: int, device: str, lr: float = 2e-3
) -> TrainResult:
    import torch

    model.to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    count = images.shape[0]
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    losses = []
    began = time.perf_counter()
    for step in range(steps):
        start = (step * batch_size) % count
        idx = torch.arange(start, start + batch_size, device=images.device) % count
        x, y = images[idx], labels[idx]
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - began
    if device == "cuda":
        peak, kind = int(torch.cuda.max_memory_allocated()), "cuda_max_memory_allocated"
    else:
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process_max_rss"
    return TrainResult(losses, seconds, steps * batch_size / seconds, peak, kind)


def evaluate(model: Any, images: Any, labels: Any) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        predictions = model(images).argmax(dim=1)
    return float((predictions == labels).float().mean())
