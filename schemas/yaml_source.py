"""Read a ceremony file strictly: safe YAML, one document, no duplicate keys, positions kept.

`read_yaml(path)` returns the plain data (dicts, lists, scalars) and a `SourceMap` that
gives the line and column of every key and value by its field path, so later validation
errors can name `file:line:col field.path`.

Only PyYAML's SafeLoader resolvers and constructors are used: no tags that build Python
objects are accepted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pki_ceremony.errors import CeremonyFileError

Path_ = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Positions (1-based line, column) of fields in one ceremony file."""

    file: str
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path_) -> tuple[int | None, int | None]:
        """The position of `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (None, None))

    def error(self, path: Path_, message: str, *, hint: str | None = None) -> CeremonyFileError:
        line, col = self.locate(path)
        return CeremonyFileError(self.file, line, col, format_path(path), message, hint=hint)


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_NODES = 20_000  # a ceremony file is small; this stops alias expansion ("billion laughs")


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, smap: SourceMap):
        self.loader, self.smap, self.count, self.stack = loader, smap, 0, set()

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.smap.error(path, f"the file expands to more than {MAX_NODES} values (aliases?)")
        if id(node) in self.stack:  # the alias points back into itself; name where it is used
            raise self.smap.error(path, "an alias refers to the mapping or list that contains it")
        self.smap.positions.setdefault(path, _mark(node))
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
            line, col = _mark(node)
            raise CeremonyFileError(self.smap.file, line, col, format_path(path),
                                    f"YAML tag {node.tag} is not allowed in a ceremony file")
        self.stack.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
            return self.loader.construct_object(node, deep=True)
        finally:
            self.stack.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict:
        explicit = {id(k) for k, _ in node.value if k.tag != _MERGE_TAG}
        self.loader.flatten_mapping(node)  # YAML merge keys (<<): merged entries first, explicit ones win
        out: dict[Any, Any] = {}
        from_file: set[str] = set()
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, bool)) or key is None:
                raise self.smap.error(path, f"a mapping key must be a plain name, found {key!r}")
            key = str(key) if not isinstance(key, str) else key
            is_explicit = id(key_node) in explicit
            if key in from_file and is_explicit:
                line, col = _mark(key_node)
                first = self.smap.positions.get(path + (key,), (None, None))[0]
                raise CeremonyFileError(self.smap.file, line, col, format_path(path + (key,)),
                                        f"duplicate key '{key}' (first set on line {first})")
            if is_explicit:
                from_file.add(key)
                self.smap.positions[path + (key,)] = _mark(key_node)
            else:
                self.smap.positions.setdefault(path + (key,), _mark(key_node))
            out[key] = self.build(value_node, path + (key,))
        return out


def read_yaml(path: str | Path, display_name: str | None = None) -> tuple[Any, SourceMap]:
    """Parse one YAML document from `path` safely, keeping positions. Raises CeremonyFileError."""
    name = display_name or str(path)
    smap = SourceMap(name)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CeremonyFileError(name, None, None, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CeremonyFileError(name, None, None, "", f"cannot read the file: {exc}") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise CeremonyFileError(name, 1, 1, "", "the file is empty: expected a ceremony mapping "
                                    "(apiVersion, kind, metadata, hsms, hierarchy)")
        data = _Builder(loader, smap).build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise CeremonyFileError(name, line, col, "", f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise CeremonyFileError(name, None, None, "", f"YAML error: {exc}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        line, col = _mark(node)
        raise CeremonyFileError(name, line, col, "", f"the top level must be a mapping, found a "
                                f"{type(data).__name__}")
    return data, smap
