"""Every file that declares an image's Python stack, read together and rewritten together.

An image's stack is declared in its requirements file and every file that one includes (``-r``,
``-c``, followed relative to the including file, inside the repository), in a uv
``pyproject.toml`` (``images[].pyproject``, or the one beside the requirements file), and in its
Dockerfile's ``pip install`` lines. ``read_stack`` gives the planner (and the advisories) every
pin of all of them; ``edit_stack`` applies a plan's ``RequirementChanges`` to each file where
the pin is declared. Paths are POSIX paths relative to the repository root."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tasks.update import reqfile
from tasks.update.pyproject import edit_pyproject, read_pyproject
from tasks.update.requirements import (
    DEFAULT_INDEX,
    CurrentPins,
    HashSource,
    RequirementChanges,
    RequirementsError,
    edit_requirements,
    index_urls,
    read_requirements,
)

Reader = Callable[[str], str | None]
PYPROJECT = "pyproject.toml"


@dataclass(frozen=True)
class StackFiles:
    """The files an image's stack is declared in, and what they pin together."""

    requirements: tuple[str, ...] = ()  # the requirements file first, then what it includes
    pyproject: str | None = None
    pins: CurrentPins = field(default_factory=CurrentPins)
    per_file: tuple[tuple[str, CurrentPins], ...] = ()  # each file's own pins, in reading order
    notes: tuple[str, ...] = ()  # includes not followed, and why

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.requirements, *((self.pyproject,) if self.pyproject else ()))

    def pinned(self) -> list[tuple[str, str, str]]:
        """(file, package, version) of every ``==`` pin in every file (for the advisories)."""
        return [(path, name, version) for path, pins in self.per_file for name, version in pins.pins.items()]


def file_reader(root: Path | None = None) -> Reader:
    """Read POSIX paths (relative to `root`, or absolute) as UTF-8; None for a missing file; a
    file that cannot be read or decoded is a RequirementsError naming it (and the byte offset)."""

    def read(rel: str) -> str | None:
        path = Path(rel) if root is None or rel.startswith("/") else root / rel
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RequirementsError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequirementsError(
                f"{path}: not UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 1]!r}); save it as UTF-8"
            ) from exc

    return read


def split_paths(requirements: str | None, pyproject: str | None) -> tuple[str | None, str | None]:
    """An image whose only stack file is a pyproject.toml may name it as its requirements."""
    if requirements and requirements.endswith(".toml"):
        return None, pyproject or requirements
    return requirements, pyproject


def _include_path(including: str, written: str) -> str | None:
    """The repository path of an include, or None when it is not a file in the repository
    (an absolute path names a file inside the image; a URL or ``${VAR}`` is not followed)."""
    if not written or written.startswith("/") or "://" in written or "$" in written:
        return None
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(including), written))
    if including.startswith("/"):
        return resolved
    return None if resolved == ".." or resolved.startswith("../") else resolved


