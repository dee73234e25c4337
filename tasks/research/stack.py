"""The joint choice of an image's Python stack for its CUDA base (pure: facts and the index's
answers in, choices with their reasons out): the PyTorch index variant, torch, torchvision, the
CuPy package and version, onnxruntime-gpu.

Rules (each choice says which one applied):
- torch: the newest release with a wheel for the image's Python on any variant of the target's
  CUDA major whose minor is <= the target minor (wheels bring their own CUDA runtime), within the
  file's range pin if it has one; the index variant is the highest such variant carrying it. A file
  with no PyTorch index URL (and no ``+cuXYZ`` pin) gets the package index's default build, so only
  releases whose default build is such a variant count (the facts' ``pypi`` column).
- torchvision: torch's pair.
- CuPy: the package of the target major, the newest version that supports the target minor.
- onnxruntime-gpu: the newest build for the target major on the default index; none is a
  blocking reason naming it unless ``policy.allow_missing`` lists ``onnxruntime-gpu``.
- Never downgrade: a pin at or above the choice stays; a choice below the pin is made only when
  the pin cannot run on the target, and says why.
- Several images sharing one requirements file get one choice that fits all of them (each
  image's answers intersected); different CUDA majors in one file are a conflict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from tasks.research.facts import Facts
from tasks.update.requirements import CurrentPins, RequirementChanges

COMPONENTS = ("index", "torch", "torchvision", "cupy", "onnxruntime-gpu")


def _v(text: str | None) -> Version | None:
    if text is None:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _public(text: str | None) -> str | None:
    version = _v(text)
    return version.public if version else None


def variant_minor(variant: str, major: int) -> int | None:
    """cu129 -> 9 for major 12; None when the variant is not of `major`."""
    digits = variant.removeprefix("cu")
    prefix = str(major)
    if not digits.isdigit() or not digits.startswith(prefix) or len(digits) <= len(prefix):
        return None
    return int(digits[len(prefix) :])


@dataclass(frozen=True)
class StackRequest:
    """One image's side of a stack choice: its CUDA base and what the index answered for it."""

    image: str
    cuda: str  # the base the stack is for: "12.9.1"
    python: str
    cudnn: int | None = None  # the base's cuDNN major (None: no cuDNN in the image)
    torch: dict[str, list[str]] = field(default_factory=dict)  # variant -> torch versions for `python`
    torchvision: dict[str, list[str]] | None = None  # variant -> torchvision versions (None: not asked)
    manages_torch: bool = True  # False for NGC bases: torch comes with the base

    @property
    def major(self) -> int:
        return int(self.cuda.split(".")[0])

    @property
    def minor(self) -> tuple[int, int]:
        parts = self.cuda.split(".")
        return int(parts[0]), int(parts[1])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackRequest:
        return cls(
            str(data["image"]),
            str(data["cuda"]),
            str(data["python"]),
            data.get("cudnn"),
            {k: list(v) for k, v in (data.get("torch") or {}).items()},
            {k: list(v) for k, v in data["torchvision"].items()} if data.get("torchvision") is not None else None,
            bool(data.get("manages_torch", True)),
        )


