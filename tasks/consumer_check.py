"""Load an exported ONNX model in a consumer's ONNX Runtime version and compare its outputs with
the training side's reference (max |diff| <= 1e-3), in a throwaway virtual environment holding
that version (CPU provider: the CPU build of the consumer's version, which loads the same opsets
and IR versions as its GPU build). Environments are cached under the user's cache directory,
one per version and Python, so a version is installed once; one that cannot be installed here is
reported as skipped with pip's reason, never as passed."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from tasks.errors import BaseImageError
from tasks.statuses import CheckStatus

TOLERANCE = 1e-3


class RuntimeUnavailableError(BaseImageError):
    """The ONNX Runtime version could not be installed into a virtual environment here."""


@dataclass(frozen=True)
class Reference:
    """What the model must reproduce: an input batch and the training side's output for it."""

    inputs: Any  # numpy float32 array (batch, 3, H, W)
    logits: Any  # numpy float32 array (batch, classes)
    input_name: str = "images"
    output_name: str = "logits"

    @classmethod
    def from_workload(cls, reference: dict[str, Any]) -> Reference:
        """The reference a workload result carries (``onnx.reference``): the input is regenerated
        from the seed with NumPy (the same synthetic data the workload used)."""
        import numpy as np

        from tasks.workload import data

        batch = data.generate(
            np,
            int(reference["seed"]),
            int(reference["start"]),
            int(reference["count"]),
            int(reference["image_size"]),
            int(reference["classes"]),
        )
        return cls(batch.images, np.asarray(reference["logits"], dtype=np.float32))


@dataclass(frozen=True)
class ConsumerResult:
    """One consumer's check: which runtime version was checked and what happened."""

    consumer: str
    version: str
    status: CheckStatus
    message: str
    model_opset: int | None = None
    model_ir: int | None = None
    max_abs_diff: float | None = None
    seconds: float = 0.0
    providers: tuple[str, ...] | None = None  # the session's execution providers, when it ran

    def to_json(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "version": self.version,
            "status": str(self.status),
            "message": self.message,
            "model_opset": self.model_opset,
            "model_ir": self.model_ir,
            "max_abs_diff": self.max_abs_diff,
            "seconds": round(self.seconds, 2),
            **({"providers": list(self.providers)} if self.providers is not None else {}),
        }


