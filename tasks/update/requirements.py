"""Read what a requirements file pins, and rewrite it for a plan by exact edits: the CUDA variant
of its index URLs (``-i``, ``--index-url``, ``--extra-index-url``), torch and the paired
torchvision, CuPy (renamed across CUDA majors) and onnxruntime-gpu, each only where the plan
changes it. A pin takes the chosen version; a range moves only as far as it must to admit it
(said in the notes). A pin whose version changes gets its ``--hash`` values refreshed from the
index, or removed when the index offers none (said in the notes). Everything else (comments,
continuations, order, other pins, line endings) stays byte for byte, and the result is re-read
to prove it. The Dockerfile's ``RUN pip install`` lines are in ``tasks.update.pip_lines``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from packaging.utils import canonicalize_name

from tasks.errors import BaseImageError
from tasks.secrets import Redactor
from tasks.update import reqfile
from tasks.update.specs import SpecifierError, clauses, is_pin, pin_or_range, variant_of, with_variant

DEFAULT_INDEX = "https://pypi.org/simple"


class RequirementsError(BaseImageError):
    """A requirements file (or pip line, or pyproject.toml) cannot be rewritten as the plan asks."""


@dataclass(frozen=True)
class RequirementChanges:
    variant: str | None = None  # cu129
    index_base: str | None = None  # https://download.pytorch.org/whl/
    torch: str | None = None
    torchvision: str | None = None
    cupy_package: str | None = None
    cupy_version: str | None = None
    onnxruntime_gpu: str | None = None

    def to_json(self) -> dict[str, str]:
        """Only what changes (an empty dict: nothing)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RequirementChanges:
        data = data or {}
        return cls(**{k: (str(v) if v is not None else None) for k, v in data.items() if k in cls.__dataclass_fields__})

    @property
    def empty(self) -> bool:
        return not self.to_json()

    def target(self, name: str) -> tuple[str, str] | None:
        """(package, version) the plan wants for requirement `name` (normalised), or None."""
        if name == "torch" and self.torch:
            return name, self.torch
        if name == "torchvision" and self.torchvision:
            return name, self.torchvision
        if name.startswith("cupy-cuda") and self.cupy_package and self.cupy_version:
            return self.cupy_package, self.cupy_version
        if name == "onnxruntime-gpu" and self.onnxruntime_gpu:
            return name, self.onnxruntime_gpu
        return None


@dataclass(frozen=True)
class CurrentPins:
    """What a requirements file or a Dockerfile's ``pip install`` lines ask for."""

    index_variant: str | None = None  # cu126, from --extra-index-url .../whl/cu126
    pins: dict[str, str] = field(default_factory=dict)  # normalised name -> version as written (``==``)
    ranges: dict[str, str] = field(default_factory=dict)  # normalised name -> specifier (``>=2.4,<2.9``)

    def version(self, name: str) -> str | None:
        return self.pins.get(name)

    @property
    def cupy_package(self) -> str | None:
        names = [n for n in (*self.pins, *self.ranges) if n.startswith("cupy-cuda")]
        return names[0] if names else None

    def wants(self, name: str) -> bool:
        return name in self.pins or name in self.ranges

    def to_json(self) -> dict[str, Any]:
        return {"index_variant": self.index_variant, "pins": dict(self.pins), "ranges": dict(self.ranges)}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> CurrentPins:
        data = data or {}
        return cls(data.get("index_variant"), dict(data.get("pins") or {}), dict(data.get("ranges") or {}))

    def merged(self, other: CurrentPins) -> CurrentPins:
        """These pins, with what `other` adds (a name pinned here keeps this file's pin)."""
        pins = {**other.pins, **self.pins}
        ranges = {k: v for k, v in {**other.ranges, **self.ranges}.items() if k not in pins}
        return CurrentPins(self.index_variant or other.index_variant, pins, ranges)


def add_requirement(name: str, specifier: str, pins: dict[str, str], ranges: dict[str, str]) -> None:
    """Record one requirement: a single ``==`` (no wildcard) is a pin, any other specifier a range."""
    key = canonicalize_name(name)
    if key in pins or key in ranges or not specifier:
        return
    if is_pin(specifier) and not specifier.lstrip().startswith("==="):
        pins[key] = specifier.strip().lstrip("=").strip()
    else:
        ranges[key] = specifier.replace(" ", "")


def read_requirements(text: str) -> CurrentPins:
    """The index variant, ``==`` pins and ranges of one requirements file (its ``-r``/``-c``
    includes are read by ``tasks.update.coupled.read_stack``)."""
    variant: str | None = None
    pins: dict[str, str] = {}
    ranges: dict[str, str] = {}
    for line in reqfile.parse(text):
        for _line, option in reqfile.index_options([line]):
            variant = variant_of(option.value) or variant
        if line.parsed is not None:
            add_requirement(line.parsed.name, str(line.parsed.specifier) if line.spec_span else "", pins, ranges)
    return CurrentPins(variant, pins, ranges)


