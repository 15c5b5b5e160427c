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


def _construct(node: yaml.Node, loader: yaml.SafeLoader, path: Path_, smap: SourceMap) -> Any:
    smap.positions.setdefault(path, _mark(node))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<) the safe way
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, bool)) or key is None:
                raise smap.error(path, f"a mapping key must be a plain name, found {key!r}")
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                line, col = _mark(key_node)
                first = smap.positions.get(path + (key,), (None, None))[0]
                raise CeremonyFileError(smap.file, line, col, format_path(path + (key,)),
                                        f"duplicate key '{key}' (first set on line {first})")
            smap.positions[path + (key,)] = _mark(key_node)
            out[key] = _construct(value_node, loader, path + (key,), smap)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, loader, path + (i,), smap) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


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
        data = _construct(node, loader, (), smap)
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
