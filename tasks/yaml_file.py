"""A YAML file read the way a policy file must be: bounded (size, nesting, values once aliases are
expanded, a regular file only), decoded as UTF-8 with the byte offset of a bad byte, parsed with
PyYAML's safe loader, and kept as a node tree so a later error can name the line of any key
(`line_of`). Every problem is a ConfigError naming the file (and line where there is one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tasks.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20  # a policy file is a few kilobytes
MAX_YAML_DEPTH = 50  # the schema nests 5 levels; this is far above, and far below the recursion limit
MAX_YAML_NODES = 100_000  # counted with aliases expanded (no "billion laughs")


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a bound on nesting: its composer recurses once per level."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.MarkedYAMLError(problem=f"nested deeper than {MAX_YAML_DEPTH} levels", problem_mark=mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _expanded_size(root: yaml.Node) -> int:
    """Nodes in the document with every alias expanded; a recursive alias is an error."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    on_path: set[int] = set()
    while stack:
        node, done = stack.pop()
        if done:
            on_path.discard(id(node))
            children = _children(node)
            sizes[id(node)] = min(MAX_YAML_NODES + 1, 1 + sum(sizes[id(c)] for c in children))
            continue
        if id(node) in sizes:
            continue
        if id(node) in on_path:
            raise yaml.MarkedYAMLError(problem="an alias refers to itself", problem_mark=node.start_mark)
        on_path.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _read_text(path: Path) -> str:
    """The file as UTF-8 text; not a regular file, too large, or not UTF-8: a ConfigError."""
    try:
        if path.exists() and not path.is_file():  # a FIFO would block, a device never end
            what = "it is a directory" if path.is_dir() else "not a regular file"
            raise ConfigError(f"{path}: cannot read config: {what}; pass --config FILE")
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}; pass --config FILE") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config is larger than {MAX_CONFIG_BYTES // 1024} KiB; is it the policy file?")
    bom = b"\xef\xbb\xbf" if data.startswith(b"\xef\xbb\xbf") else b""
    try:
        return data[len(bom) :].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = len(bom) + exc.start
        raise ConfigError(
            f"{path}: not UTF-8 text: byte 0x{data[offset]:02x} at offset {offset} cannot be decoded; "
            "save the file as UTF-8"
        ) from exc


def _parse(path: Path, text: str) -> tuple[Any, yaml.Node | None]:
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # its reader refuses control characters at once
        tree = loader.get_single_node()
        if tree is not None and _expanded_size(tree) > MAX_YAML_NODES:
            raise yaml.MarkedYAMLError(
                problem=f"more than {MAX_YAML_NODES} values once aliases are expanded", problem_mark=tree.start_mark
            )
        data = loader.construct_document(tree) if tree is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    except (ValueError, OverflowError, RecursionError, TypeError, AttributeError, KeyError, IndexError) as exc:
        # PyYAML's constructors raise these for values like `2024-02-30` or an empty `!!timestamp`
        raise ConfigError(f"{path}: not valid YAML: {type(exc).__name__}: {str(exc)[:200]}") from exc
    finally:
        if loader is not None:
            loader.dispose()
    return data, tree


def read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """The file's data and its node tree (None for an empty document)."""
    return _parse(path, _read_text(path))


def line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the YAML node at `loc`, as deep as the path exists."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