def requirement_tree(read: Reader, requirements: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(path, text) of the requirements file and everything it includes, depth first in the
    order pip reads them, each once; and the notes for what was not followed."""
    files: list[tuple[str, str]] = []
    notes: list[str] = []
    seen: set[str] = set()

    def visit(path: str, origin: str | None) -> None:
        if path in seen:
            return
        seen.add(path)
        text = read(path)
        if text is None:
            if origin is None:
                raise RequirementsError(f"{path}: requirements file is missing")
            notes.append(f"{origin}: includes {path}, which does not exist: not read")
            return
        files.append((path, text))
        for kind, written, line in reqfile.includes(reqfile.parse(text)):
            target = _include_path(path, written)
            where = f"{path}:{line}"
            if target is None:
                notes.append(f"{where}: the {kind} file {written!r} is not a file in the repository: not followed")
            else:
                visit(target, where)

    visit(requirements, None)
    return files, notes


def pyproject_of(read: Reader, requirements: str | None, pyproject: str | None) -> str | None:
    """The image's pyproject.toml: the one named, else the one beside its requirements file."""
    if pyproject:
        return pyproject
    if requirements:
        beside = posixpath.join(posixpath.dirname(requirements), PYPROJECT)
        if read(beside) is not None:
            return beside
    return None


def read_stack(read: Reader, requirements: str | None, pyproject: str | None = None) -> StackFiles:
    """Every pin of an image's requirements (includes included) and pyproject.toml."""
    requirements, pyproject = split_paths(requirements, pyproject)
    tree, notes = requirement_tree(read, requirements) if requirements else ([], [])
    per_file = [(path, read_requirements(text)) for path, text in tree]
    project = pyproject_of(read, requirements, pyproject)
    if project is not None:
        text = read(project)
        if text is None:
            raise RequirementsError(f"{project}: pyproject.toml is missing")
        per_file.append((project, read_pyproject(text, project)))
    pins = CurrentPins()
    for _path, found in per_file:
        pins = pins.merged(found)
    return StackFiles(tuple(p for p, _ in tree), project, pins, tuple(per_file), tuple(notes))


def _indexes(texts: list[str]) -> list[str]:
    """The indexes pip reads a requirements tree with: the last ``--index-url`` (PyPI when none,
    nothing with ``--no-index``) and every ``--extra-index-url``."""
    main: str | None = None
    extra: list[str] = []
    no_index = False
    for text in texts:
        found, more, off = index_urls(text)
        main = found or main
        extra += more
        no_index = no_index or off
    urls = ([] if no_index else [main or DEFAULT_INDEX]) + extra
    return list(dict.fromkeys(urls))


@dataclass(frozen=True)
class StackEdit:
    files: dict[str, str]  # path -> new text, only the files that change
    notes: tuple[str, ...] = ()


def edit_stack(
    read: Reader,
    requirements: str | None,
    pyproject: str | None,
    changes: RequirementChanges,
    hashes: HashSource | None = None,
) -> StackEdit:
    """`changes` applied to every stack file of an image (see the module docstring)."""
    if changes.empty:
        return StackEdit({})
    requirements, pyproject = split_paths(requirements, pyproject)
    files: dict[str, str] = {}
    notes: list[str] = []
    if requirements and read(requirements) is not None:
        tree, _not_followed = requirement_tree(read, requirements)
        first = {path: edit_requirements(text, path, changes) for path, text in tree}  # the new index URLs
        indexes = _indexes([edit.text for edit in first.values()])
        for path, text in tree:
            edit = edit_requirements(text, path, changes, hashes=hashes, indexes=indexes)
            notes.extend(edit.notes)
            if edit.text != text:
                files[path] = edit.text
    project = pyproject_of(read, requirements, pyproject)
    old = read(project) if project else None
    if project and old is not None:
        edit = edit_pyproject(old, project, changes)
        notes.extend(edit.notes)
        if edit.text != old:
            files[project] = edit.text
            lock = posixpath.join(posixpath.dirname(project), "uv.lock")
            if read(lock) is not None:
                notes.append(f"{lock} no longer matches {project}: run `uv lock` on the branch before building")
    return StackEdit(files, tuple(dict.fromkeys(notes)))


def dockerfile_changes(
    file_changes: RequirementChanges, run_changes: RequirementChanges, run_pins: CurrentPins
) -> RequirementChanges:
    """What the Dockerfile's pip lines change: the plan's decisions for those lines, and the
    requirements' index variant for a pip line that pins no torch of its own (it installs the
    requirements file's torch: ``pip install --extra-index-url .../${TORCH_CUDA} -r ml.txt``)."""
    own_torch = run_pins.wants("torch") or run_pins.wants("torchvision")
    variant, base = run_changes.variant, run_changes.index_base
    if not own_torch and file_changes.variant:
        variant, base = file_changes.variant, file_changes.index_base
    return RequirementChanges(
        variant,
        base,
        run_changes.torch,
        run_changes.torchvision,
        run_changes.cupy_package,
        run_changes.cupy_version,
        run_changes.onnxruntime_gpu,
    )
