"""The validation checks (the policy's testing phase), pure of Prefect: GPU detection with
nvidia-smi, service health, the sample training job through the API, the exported ONNX model,
GPU utilisation, and the deprecation banner in start-up logs."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tasks.containers import ensure_running, log_tail
from tasks.errors import HealthCheckError, ModelCheckError, TrainingJobError
from tasks.statuses import CheckStatus, parse

SKIPPED_NO_GPU = "skipped: no GPU"
GPU_CHECKS = ("gpu-detect", "gpu-utilization")


@dataclass
class CheckResult:
    name: str
    status: CheckStatus
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class CheckOutcome:
    """One check as a report carries it: its name, status and what it found."""

    name: str
    status: CheckStatus
    message: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "status": str(self.status), "message": self.message}


@dataclass(frozen=True)
class ValidationReport:
    """What validation proved, for every place that reports it (the migration's outcome, the
    production approval, the PR, the history): which checks passed, failed and were skipped."""

    candidates: tuple[str, ...]
    checks: tuple[CheckOutcome, ...]
    mode: str = "subflow"  # subflow | deployment (the gpu pool) | skip
    report_files: tuple[str, ...] = ()

    def named(self, status: CheckStatus) -> list[str]:
        return [c.name for c in self.checks if c.status == status]

    def by_status(self) -> dict[str, list[str]]:
        """``{"passed": [...], "failed": [...], "skipped": [...]}``: the check names of each status."""
        return {status.value: self.named(status) for status in CheckStatus}

    @property
    def ok(self) -> bool:
        """No check failed (and, unless validation was skipped on purpose, some check ran)."""
        return not self.named(CheckStatus.FAILED) and (bool(self.checks) or self.mode == "skip")

    @property
    def skipped_gpu(self) -> list[str]:
        """GPU checks that did not run (no GPU, or validation skipped altogether)."""
        ran = {c.name for c in self.checks if c.status != CheckStatus.SKIPPED}
        return [name for name in GPU_CHECKS if name not in ran]

    @property
    def proven_on_gpu(self) -> bool:
        return self.ok and not self.skipped_gpu

    def counts(self) -> str:
        """``5 passed, 2 skipped: no GPU (gpu-detect, gpu-utilization)``."""
        if self.mode == "skip":
            return "0 checks (--validation skip): nothing was built or run, no GPU check"
        parts = [f"{len(self.named(s))} {s}" for s in CheckStatus if self.named(s)]
        text = ", ".join(parts) or "no checks"
        if self.named(CheckStatus.FAILED):
            text += f" (failed: {', '.join(self.named(CheckStatus.FAILED))})"
        skipped = self.named(CheckStatus.SKIPPED)
        if skipped:
            no_gpu = all(c.message.startswith(SKIPPED_NO_GPU) for c in self.checks if c.status == CheckStatus.SKIPPED)
            why = "no GPU" if no_gpu else "see the report"
            text += f": {why} ({', '.join(skipped)})"
        return text

    def line(self) -> str:
        where = {"deployment": " on the gpu pool", "subflow": "", "skip": ""}.get(self.mode, "")
        verdict = "skipped" if self.mode == "skip" else "passed" if self.ok else "FAILED"
        return f"validation {verdict}{where}: {self.counts()}"

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "candidates": list(self.candidates),
            "ok": self.ok,
            "proven_on_gpu": self.proven_on_gpu,
            **self.by_status(),
            "summary": self.line(),
            "checks": [c.to_json() for c in self.checks],
            "reports": list(self.report_files),
        }

    @classmethod
    def from_summaries(cls, summaries: list[dict[str, Any]], mode: str) -> ValidationReport:
        """From the validate flow's summaries (one per candidate Dockerfile)."""
        checks = [
            CheckOutcome(str(c["name"]), parse(CheckStatus, c["status"], f"check {c['name']}"), str(c["message"]))
            for summary in summaries
            for c in summary.get("checks", [])
        ]
        return cls(
            tuple(str(s.get("candidate", "?")) for s in summaries),
            tuple(checks),
            mode,
            tuple(str(s["report"]) for s in summaries if s.get("report")),
        )

    @classmethod
    def skipped(cls) -> ValidationReport:
        return cls((), (), "skip")


# ---------------------------------------------------------------- nvidia-smi


@dataclass(frozen=True)
class GpuReport:
    driver_version: str
    cuda_version: str
    gpus: list[str]


_SMI_HEADER = re.compile(r"Driver Version:\s*([\d.]+)\s+CUDA Version:\s*([\d.]+)")
_SMI_GPU = re.compile(r"^\|\s+(\d+)\s+(.+?)\s+(?:On|Off)\s+\|")


