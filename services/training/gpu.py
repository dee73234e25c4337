"""GPU utilisation sampled through NVML while a job trains; absent NVML is said, not hidden."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Samples:
    values: list[float] = field(default_factory=list)
    available: bool = False
    problem: str | None = None

    @property
    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None

    @property
    def peak(self) -> float | None:
        return max(self.values) if self.values else None


class UtilizationSampler:
    """``with UtilizationSampler(0.2) as s: ...`` samples GPU 0's utilisation % in a thread."""

    def __init__(self, interval_s: float = 0.2, index: int = 0) -> None:
        self.interval_s = interval_s
        self.index = index
        self.samples = Samples()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Samples:
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
        except Exception as exc:  # no driver, no GPU or no pynvml: report why
            self.samples.problem = f"NVML unavailable: {exc}"
            return self.samples
        self.samples.available = True

        def loop() -> None:
            while not self._stop.is_set():
                rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
                self.samples.values.append(float(rates.gpu))
                self._stop.wait(self.interval_s)

        self._thread = threading.Thread(target=loop, name="nvml-sampler", daemon=True)
        self._thread.start()
        return self.samples

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
