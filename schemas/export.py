"""Export the JSON Schemas of the ceremony file, of plans and of status from the pydantic models.

    python -m pki_ceremony.schemas.export          # rewrite schemas/*.schema.json
    python -m pki_ceremony.schemas.export --check  # exit 1 if they are out of date

Editors use `ceremony.schema.json` to complete and check ceremony files (the example files
start with a `yaml-language-server: $schema=` line pointing at it).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .ceremony import Ceremony

HERE = Path(__file__).resolve().parent
SCHEMA_ID = "https://pki-ceremony.dev/schemas/ceremony.schema.json"


def ceremony_schema() -> dict:
    """Both kinds of ceremony file, told apart by `kind`: a Ceremony and a RootCeremony."""
    from typing import Annotated, Union

    from pydantic import Field, TypeAdapter

    from .ceremony import RootCeremony

    either = TypeAdapter(Annotated[Union[Ceremony, RootCeremony], Field(discriminator="kind")])
    schema = either.json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "pki-ceremony ceremony file (v1)", **schema}


def document_schema(model, name: str, title: str) -> dict:
    schema = model.model_json_schema(mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://pki-ceremony.dev/schemas/{name}", "title": title, **schema}


def rendered() -> dict[str, str]:
    from .plan_document import PlanDocument, StatusDocument

    docs = {"ceremony.schema.json": ceremony_schema(),
            "plan.schema.json": document_schema(PlanDocument, "plan.schema.json", "pki-ceremony plan (format 1)"),
            "status.schema.json": document_schema(StatusDocument, "status.schema.json",
                                                  "pki-ceremony status (format 1)")}
    return {name: json.dumps(doc, indent=2, sort_keys=True) + "\n" for name, doc in docs.items()}


def main(argv: list[str]) -> int:
    stale = []
    for name, text in rendered().items():
        path = HERE / name
        if path.exists() and path.read_text() == text:
            continue
        if "--check" in argv:
            stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print("out of date: " + ", ".join(stale) + " (run python -m pki_ceremony.schemas.export)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