def parse_nvidia_smi(text: str) -> GpuReport:
    """Driver, CUDA version and GPU names from ``nvidia-smi``'s default table."""
    header = _SMI_HEADER.search(text)
    if header is None:
        raise ValueError(f"nvidia-smi output has no 'Driver Version ... CUDA Version' line: {text[:200]!r}")
    gpus = [m[2].strip() for line in text.splitlines() if (m := _SMI_GPU.match(line))]
    return GpuReport(header[1], header[2], gpus)


# ---------------------------------------------------------------- service


def wait_healthy(
    base_url: str,
    deadline_s: float,
    containers: list[Any],
    interval_s: float = 0.5,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Poll ``/health`` under `base_url` until 200; see `wait_health_url`."""
    return wait_health_url(f"{base_url}/health", deadline_s, containers, interval_s, session)


def wait_health_url(
    url: str,
    deadline_s: float,
    containers: list[Any],
    interval_s: float = 0.5,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Poll `url` until 200; a container that exits or restarts fails at once."""
    http = session or requests.Session()
    deadline = time.monotonic() + deadline_s
    last = "no answer yet"
    while True:
        for container in containers:
            ensure_running(container)
        try:
            response = http.get(url, timeout=5)
            if response.status_code == 200:
                try:
                    return dict(response.json())
                except ValueError:
                    return {"body": response.text[:200]}
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        except requests.RequestException as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise HealthCheckError(f"{url} not healthy within {deadline_s:g} s; last answer: {last}")
        time.sleep(interval_s)


def run_training(
    base_url: str, steps: int, timeout_s: float, containers: list[Any], interval_s: float = 0.5
) -> dict[str, Any]:
    """POST ``/train`` and wait for the job; returns the job body (state SUCCESS)."""
    response = requests.post(f"{base_url}/train", json={"steps": steps}, timeout=30)
    if response.status_code not in (200, 202):
        raise TrainingJobError(f"POST {base_url}/train: HTTP {response.status_code}: {response.text[:300]}")
    job_id = str(response.json()["job_id"])
    deadline = time.monotonic() + timeout_s
    state = "PENDING"
    while time.monotonic() < deadline:
        for container in containers:
            ensure_running(container)
        body: dict[str, Any] = requests.get(f"{base_url}/jobs/{job_id}", timeout=30).json()
        state = body.get("state", "?")
        if state == "SUCCESS":
            return body
        if state == "FAILURE":
            raise TrainingJobError(f"training job {job_id} failed: {body.get('error', 'no error given')}")
        time.sleep(interval_s)
    raise TrainingJobError(f"training job {job_id} still {state} after {timeout_s:g} s")


def verify_model(base_url: str, job: dict[str, Any], dest: Path) -> dict[str, Any]:
    """Fetch the job's ONNX model, run ``onnx.checker`` and an ONNX Runtime session on it."""
    import numpy as np
    import onnx
    import onnxruntime

    url = f"{base_url}{job.get('model_url') or '/models/' + str(job['job_id']) + '.onnx'}"
    response = requests.get(url, timeout=60)
    if response.status_code != 200:
        raise ModelCheckError(f"GET {url}: HTTP {response.status_code}")
    dest.write_bytes(response.content)
    try:
        onnx.checker.check_model(str(dest))
        session = onnxruntime.InferenceSession(str(dest), providers=["CPUExecutionProvider"])
        feed = {}
        for item in session.get_inputs():
            shape = [2 if not isinstance(d, int) else d for d in item.shape]
            feed[item.name] = np.zeros(shape, dtype=np.float32)
        outputs = session.run(None, feed)
    except Exception as exc:  # onnx and ORT raise their own types; all mean "invalid model"
        raise ModelCheckError(f"{url}: not a valid ONNX model: {exc}") from exc
    return {
        "bytes": len(response.content),
        "inputs": list(feed),
        "output_shapes": [list(o.shape) for o in outputs],
    }


def gpu_utilization(job: dict[str, Any], threshold_percent: float) -> CheckResult:
    util = (job.get("result") or {}).get("gpu_utilization") or {}
    peak = util.get("peak_percent")
    if not util.get("available") or peak is None:
        return CheckResult(
            "gpu-utilization",
            CheckStatus.FAILED,
            f"no GPU utilisation samples from the worker: {util.get('problem') or 'none reported'}",
            util,
        )
    ok = float(peak) >= threshold_percent
    return CheckResult(
        "gpu-utilization",
        CheckStatus.PASSED if ok else CheckStatus.FAILED,
        f"peak {peak:.0f}% (mean {util.get('mean_percent') or 0:.0f}%) vs threshold {threshold_percent:g}%",
        util,
    )


def logs_of(containers: list[Any]) -> str:
    return "\n".join("\n".join(log_tail(c, 400)) for c in containers)
