"""A ``pyproject.toml`` that declares the stack the way uv documents it, read and rewritten with
``tomlkit`` so that formatting, comments and order stay.

Read and rewritten: the requirement strings of ``[project] dependencies``,
``[project.optional-dependencies]`` and ``[dependency-groups]`` (pins take the chosen version, a
range moves only as far as needed); every ``[[tool.uv.index]]`` whose ``url`` carries a CUDA
wheel variant (``https://download.pytorch.org/whl/cu126``) moves to the plan's variant, and an
index named after its variant (``pytorch-cu126``) is renamed with it, together with the
``[tool.uv.sources]`` entries that name it (``torch = [{ index = "pytorch-cu126" }]``); the legacy
``[tool.uv] index-url``/``extra-index-url`` too. Each change replaces one string value; the
result is re-parsed and must differ from the original exactly by those values, line by line."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import tomlkit
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import String, StringType

from tasks.update.requirements import CurrentPins, FileEdit, RequirementChanges, RequirementsError, add_requirement
from tasks.update.specs import SpecifierError, is_pin, pin_or_range, variant_of, with_variant

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_SPEC = re.compile(r"\s*(?:\[[^\]]*\])?\s*\(?(?P<spec>(?:===|~=|==|!=|<=|>=|<|>)[^;()]*?)\)?\s*(?:;.*)?$")
Path_ = tuple[str | int, ...]


def _parse(text: str, label: str) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(text)
    except TOMLKitError as exc:
        raise RequirementsError(f"{label}: not valid TOML ({exc})") from exc


def _get(doc: Any, *keys: str) -> Any:
    for key in keys:
        if not hasattr(doc, "get"):
            return None
        doc = doc.get(key)
        if doc is None:
            return None
    return doc


def _requirement_lists(doc: Any) -> Iterator[tuple[Path_, Any]]:
    """(path, array) of every list of requirement strings the project declares."""
    deps = _get(doc, "project", "dependencies")
    if isinstance(deps, list):
        yield ("project", "dependencies"), deps
    for group_key in (("project", "optional-dependencies"), ("dependency-groups",)):
        groups = _get(doc, *group_key)
        if hasattr(groups, "items"):
            for name, items in groups.items():
                if isinstance(items, list):
                    yield (*group_key, name), items


def _spec_span(text: str) -> tuple[int, int] | None:
    name = _NAME.match(text)
    if name is None:
        return None
    match = _SPEC.match(text, name.end())
    if match is None:
        return None
    spec = match["spec"].rstrip()
    return match.start("spec"), match.start("spec") + len(spec)


def _indexes(doc: Any) -> list[Any]:
    found = _get(doc, "tool", "uv", "index")
    return list(found) if isinstance(found, list) else []


def _source_indexes(doc: Any, package: str) -> list[str]:
    sources = _get(doc, "tool", "uv", "sources")
    if not hasattr(sources, "items"):
        return []
    found = []
    for name, entry in sources.items():
        if canonicalize_name(str(name)) != package:
            continue
        for item in entry if isinstance(entry, list) else [entry]:
            if hasattr(item, "get") and isinstance(item.get("index"), str):
                found.append(str(item["index"]))
    return found


def read_pyproject(text: str, label: str = "pyproject.toml") -> CurrentPins:
    """The pins, ranges and PyTorch index variant a uv project declares (the variant of the
    index torch comes from, else of any index with a CUDA variant)."""
    doc = _parse(text, label)
    pins: dict[str, str] = {}
    ranges: dict[str, str] = {}
    for _path, items in _requirement_lists(doc):
        for item in items:
            if not isinstance(item, str):
                continue
            try:
                req = Requirement(str(item))
            except InvalidRequirement:
                continue
            if not req.url:
                span = _spec_span(str(item))
                add_requirement(req.name, str(item)[span[0] : span[1]] if span else "", pins, ranges)
    by_name = {str(i.get("name")): str(i.get("url")) for i in _indexes(doc) if hasattr(i, "get")}
    variant = None
    for package in ("torch", "torchvision"):
        for name in _source_indexes(doc, package):
            variant = variant or variant_of(by_name.get(name, ""))
    for url in [*by_name.values(), *_legacy_urls(doc)]:
        variant = variant or variant_of(url)
    return CurrentPins(variant, pins, ranges)


def _legacy_urls(doc: Any) -> list[str]:
    uv = _get(doc, "tool", "uv")
    found: list[str] = []
    for key in ("index-url", "extra-index-url"):
        value = _get(uv, key) if uv is not None else None
        found.extend(str(v) for v in (value if isinstance(value, list) else [value]) if isinstance(v, str))
    return found


def _like(old: Any, value: str) -> String:
    """`value` as a TOML string in the style of `old` (basic or literal, single or multi-line)."""
    kind = old.type if isinstance(old, String) else StringType.SLB
    literal = kind in (StringType.SLL, StringType.MLL) and "'" not in value
    multiline = kind in (StringType.MLB, StringType.MLL)
    return tomlkit.string(value, literal=literal, multiline=multiline)


class _Edits:
    def __init__(self) -> None:
        self.values: list[tuple[Path_, str]] = []
        self.literals: list[tuple[str, str]] = []  # (old as written, new as written)

    def set(self, container: Any, key: str | int, path: Path_, value: str) -> None:
        old = container[key]
        if str(old) == value:
            return
        new = _like(old, value)
        self.literals.append((old.as_string() if hasattr(old, "as_string") else str(old), new.as_string()))
        container[key] = new
        self.values.append((path, value))


def edit_pyproject(text: str, label: str, changes: RequirementChanges) -> FileEdit:
    """`text` with `changes` applied (see the module docstring)."""
    doc = _parse(text, label)
    before = copy.deepcopy(doc.unwrap())
    edits = _Edits()
    notes: list[str] = []
    for path, items in _requirement_lists(doc):
        for number, item in enumerate(list(items)):
            if isinstance(item, str):
                _dependency(items, number, (*path, number), str(item), label, changes, edits, notes)
    if changes.variant:
        _move_indexes(doc, label, changes, edits)
    if not edits.values:
        return FileEdit(text, tuple(notes))
    new = tomlkit.dumps(doc)
    _verify(label, text, new, before, edits)
    return FileEdit(new, tuple(notes))


def _dependency(
    items: Any,
    number: int,
    path: Path_,
    value: str,
    label: str,
    changes: RequirementChanges,
    edits: _Edits,
    notes: list[str],
) -> None:
    try:
        req = Requirement(value)
    except InvalidRequirement:
        return
    wanted = changes.target(canonicalize_name(req.name))
    if wanted is None or req.url:
        return
    package, version = wanted
    name = _NAME.match(value)
    assert name is not None
    new = package + value[name.end() :] if canonicalize_name(req.name) != package else value
    span = _spec_span(new)
    where = f"{label}: {'.'.join(map(str, path[:-1]))}"
    if span is not None:
        old_spec = new[span[0] : span[1]]
        try:
            moved = pin_or_range(old_spec, version, changes.variant)
        except SpecifierError as exc:
            raise RequirementsError(f"{where}: {value!r}: {exc}") from exc
        if moved.changed:
            new = new[: span[0]] + moved.text + new[span[1] :]
            if not is_pin(old_spec):
                notes.append(f"{where}: {value!r} -> {new!r}: the range moved only as far as needed to admit {version}")
        elif not is_pin(old_spec) and package == canonicalize_name(req.name):
            notes.append(f"{where}: {value!r} already admits {version}: kept")
    edits.set(items, number, path, new)


def _move_indexes(doc: Any, label: str, changes: RequirementChanges, edits: _Edits) -> None:
    assert changes.variant is not None
    names = {str(i.get("name")) for i in _indexes(doc) if hasattr(i, "get")}
    renamed: dict[str, str] = {}
    for number, index in enumerate(_indexes(doc)):
        url = index.get("url") if hasattr(index, "get") else None
        old_variant = variant_of(str(url)) if isinstance(url, str) else None
        if old_variant is None:
            continue
        edits.set(index, "url", ("tool", "uv", "index", number, "url"), with_variant(str(url), changes.variant))
        name = index.get("name")
        if isinstance(name, str) and old_variant in name and old_variant != changes.variant:
            new_name = str(name).replace(old_variant, changes.variant)
            if new_name in names:
                raise RequirementsError(
                    f"{label}: [[tool.uv.index]] {name} would be renamed {new_name}, which is already declared; "
                    "choose the index torch uses by hand"
                )
            edits.set(index, "name", ("tool", "uv", "index", number, "name"), new_name)
            renamed[str(name)] = new_name
    sources = _get(doc, "tool", "uv", "sources")
    if renamed and hasattr(sources, "items"):
        for package, entry in sources.items():
            items = entry if isinstance(entry, list) else [entry]
            for position, item in enumerate(items):
                old = item.get("index") if hasattr(item, "get") else None
                if isinstance(old, str) and str(old) in renamed:
                    where: Path_ = ("tool", "uv", "sources", str(package))
                    where = (*where, position, "index") if isinstance(entry, list) else (*where, "index")
                    edits.set(item, "index", where, renamed[str(old)])
    uv = _get(doc, "tool", "uv")
    for key in ("index-url", "extra-index-url"):
        value = uv.get(key) if hasattr(uv, "get") else None
        if isinstance(value, str) and variant_of(value):
            edits.set(uv, key, ("tool", "uv", key), with_variant(value, changes.variant))
        elif isinstance(value, list):
            for position, url in enumerate(value):
                if isinstance(url, str) and variant_of(url):
                    edits.set(value, position, ("tool", "uv", key, position), with_variant(url, changes.variant))


def _assign(data: Any, path: Path_, value: str) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def _verify(label: str, old: str, new: str, before: dict[str, Any], edits: _Edits) -> None:
    """The new text parses to the old data with exactly the planned values changed, and every
    line that differs differs by one planned value."""
    expected = copy.deepcopy(before)
    for path, value in edits.values:
        _assign(expected, path, value)
    if _parse(new, label).unwrap() != expected:
        raise RequirementsError(f"{label}: the rewrite did not produce the planned values; file left as is")
    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    if len(old_lines) != len(new_lines):
        raise RequirementsError(f"{label}: the rewrite changed the file's layout; file left as is")
    for number, (a, b) in enumerate(zip(old_lines, new_lines, strict=True), 1):
        if a == b:
            continue
        candidate = a
        for was, now in edits.literals:
            if was in candidate:
                candidate = candidate.replace(was, now, 1)
            if candidate == b:
                break
        if candidate != b:
            raise RequirementsError(f"{label}:{number}: the rewrite changed more than the planned values")