def _run(argv: Sequence[str], timeout_s: float, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The one subprocess wrapper of this module: list argv, no shell, a timeout."""
    return subprocess.run(
        list(argv), input=stdin, capture_output=True, text=True, timeout=timeout_s, check=False, shell=False
    )


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip() and not line.startswith("WARNING:")]
    return " / ".join(kept[-lines:]) or "(no output)"


def python_tag() -> str:
    return f"py{sys.version_info.major}{sys.version_info.minor}"


def requirements_for(version: str) -> list[str]:
    """What the environment installs for `version`: the CPU package, and numpy below 2 for the
    releases built against numpy 1 (before 1.19, the first with numpy 2 support)."""
    pins = [f"onnxruntime=={version}"]
    try:
        if Version(version) < Version("1.19"):
            pins.append("numpy<2")
    except InvalidVersion as exc:
        raise RuntimeUnavailableError(f"onnxruntime {version!r} is not a version") from exc
    return pins


def runtime_env(
    version: str,
    cache_dir: Path,
    *,
    index_url: str | None = None,
    timeout_s: float = 900.0,
) -> Path:
    """The python of a virtual environment holding onnxruntime `version` (created once under
    `cache_dir`, reused afterwards); RuntimeUnavailableError with pip's words when it cannot be
    installed here. `index_url`: the package index to install from (None: pip's configuration)."""
    home = cache_dir / f"onnxruntime-{version}-{python_tag()}"
    python = home / "bin" / "python"
    marker = home / ".baseimage-complete"
    if marker.is_file():
        return python
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / f".onnxruntime-{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run building the same version: wait for it
        if marker.is_file():
            return python
        building = Path(tempfile.mkdtemp(prefix=f".build-{version}-", dir=cache_dir))
        try:
            venv.EnvBuilder(with_pip=False, clear=True, symlinks=True).create(building)
            argv = [sys.executable, "-m", "pip", "--python", str(building / "bin" / "python"), "install"]
            argv += ["--quiet", "--disable-pip-version-check", "--no-input", "--only-binary=:all:"]
            if index_url:
                argv += ["--index-url", index_url]
            try:
                done = _run([*argv, *requirements_for(version)], timeout_s)
            except subprocess.TimeoutExpired as exc:
                raise RuntimeUnavailableError(
                    f"onnxruntime {version}: pip install did not finish in {timeout_s:.0f} s"
                ) from exc
            if done.returncode != 0:
                raise RuntimeUnavailableError(
                    f"onnxruntime {version} cannot be installed here (pip exited {done.returncode}: "
                    f"{_tail(done.stderr or done.stdout)})"
                )
            (building / ".baseimage-complete").write_text(json.dumps({"onnxruntime": version}) + "\n")
            shutil.rmtree(home, ignore_errors=True)
            building.rename(home)  # the environment appears whole or not at all
        finally:
            shutil.rmtree(building, ignore_errors=True)
    # The venv's interpreter symlinks to this one; it was built at `building`, so its scripts
    # name that path, but `python -c` / `-m` need only the interpreter and site-packages.
    return python


# Runs inside the consumer's environment: load the model with the CPU provider, run the input,
# write the output; failures to load are reported as ONNX Runtime words them.
_PROBE = r"""
import json, sys
args = json.loads(sys.stdin.read())
out = {"loaded": False}
try:
    import numpy as np
    import onnxruntime as ort
    out["version"] = ort.__version__
    ort.set_default_logger_severity(3)
    session = ort.InferenceSession(args["model"], providers=["CPUExecutionProvider"])
    out["loaded"] = True
    out["providers"] = session.get_providers()
    got = session.run([args["output"]], {args["input"]: np.load(args["inputs"])})[0]
    np.save(args["result"], got)
except Exception as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def model_stamp(model: Path) -> tuple[int | None, int | None]:
    """(default-domain opset, IR version) the model is stamped with."""
    import onnx

    proto = onnx.load(str(model), load_external_data=False)
    opset = next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    return opset, int(proto.ir_version)


def _load_error(error: str, consumer: str, version: str, opset: int | None, ir: int | None) -> str:
    """ONNX Runtime's refusal, said with both sides: the model's opset/IR and the runtime's."""
    stamp = f"opset {opset}, IR {ir}"
    text = " ".join(error.split())
    for marker, what in (("official support for domain ai.onnx is till opset", "opset"), ("max supported IR", "IR")):
        if marker in text:
            limit = text.split(marker, 1)[1].strip(" :.").split()[0].rstrip(".,")
            said = text[max(text.rfind(". ", 0, text.find(marker)) + 2, text.rfind(": ", 0, text.find(marker)) + 2) :]
            return (
                f"{consumer}: onnxruntime {version} cannot load the model ({stamp}): it supports {what} up to "
                f"{limit}; export with BASEIMAGE_ONNX_OPSET at most that, or bump the consumer's onnxruntime "
                f"(onnxruntime: {said[:200]})"
            )
    return f"{consumer}: onnxruntime {version} cannot load the model ({stamp}): {text[-300:]}"


def check_model(
    model: Path,
    reference: Reference,
    consumer: str,
    version: str,
    cache_dir: Path,
    *,
    index_url: str | None = None,
    install_timeout_s: float = 900.0,
    run_timeout_s: float = 300.0,
) -> ConsumerResult:
    """Load `model` in onnxruntime `version` (its own cached environment, CPU provider) and compare
    its output on `reference.inputs` with `reference.logits`; skipped when the version cannot be
    installed here, failed when it does not load or differs by more than the tolerance."""
    import numpy as np

    began = time.monotonic()
    opset, ir = model_stamp(model)
    try:
        python = runtime_env(version, cache_dir, index_url=index_url, timeout_s=install_timeout_s)
    except RuntimeUnavailableError as exc:
        return ConsumerResult(
            consumer,
            version,
            CheckStatus.SKIPPED,
            f"skipped: {consumer}: {exc}",
            opset,
            ir,
            seconds=time.monotonic() - began,
        )
    with tempfile.TemporaryDirectory(prefix="consumer-check-") as tmp:
        inputs, result = Path(tmp) / "inputs.npy", Path(tmp) / "result.npy"
        np.save(inputs, np.ascontiguousarray(reference.inputs, dtype=np.float32))
        args = {
            "model": str(model),
            "inputs": str(inputs),
            "result": str(result),
            "input": reference.input_name,
            "output": reference.output_name,
        }
        try:
            done = _run([str(python), "-I", "-c", _PROBE], run_timeout_s, json.dumps(args))
        except subprocess.TimeoutExpired:
            return ConsumerResult(
                consumer,
                version,
                CheckStatus.FAILED,
                f"{consumer}: onnxruntime {version} did not finish the model in {run_timeout_s:.0f} s",
                opset,
                ir,
                seconds=time.monotonic() - began,
            )
        try:
            answer = json.loads(done.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            return ConsumerResult(
                consumer,
                version,
                CheckStatus.FAILED,
                f"{consumer}: onnxruntime {version} crashed (exit {done.returncode}): {_tail(done.stderr)}",
                opset,
                ir,
                seconds=time.monotonic() - began,
            )
        seconds = time.monotonic() - began
        if answer.get("version") and answer["version"] != version:
            return ConsumerResult(
                consumer,
                version,
                CheckStatus.FAILED,
                f"{consumer}: the environment for onnxruntime {version} holds {answer['version']}: remove "
                f"{python.parent.parent} and run again",
                opset,
                ir,
                seconds=seconds,
            )
        if "error" in answer:
            return ConsumerResult(
                consumer,
                version,
                CheckStatus.FAILED,
                _load_error(answer["error"], consumer, version, opset, ir),
                opset,
                ir,
                seconds=seconds,
            )
        got = np.load(result)
    expected = np.asarray(reference.logits, dtype=np.float32)
    if got.shape != expected.shape:
        return ConsumerResult(
            consumer,
            version,
            CheckStatus.FAILED,
            f"{consumer}: onnxruntime {version} gave output of shape {got.shape}, the reference is {expected.shape}",
            opset,
            ir,
            seconds=seconds,
        )
    diff = float(np.max(np.abs(got - expected)))
    stamp = f"opset {opset}, IR {ir}"
    if not diff <= TOLERANCE:  # NaN fails too
        return ConsumerResult(
            consumer,
            version,
            CheckStatus.FAILED,
            f"{consumer}: onnxruntime {version} loads the model ({stamp}) but max |diff| = {diff:.2e} > {TOLERANCE:g}",
            opset,
            ir,
            diff,
            seconds,
        )
    return ConsumerResult(
        consumer,
        version,
        CheckStatus.PASSED,
        f"{consumer}: onnxruntime {version} (CPU) loads the model ({stamp}), max |diff| = {diff:.2e} <= {TOLERANCE:g}",
        opset,
        ir,
        diff,
        seconds,
        tuple(str(p) for p in answer.get("providers", [])),
    )


def check_consumers(
    model: Path,
    reference: dict[str, Any] | None,
    consumers: Sequence[tuple[str, str]],
    cache_dir: Path,
    *,
    index_url: str | None = None,
) -> list[ConsumerResult]:
    """Each consumer (name, onnxruntime version) against `model`; without the training side's
    reference outputs every consumer is skipped, with that reason (parity cannot be shown)."""
    if not reference:
        return [
            ConsumerResult(
                name,
                version,
                CheckStatus.SKIPPED,
                f"skipped: {name}: the training job's result carries no onnx.reference (a training service "
                f"without this check's reference outputs): onnxruntime {version} was not checked",
            )
            for name, version in consumers
        ]
    ref = Reference.from_workload(reference)
    return [check_model(model, ref, name, version, cache_dir, index_url=index_url) for name, version in consumers]