def index_urls(text: str) -> tuple[str | None, list[str], bool]:
    """(``--index-url``, ``--extra-index-url``s, ``--no-index``) of one requirements file."""
    main: str | None = None
    extra: list[str] = []
    no_index = False
    for line in reqfile.parse(text):
        for option in line.options:
            if option.name in ("-i", "--index-url"):
                main = option.value
            elif option.name == "--extra-index-url":
                extra.append(option.value)
            elif option.name == "--no-index":
                no_index = True
    return main, extra, no_index


# ---------------------------------------------------------------- hashes


@dataclass(frozen=True)
class HashAnswer:
    """The hashes an index gives for every file of one version (empty: none, and `why`)."""

    hashes: tuple[str, ...] = ()  # "sha256:<hex>", sorted
    why: str | None = None
    source: str = ""  # the index pages asked


class HashSource(Protocol):
    def hashes(self, package: str, version: str, indexes: Sequence[str], algorithms: Sequence[str]) -> HashAnswer:
        """Every file hash of `package` `version` on `indexes`, for `algorithms` (sha256...)."""
        ...


# ---------------------------------------------------------------- rewriting


@dataclass(frozen=True)
class FileEdit:
    """A file's new text and what a reviewer must know about the change (ranges, hashes)."""

    text: str
    notes: tuple[str, ...] = ()


@dataclass
class _Expect:
    name: str | None = None
    spec: str | None = None
    hashes: tuple[str, ...] | None = None
    indexes: tuple[str, ...] | None = None


