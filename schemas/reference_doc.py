"""Render the ceremony file reference (docs/ceremony-file.md) from the exported JSON Schema.

    python -m pki_ceremony.schemas.reference_doc          # rewrite docs/ceremony-file.md
    python -m pki_ceremony.schemas.reference_doc --check  # exit 1 if it is out of date
    python -m pki_ceremony.schemas.reference_doc --output PATH   # write elsewhere (e.g. installed)

The tables are generated: `render()` walks `ceremony.schema.json` (itself exported from the
pydantic models by `export.py`) from the top-level properties through every `$ref`, and makes
one table per object (field, type, required, default, description) and one list per enum.
The prose around them (an annotated example on top, the validation rules at the bottom) is
written by hand in `templates/ceremony-file.md.j2`. The chain is: models -> `export` ->
ceremony.schema.json -> `reference_doc` -> docs/ceremony-file.md; each link has a `--check`.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

HERE = Path(__file__).resolve().parent
SCHEMA_PATH = HERE / "ceremony.schema.json"
TEMPLATE_DIR = HERE / "templates"  # loaded relative to this file (see pyproject package-data)
TEMPLATE_NAME = "ceremony-file.md.j2"
DEFAULT_OUTPUT = HERE.parent / "docs" / "ceremony-file.md"  # the source checkout's docs/
REF_PREFIX = "#/$defs/"
MAX_DEPTH = 12


@dataclass
class Row:
    field: str
    type: str
    required: bool
    default: str
    description: str


@dataclass
class ObjectDoc:
    name: str
    anchor: str
    description: str
    paths: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


@dataclass
class EnumDoc:
    name: str
    anchor: str
    description: str
    values: list[str]
    paths: list[str] = field(default_factory=list)


def anchor(name: str) -> str:
    """The anchor GitHub and most Markdown renderers give a heading that is a plain word."""
    return name.lower()


def _cell(text: str) -> str:
    """Text for one Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _ref_name(schema: dict) -> str | None:
    ref = schema.get("$ref")
    return ref[len(REF_PREFIX):] if isinstance(ref, str) and ref.startswith(REF_PREFIX) else None


def _non_null(schema: dict) -> list[dict]:
    """The alternatives of an `anyOf` other than `null` (pydantic's `X | None`), or the schema itself."""
    if "anyOf" in schema:
        return [s for s in schema["anyOf"] if s.get("type") != "null"]
    return [schema]


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