@dataclass(frozen=True)
class Choice:
    """One component's decision: `chosen` None means "no change"."""

    component: str
    current: str | None
    chosen: str | None
    reason: str
    blocking: str | None = None
    downgrade: bool = False
    accepted: bool = False  # a missing build accepted by policy.allow_missing

    @property
    def changes(self) -> bool:
        return self.chosen is not None and self.chosen != self.current

    @property
    def notable(self) -> bool:
        """Worth a line in the plan's reasons: it changes, blocks or was accepted as missing."""
        return self.changes or self.blocking is not None or self.accepted

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Stack:
    choices: tuple[Choice, ...] = ()
    conflicts: tuple[str, ...] = ()

    def get(self, component: str) -> Choice | None:
        return next((c for c in self.choices if c.component == component), None)

    @property
    def blocking(self) -> list[str]:
        return [*self.conflicts, *(c.blocking for c in self.choices if c.blocking)]

    @property
    def changed(self) -> set[str]:
        return {c.component for c in self.choices if c.changes}

    def changes(self, components: set[str] | None = None) -> RequirementChanges:
        """What a requirements file (or ``pip install`` line) must change, limited to `components`
        (torch, torchvision and the index move together)."""
        wanted = self.changed if components is None else components & self.changed
        if wanted & {"torch", "torchvision", "index"}:
            wanted |= {"torch", "torchvision", "index"} & self.changed
        torch, tv, index = self.get("torch"), self.get("torchvision"), self.get("index")
        cupy, ort = self.get("cupy"), self.get("onnxruntime-gpu")
        package = version = None
        if cupy and "cupy" in wanted and cupy.chosen:
            package, _, version = cupy.chosen.partition("==")
        moves_torch = bool(wanted & {"index", "torch", "torchvision"})
        return RequirementChanges(
            # the variant goes with torch even when it stays: a pin written 2.5.1+cu126 keeps its suffix
            variant=index.chosen if index and moves_torch else None,
            torch=_public(torch.chosen) if torch and "torch" in wanted else None,
            torchvision=_public(tv.chosen) if tv and "torchvision" in wanted else None,
            cupy_package=package,
            cupy_version=version,
            onnxruntime_gpu=ort.chosen if ort and "onnxruntime-gpu" in wanted else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {"choices": [c.to_json() for c in self.choices], "conflicts": list(self.conflicts)}


def _names(requests: Sequence[StackRequest]) -> str:
    return " and ".join(f"{r.image} (CUDA {r.cuda}, Python {r.python})" for r in requests)


def choose_torch(requests: Sequence[StackRequest], pins: CurrentPins, facts: Facts) -> list[Choice]:
    """torch, its index variant and torchvision for every request at once (see the module rules)."""
    if not pins.wants("torch") and not pins.index_variant:
        return []
    major = requests[0].major
    top = min(r.minor[1] for r in requests)
    spec_text = pins.ranges.get("torch")
    try:
        spec = SpecifierSet(spec_text) if spec_text else None
    except InvalidSpecifier:
        spec = None
    options: set[tuple[Version, int]] | None = None
    for request in requests:
        mine = set()
        for variant, versions in request.torch.items():
            minor = variant_minor(variant, major)
            if minor is None or minor > request.minor[1]:
                continue
            for text in versions:
                version = _v(text)
                if version is not None:
                    mine.add((Version(version.public), minor))
        options = mine if options is None else options & mine
    found = sorted(o for o in options or set() if spec is None or spec.contains(o[0], prereleases=False))
    current_text = pins.version("torch")
    current = _v(_public(current_text))
    where = (
        f"any CUDA {major}.x variant up to cu{major}{top} for Python "
        f"{', '.join(sorted({r.python for r in requests}))}{' within ' + spec_text if spec_text else ''}"
    )
    if not found:
        message = f"no torch wheel on {where} (asked for {_names(requests)})"
        return [Choice("torch", current_text, None, message, blocking=message)]
    uses_variant = pins.index_variant is not None or "+" in (current_text or "")
    if not uses_variant:
        # No PyTorch index URL and no local part: pip installs the package index's default build.
        newest_anywhere = max(v for v, _ in found)
        found = [(v, m) for v, m in found if _pypi_fits(facts, v, major, top)]
        where = f"{where}, as the package index's default build (the file has no PyTorch index URL)"
        if not found:
            message = f"no torch release on {where}"
            return [Choice("torch", current_text, None, message, blocking=message)]
        best = max(v for v, _ in found)
        variant = str(facts.pypi_variant(str(best)))
        if newest_anywhere > best:
            where += f"; torch {newest_anywhere} needs an --extra-index-url for its CUDA {major}.x build"
    else:
        best = max(v for v, _ in found)
        variant = f"cu{major}{max(m for v, m in found if v == best)}"
    rule = f"the newest on {where}; wheels bring their own CUDA runtime"
    chosen = f"{best}+{variant}" if "+" in (current_text or "") else str(best)
    downgrade = current is not None and best < current
    if current_text is None:
        reason = f"torch is not pinned with == ({spec_text or 'no version'}): pip takes {best} from {variant}, {rule}"
        torch = Choice("torch", None, None, reason)
    elif downgrade:
        reason = f"torch goes down from {current_text} to {chosen}: {current_text} has no wheel on {where}"
        torch = Choice("torch", current_text, chosen, reason, downgrade=True)
    elif current == best:
        torch = Choice("torch", current_text, chosen, f"torch {best} stays ({rule})")
    else:
        torch = Choice("torch", current_text, chosen, f"torch {best} from {variant}: {rule}")
    index = Choice(
        "index",
        pins.index_variant,
        variant if uses_variant else None,
        f"index {variant}: the variant that carries torch {best}",
    )
    choices = [index, torch]
    if pins.version("torchvision"):
        choices.append(_torchvision(requests, pins, facts, str(best), variant))
    return choices


def _pypi_fits(facts: Facts, version: Version, major: int, top: int) -> bool:
    variant = facts.pypi_variant(str(version))
    minor = variant_minor(variant, major) if variant else None
    return minor is not None and minor <= top


def _torchvision(requests: Sequence[StackRequest], pins: CurrentPins, facts: Facts, torch: str, variant: str) -> Choice:
    current = pins.version("torchvision")
    pair = facts.torchvision_for(torch)
    if pair is None:
        message = f"no torchvision pair known for torch {torch}"
        return Choice("torchvision", current, None, message, blocking=message)
    missing = [r for r in requests if r.torchvision is not None and pair not in (r.torchvision.get(variant) or [])]
    if missing:
        who = _names(missing)
        message = f"torchvision {pair} (the pair of torch {torch}) has no wheel on {variant} for {who}"
        return Choice("torchvision", current, None, message, blocking=message)
    chosen = f"{pair}+{variant}" if "+" in (current or "") else pair
    if current == chosen:
        return Choice("torchvision", current, current, f"torchvision {pair} stays: the pair of torch {torch}")
    old = _v(_public(current))
    return Choice(
        "torchvision",
        current,
        chosen,
        f"torchvision {pair}: the pair of torch {torch}",
        downgrade=old is not None and Version(pair) < old,
    )


def choose_cupy(
    requests: Sequence[StackRequest], pins: CurrentPins, facts: Facts, allow_missing: frozenset[str] = frozenset()
) -> Choice | None:
    """The CuPy package of the target major and the newest version supporting every target minor."""
    current_package = pins.cupy_package
    if current_package is None:
        return None
    current_version = pins.version(current_package)
    current = f"{current_package}=={current_version}" if current_version else current_package
    major = requests[0].major
    minors = sorted({r.minor for r in requests})
    package = facts.cupy_packages.get(major)
    shown = ", ".join(f"{a}.{b}" for a, b in minors)
    versions = facts.cupy_versions(minors) if package else []
    if package is None or not versions:
        message = (
            f"no CuPy package for CUDA {major}.x in the facts (as of {facts.sources['cupy'][1]})"
            if package is None
            else f"no CuPy release in the facts (as of {facts.sources['cupy'][1]}) supports CUDA {shown}"
        )
        if "cupy" in allow_missing:
            return Choice(
                "cupy", current, None, f"{message}; accepted by policy.allow_missing: {current} stays", accepted=True
            )
        return Choice(
            "cupy", current, None, message, blocking=f"{message}: resolve it or add cupy to policy.allow_missing"
        )
    best = versions[0]
    have = _v(current_version)
    if package == current_package and have is not None and have >= Version(best):
        known = [r for r in facts.cupy_releases if Version(r.version) == have]
        why = (
            f"{current} stays: it supports CUDA {shown}"
            if known
            else f"{current} stays: newer than the facts know (newest {best}, as of {facts.sources['cupy'][1]}); "
            f"check that it supports CUDA {shown}"
        )
        return Choice("cupy", current, current, why)
    if package != current_package:
        reason = (
            f"{current_package} -> {package}=={best}: CuPy ships one package per CUDA major; "
            f"{best} is the newest that supports CUDA {shown}"
        )
    else:
        reason = f"{package}=={best}: the newest CuPy that supports CUDA {shown}"
    return Choice("cupy", current, f"{package}=={best}", reason)


def choose_onnxruntime(
    requests: Sequence[StackRequest], pins: CurrentPins, facts: Facts, allow_missing: frozenset[str]
) -> Choice | None:
    """The newest onnxruntime-gpu built for the target CUDA major (see the module rules)."""
    if not pins.wants("onnxruntime-gpu"):
        return None
    current = pins.version("onnxruntime-gpu")
    major = requests[0].major
    as_of = facts.sources["onnxruntime"][1]
    newest_row = max(facts.ort_releases, key=lambda r: Version(r.version)) if facts.ort_releases else None
    build = facts.ort_build(current) if current else None
    assumed = ""
    if build is None and current and newest_row and (_v(current) or Version("0")) > Version(newest_row.version):
        build, assumed = newest_row, f" (assumed: newer than every release the facts know, like {newest_row.version})"
    newest = facts.ort_for(major)
    label = f"onnxruntime-gpu {current}" if current else "onnxruntime-gpu"
    built = f"a CUDA {build.cuda} build{assumed}" if build else "a build the facts do not know"
    if newest is None:
        message = (
            f"{label} is {built} and the default index has no onnxruntime-gpu build for CUDA {major} "
            f"(facts as of {as_of})"
        )
        if build is not None and build.cuda == major:
            return Choice("onnxruntime-gpu", current, current, f"{label} stays: it is a CUDA {major} build")
        if "onnxruntime-gpu" in allow_missing:
            return Choice(
                "onnxruntime-gpu",
                current,
                None,
                f"{message}; accepted by policy.allow_missing: the pin stays and its CUDA provider will not load",
                accepted=True,
            )
        return Choice(
            "onnxruntime-gpu",
            current,
            None,
            message,
            blocking=f"{message}: resolve it (another build or feed) or add onnxruntime-gpu to policy.allow_missing",
        )
    have = _v(current)
    if build is not None and build.cuda == major and have is not None and have >= Version(newest):
        return Choice("onnxruntime-gpu", current, current, f"{label} stays: a CUDA {major} build{assumed}")
    if build is None and have is not None and have < Version(newest):
        reason = f"onnxruntime-gpu {newest}: the newest CUDA {major} build on the default index ({label} is unknown)"
        return Choice("onnxruntime-gpu", current, newest, reason)
    if build is not None and build.cuda != major:
        down = have is not None and have > Version(newest)
        verb = "goes down" if down else "moves"
        reason = (
            f"onnxruntime-gpu {verb} {current} -> {newest}: {current} is {built}; {newest} is the newest CUDA "
            f"{major} build on the default index"
        )
        return Choice("onnxruntime-gpu", current, newest, reason, downgrade=down)
    return Choice(
        "onnxruntime-gpu",
        current,
        newest,
        f"onnxruntime-gpu {newest}: the newest CUDA {major} build on the default index",
    )


def choose_stack(
    requests: Sequence[StackRequest],
    pins: CurrentPins,
    facts: Facts,
    allow_missing: frozenset[str] = frozenset(),
) -> Stack:
    """Every component for `requests` (one image, or every image that shares the pinned file)."""
    if not requests:
        return Stack()
    majors = sorted({r.major for r in requests})
    if len(majors) > 1:
        conflict = (
            f"{_names(requests)} share one pinned file but need CUDA majors {' and '.join(map(str, majors))}: "
            f"one file cannot pin {' and '.join(str(facts.cupy_packages.get(m, f'CUDA {m}')) for m in majors)} or "
            "torch variants of two majors; give each image its own requirements file or keep them on one major"
        )
        return Stack(conflicts=(conflict,))
    choices: list[Choice] = []
    if all(r.manages_torch for r in requests):
        choices += choose_torch(requests, pins, facts)
    cupy = choose_cupy(requests, pins, facts, allow_missing)
    ort = choose_onnxruntime(requests, pins, facts, allow_missing)
    choices += [c for c in (cupy, ort) if c is not None]
    return Stack(tuple(choices))