def _splice(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, value in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + value + text[end:]
    return text


def rewrite_requirements(text: str, changes: RequirementChanges) -> str:
    """`text` with `changes` applied (changed pins lose their ``--hash`` values)."""
    return edit_requirements(text, "requirements.txt", changes).text


def edit_requirements(
    text: str,
    label: str,
    changes: RequirementChanges,
    *,
    hashes: HashSource | None = None,
    indexes: Sequence[str] = (),
) -> FileEdit:
    """`text` with `changes` applied (see the module docstring); `indexes` are the index URLs
    pip reads the file with (after the change), asked for the hashes of a changed pin."""
    lines = reqfile.parse(text)
    edits: list[tuple[int, int, str]] = []
    notes: list[str] = []
    expect: dict[int, _Expect] = {}
    for number, line in enumerate(lines):
        where = f"{label}:{line.number}"
        moved_index = False
        urls = []
        for option in line.options:
            if option.name in reqfile.INDEXES and changes.variant and variant_of(option.value):
                new_url = with_variant(option.value, changes.variant, changes.index_base)
                urls.append(new_url)
                if new_url != option.value:
                    span = line.physical(option.value_start, option.end)
                    if span is None:
                        raise RequirementsError(f"{where}: the index URL is split across lines; change it by hand")
                    edits.append((*span, new_url))
                    moved_index = True
            elif option.name in reqfile.INDEXES:
                urls.append(option.value)
        if moved_index:
            expect.setdefault(number, _Expect()).indexes = tuple(urls)
        if line.name is None:
            continue
        wanted = changes.target(line.name)
        if wanted is None:
            continue
        if line.parsed is not None and line.parsed.url:
            notes.append(f"{where}: {line.name} is installed from a URL here; move it to {wanted[1]} by hand")
            continue
        if line.spec_span is None:  # no version asked: only a CuPy package renames
            if line.name != wanted[0]:
                _rename(line, wanted[0], where, edits, expect.setdefault(number, _Expect()))
            continue
        _edit_line(text, line, number, where, wanted, changes, edits, notes, expect, hashes, indexes)
    new = _splice(text, edits)
    _verify(label, lines, reqfile.parse(new), expect)
    return FileEdit(new, tuple(notes))


def _rename(line: reqfile.Line, package: str, where: str, edits: list[tuple[int, int, str]], want: _Expect) -> None:
    assert line.name_span is not None
    span = line.physical(*line.name_span)
    if span is None:
        raise RequirementsError(f"{where}: the package name is split across lines; change it by hand")
    edits.append((*span, package))
    want.name = package


def _edit_line(
    text: str,
    line: reqfile.Line,
    number: int,
    where: str,
    wanted: tuple[str, str],
    changes: RequirementChanges,
    edits: list[tuple[int, int, str]],
    notes: list[str],
    expect: dict[int, _Expect],
    hashes: HashSource | None,
    indexes: Sequence[str],
) -> None:
    package, version = wanted
    assert line.spec_span is not None and line.name is not None
    old_spec = line.spec
    try:
        moved = pin_or_range(old_spec, version, changes.variant)
    except SpecifierError as exc:
        raise RequirementsError(f"{where}: {line.name}{old_spec}: {exc}") from exc
    want = expect.setdefault(number, _Expect())
    if line.name != package:
        _rename(line, package, where, edits, want)
    pinned = is_pin(old_spec)
    if not moved.changed:
        if not pinned and line.name == package:
            notes.append(f"{where}: {line.name}{old_spec} already admits {version} (the plan's choice): kept")
        return
    span = line.physical(*line.spec_span)
    if span is None:
        raise RequirementsError(f"{where}: the version specifier is split across lines; change it by hand")
    edits.append((*span, moved.text))
    want.spec = moved.text
    if not pinned:
        notes.append(
            f"{where}: {line.name}{old_spec} -> {package}{moved.text}: the range moved only as far as needed "
            f"to admit {version} (the plan's choice)"
        )
    found = line.hashes()
    if found:
        exact = clauses(moved.text)[0].version if pinned else None
        new_hashes, note = _new_hashes(package, exact, found, hashes, indexes, where)
        edits.extend(_hash_edits(text, line, found, new_hashes))
        want.hashes = new_hashes
        notes.append(note)


def _new_hashes(
    package: str,
    version: str | None,
    found: list[reqfile.Option],
    source: HashSource | None,
    indexes: Sequence[str],
    where: str,
) -> tuple[tuple[str, ...], str]:
    """The hash values for the changed pin, and the note that says where they came from."""
    shown = Redactor()
    if version is None:
        return (), (
            f"{where}: {package}: the old --hash values were removed (a range cannot be hash-checked); "
            "pin it and regenerate the hashes (pip-compile --generate-hashes) if the file must install with hashes"
        )
    algorithms = sorted({o.value.partition(":")[0] for o in found})
    answer = (
        source.hashes(package, version, list(indexes), algorithms)
        if source is not None
        else HashAnswer(why="no package index was asked (offline)")
    )
    if answer.hashes:
        return answer.hashes, shown.redact(
            f"{where}: {package}=={version}: --hash values refreshed from {answer.source} ({len(answer.hashes)} files)"
        )
    return (), shown.redact(
        f"{where}: {package}=={version}: the old --hash values were removed: {answer.why}. pip's hash-checking "
        "mode needs them for every pin: regenerate them (pip-compile --generate-hashes, or pip hash) before building"
    )


def _hash_edits(
    text: str, line: reqfile.Line, found: list[reqfile.Option], new: tuple[str, ...]
) -> list[tuple[int, int, str]]:
    """The hash options replaced by `new` (in their form, with the separator the file uses
    between them), or removed with the whitespace and continuations before each."""
    order = line.options
    starts = [line.at(o.start) for o in found]
    ends = [line.at(o.end) for o in found]

    def end_before(option: reqfile.Option) -> int:
        earlier = [line.at(o.end) for o in order[: order.index(option)]]
        return max([line.at(line.req_end), *earlier])

    if not new:
        return [(end_before(option), ends[i], "") for i, option in enumerate(found)]
    form = (
        "--hash="
        if line.text[found[0].start + len("--hash") : found[0].start + len("--hash") + 1] == "="
        else "--hash "
    )
    first, last = order.index(found[0]), order.index(found[-1])
    if any(o.name != "--hash" for o in order[first : last + 1]):  # mixed with other options: in place
        edits = [(starts[i], ends[i], f"{form}{new[i]}" if i < len(new) else "") for i in range(len(found))]
        extra = new[len(found) :]
        if extra:
            edits.append((ends[-1], ends[-1], "".join(f" {form}{h}" for h in extra)))
        return edits
    gap = text[ends[0] : starts[1]] if len(found) > 1 else text[end_before(found[0]) : starts[0]]
    if not gap.strip(" \t\\\r\n"):
        return [(starts[0], ends[-1], gap.join(f"{form}{h}" for h in new))]
    return [(starts[0], ends[-1], " ".join(f"{form}{h}" for h in new))]


def _verify(label: str, before: list[reqfile.Line], after: list[reqfile.Line], expect: dict[int, _Expect]) -> None:
    """The rewritten file reads as planned: the same lines, the planned values where edited."""
    if len(before) != len(after):
        raise RequirementsError(f"{label}: the rewrite changed the file's lines; file left as is")
    for number, (old, new) in enumerate(zip(before, after, strict=True)):
        want = expect.get(number)
        if want is None:
            if old.text != new.text:
                raise RequirementsError(f"{label}:{old.number}: the rewrite changed a line it was not meant to")
            continue
        problems = []
        if want.name is not None and new.name != canonicalize_name(want.name):
            problems.append(f"package {new.name} (wanted {want.name})")
        if want.spec is not None and new.spec != want.spec:
            problems.append(f"specifier {new.spec!r} (wanted {want.spec!r})")
        if want.hashes is not None and tuple(o.value for o in new.hashes()) != want.hashes:
            problems.append("--hash values not as planned")
        if (
            want.indexes is not None
            and tuple(o.value for o in new.options if o.name in reqfile.INDEXES) != want.indexes
        ):
            problems.append("index URL not as planned")
        if problems:
            raise RequirementsError(f"{label}:{old.number}: rewrite did not produce the plan ({'; '.join(problems)})")