class _Walker:
    """Walks the schema from the top, collecting every object and enum with where it is used."""

    def __init__(self, schema: dict):
        self.schema = schema
        self.defs: dict[str, dict] = schema.get("$defs", {})
        self.objects: dict[str, ObjectDoc] = {}
        self.enums: dict[str, EnumDoc] = {}

    # -- types --------------------------------------------------------------------------
    def _link(self, name: str) -> str:
        return f"[{name}](#{anchor(name)})"

    def type_of(self, schema: dict) -> str:
        alternatives = _non_null(schema)
        if len(alternatives) != 1:
            return " or ".join(self.type_of(s) for s in alternatives)
        s = alternatives[0]
        ref = _ref_name(s)
        if ref is not None:
            return self._link(ref)
        if "oneOf" in s:
            tags = {v[len(REF_PREFIX):]: k for k, v in s.get("discriminator", {}).get("mapping", {}).items()}
            prop = s.get("discriminator", {}).get("propertyName")
            parts = []
            for alt in s["oneOf"]:
                name = _ref_name(alt)
                text = self._link(name) if name else self.type_of(alt)
                if name in tags and prop:
                    text += f" (`{prop}: {tags[name]}`)"
                parts.append(text)
            return "one of " + ", ".join(parts)
        if "const" in s:
            return f"`{_yaml_scalar(s['const'])}` (exactly)"
        if "enum" in s:
            values = [f"`{_yaml_scalar(v)}`" for v in s["enum"]]
            return " or ".join(values) if len(values) <= 2 else "one of " + ", ".join(values)
        kind = s.get("type")
        if kind == "string":
            out = "string"
            lo, hi = s.get("minLength"), s.get("maxLength")
            if lo is not None and hi is not None:
                out += f", {lo} to {hi} characters"
            elif hi is not None:
                out += f", at most {hi} characters"
            elif lo is not None:
                out += f", at least {lo} characters"
            if "pattern" in s:
                out += f", matching `{s['pattern']}`"
            return out
        if kind == "integer":
            lo, hi = s.get("minimum"), s.get("maximum")
            if lo is not None and hi is not None:
                return f"integer, {lo} to {hi}"
            if lo is not None:
                return f"integer, at least {lo}"
            if hi is not None:
                return f"integer, at most {hi}"
            return "integer"
        if kind == "boolean":
            return "boolean"
        if kind == "array":
            out = "list of " + self.type_of(s.get("items", {}))
            if s.get("minItems"):
                out += f", at least {s['minItems']}"
            return out
        if kind == "object":
            if "patternProperties" in s:
                (pattern, value), = s["patternProperties"].items()
                out = f"map of name → {self.type_of(value)}, names matching `{pattern}`"
            elif isinstance(s.get("additionalProperties"), dict):
                out = f"map of string → {self.type_of(s['additionalProperties'])}"
            else:
                out = "mapping"
            if s.get("minProperties"):
                out += f", at least {s['minProperties']} entry" + ("" if s["minProperties"] == 1 else "ies")
            return out
        return kind or "any"

    # -- walking ------------------------------------------------------------------------
    def _refs_in(self, schema: dict) -> list[tuple[str, str]]:
        """(def name, path suffix) of the definitions a property's schema refers to, in order."""
        out: list[tuple[str, str]] = []
        for s in _non_null(schema):
            ref = _ref_name(s)
            if ref is not None:
                out.append((ref, ""))
            for alt in s.get("oneOf", []):
                if _ref_name(alt):
                    out.append((_ref_name(alt), ""))
            if s.get("type") == "array":
                out += [(name, "[]" + suffix) for name, suffix in self._refs_in(s.get("items", {}))]
            if s.get("type") == "object":
                for value in s.get("patternProperties", {}).values():
                    out += [(name, ".<name>" + suffix) for name, suffix in self._refs_in(value)]
                if isinstance(s.get("additionalProperties"), dict):
                    out += [(name, ".<key>" + suffix) for name, suffix in self._refs_in(s["additionalProperties"])]
        return out

    @staticmethod
    def ordered_fields(schema: dict) -> list[str]:
        """Required fields in the order the model declares them, then the optional ones by name."""
        props = schema.get("properties", {})
        required = [name for name in schema.get("required", []) if name in props]
        return required + sorted(name for name in props if name not in required)

    def visit(self, name: str, schema: dict, path: str) -> None:
        if path.count(".") > MAX_DEPTH:  # a recursive model would otherwise be walked forever
            return
        if "enum" in schema and schema.get("type") != "object":
            doc = self.enums.get(name)
            if doc is None:
                doc = self.enums[name] = EnumDoc(name, anchor(name), schema.get("description", ""),
                                                 [_yaml_scalar(v) for v in schema["enum"]])
            if path not in doc.paths:
                doc.paths.append(path)
            return
        doc = self.objects.get(name)
        first_visit = doc is None
        if first_visit:
            doc = self.objects[name] = ObjectDoc(name, anchor(name), schema.get("description", ""))
        if path not in doc.paths:
            doc.paths.append(path)
        if not first_visit:
            # Paths below an object already walked are recorded once more, under this path too.
            for prop in self.ordered_fields(schema):
                for ref, suffix in self._refs_in(schema["properties"][prop]):
                    self.visit(ref, self.defs[ref], f"{path}.{prop}{suffix}" if path else f"{prop}{suffix}")
            return
        required = set(schema.get("required", []))
        for prop in self.ordered_fields(schema):
            pschema = schema["properties"][prop]
            doc.rows.append(Row(prop, _cell(self.type_of(pschema)), prop in required,
                                _cell(self.default_of(pschema, prop in required)),
                                _cell(self.description_of(pschema))))
        for prop in self.ordered_fields(schema):
            for ref, suffix in self._refs_in(schema["properties"][prop]):
                self.visit(ref, self.defs[ref], f"{path}.{prop}{suffix}" if path else f"{prop}{suffix}")

    @staticmethod
    def default_of(schema: dict, required: bool) -> str:
        if required or "default" not in schema or schema["default"] is None:
            return "—"
        return f"`{_yaml_scalar(schema['default'])}`"

    def description_of(self, schema: dict) -> str:
        if schema.get("description"):
            return schema["description"]
        for s in _non_null(schema):
            ref = _ref_name(s)
            if ref is not None and self.defs.get(ref, {}).get("description"):
                return self.defs[ref]["description"]
        return ""


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def model(schema: dict | None = None) -> dict[str, Any]:
    """What the template gets: the top-level object, then every object and enum, in walk order."""
    schema = load_schema() if schema is None else schema
    walker = _Walker(schema)
    kinds = [_ref_name(alt) for alt in schema.get("oneOf", [])]  # one file kind per alternative
    if kinds:
        for kind in kinds:
            walker.visit(kind, walker.defs[kind], "")
            walker.objects[kind].paths = [f"(the whole file, kind: {kind})"]
    else:
        walker.visit(schema.get("title", "Ceremony"), schema, "")
        next(iter(walker.objects.values())).paths = ["(the whole file)"]
    objects = list(walker.objects.values())
    return {"schema_id": schema.get("$id", ""), "schema_title": schema.get("title", ""),
            "objects": objects, "enums": list(walker.enums.values())}


def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=False,
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True)


def render(schema: dict | None = None) -> str:
    """docs/ceremony-file.md as it should be, from `ceremony.schema.json` (or `schema`)."""
    text = environment().get_template(TEMPLATE_NAME).render(**model(schema))
    return text.rstrip("\n") + "\n"


def main(argv: list[str]) -> int:
    output = DEFAULT_OUTPUT
    if "--output" in argv:
        i = argv.index("--output")
        if i + 1 >= len(argv):
            print("--output needs a path", file=sys.stderr)
            return 2
        output = Path(argv[i + 1])
    text = render()
    if "--check" in argv:
        if output.exists() and output.read_text(encoding="utf-8") == text:
            return 0
        print(f"out of date: {output} (run python -m pki_ceremony.schemas.reference_doc)")
        return 1
    if not output.parent.is_dir():
        print(f"no directory {output.parent}: run this from a source checkout, or pass --output PATH",
              file=sys.stderr)
        return 2
    if output.exists() and output.read_text(encoding="utf-8") == text:
        print(f"up to date: {output}")
        return 0
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
