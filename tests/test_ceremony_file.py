"""The ceremony file: strict reading, validation, and how its errors reach a person.

Malformed ceremony files are kept as data in ``tests/cases/bad/NAME.yaml``. Each begins with
comment lines the tests read as the expectation:

    # expect-line: N                 line the error must name (required)
    # expect: <substring>            text stderr must contain (required; may repeat, e.g. for a hint;
                                     the first one must be on the first line of stderr)
    # expect-field: <field path>     the field the error must name, e.g. hierarchy.subordinates[1].validity

The line the error is about is also marked ``# <-`` in the files, for the reader.

Every bad file is run through the real CLI (``validate`` and ``apply --yes``) in a fresh
directory with no PIN variables in the environment: both must exit 2, name
``file:line:`` on the first line of stderr, print no traceback and create no workspace.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import pytest
import yaml

from pki_ceremony.errors import CeremonyFileError
from pki_ceremony.schemas.loader import CeremonyFileErrors, LoadedCeremony, load_ceremony

REPO = Path(__file__).resolve().parents[1]
BAD_DIR = Path(__file__).resolve().parent / "cases" / "bad"
EXAMPLE = REPO / "ceremonies" / "local.yaml"
SCHEMA = REPO / "schemas" / "ceremony.schema.json"
BAD_CASES = sorted(BAD_DIR.glob("*.yaml"))

# The cases the brief asks for; a missing file must fail loudly rather than shrink the table.
REQUIRED_CASES = {
    "yaml_syntax_error", "tab_indentation", "duplicate_key_top", "duplicate_key_nested", "unknown_key_top",
    "unknown_key_in_subordinate", "empty_file", "top_level_list", "two_documents", "python_object_tag",
    "wrong_api_version", "missing_root", "names_unique", "issuer_missing", "issuer_self", "issuer_cycle",
    "hsm_not_declared", "signing_algorithm_family", "key_label_twice_on_token", "subject_twice",
    "path_len_depth", "path_len_child_too_large", "validity_longer_than_issuer", "validity_equal_explicit",
    "validity_second_level_same_as_issuer", "validity_second_level_equal", "country_lowercase",
    "pin_env_and_prompt", "pin_neither", "pkcs11_without_module", "validity_years_and_months",
}


@dataclass
class Expectation:
    line: int
    expects: list[str] = field(default_factory=list)
    field: str | None = None


def read_expectation(path: Path) -> Expectation:
    line, expects, fld = None, [], None
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.startswith("#"):
            break
        key, sep, value = raw[1:].strip().partition(":")
        value = value.strip()
        if not sep:
            continue
        if key == "expect-line":
            line = int(value)
        elif key == "expect":
            expects.append(value)
        elif key == "expect-field":
            fld = value
    assert line is not None and expects, f"{path.name}: needs '# expect-line: N' and '# expect: ...' first"
    return Expectation(line, expects, fld)


def cli_env(**extra: str) -> dict[str, str]:
    """The current environment without any PIN variable or debug switch, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if "PIN" not in k.upper() and k != "PKI_CEREMONY_DEBUG"}
    env.update(extra)
    return env


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pki_ceremony", *args], cwd=cwd, env=env or cli_env(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def tree(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def describe(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout:\n{proc.stdout}\n--- stderr:\n{proc.stderr}"


# --- 1. the table of bad files, through the real CLI ------------------------------------------

def test_bad_case_table_is_complete():
    names = {p.stem for p in BAD_CASES}
    assert len(BAD_CASES) >= 20
    assert REQUIRED_CASES <= names, f"missing: {sorted(REQUIRED_CASES - names)}"
    for path in BAD_CASES:  # every file has a well-formed header whose line exists in the file
        exp = read_expectation(path)
        assert 1 <= exp.line <= max(1, len(path.read_text().splitlines())), path.name


@pytest.mark.parametrize("command", [["validate"], ["apply", "--yes"]], ids=["validate", "apply"])
@pytest.mark.parametrize("case", BAD_CASES, ids=[p.stem for p in BAD_CASES])
def test_bad_file_is_refused_with_its_line(case: Path, command: list[str], tmp_path: Path):
    exp = read_expectation(case)
    work = tmp_path / "run"
    work.mkdir()
    shutil.copy(case, work / case.name)
    before = tree(work)

    proc = run_cli([command[0], case.name, *command[1:]], cwd=work)

    assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)
    assert proc.returncode == 2, describe(proc)
    lines = proc.stderr.splitlines()
    assert lines, describe(proc)
    first = lines[0]
    assert first.startswith(f"error: {case.name}:{exp.line}:"), describe(proc)
    assert exp.expects[0] in first, describe(proc)
    for text in exp.expects[1:]:
        assert text in proc.stderr, describe(proc)
    if exp.field is not None:
        assert re.match(rf"error: {re.escape(case.name)}:{exp.line}:\d+: {re.escape(exp.field)}: ", first), \
            describe(proc)
    assert proc.stdout == "", describe(proc)  # no plan, no "valid" line: the file was refused first
    assert tree(work) == before, f"the run left files behind: {tree(work)}"


# --- 2. a PIN variable that is not set ----------------------------------------------------------

PIN_CEREMONY = """\
apiVersion: pki-ceremony/v1
kind: Ceremony
metadata:
  name: pins
hsms:
  alpha:
    provider: softhsm
    token: alpha
    pin: {env: PKI_TEST_SET_PIN}
  beta:
    provider: softhsm
    token: beta
    pin:
      env: PKI_TEST_UNSET_PIN
hierarchy:
  root:
    hsm: alpha
    key: {algorithm: EC_prime256v1}
    subject: {common_name: Pin Root}
    validity: {years: 5}
  subordinates:
    - name: sub
      issuer: root
      backend: {type: local, hsm: beta}
      key: {algorithm: EC_prime256v1}
      subject: {common_name: Pin Sub}
      validity: {years: 2}
"""


def test_unset_pin_variable_passes_validate_but_stops_apply(tmp_path: Path):
    work = tmp_path / "run"
    work.mkdir()
    name = "pins.yaml"
    (work / name).write_text(PIN_CEREMONY)
    lines = PIN_CEREMONY.splitlines()
    beta = lines.index("  beta:")
    pin_line = next(i for i in range(beta, len(lines)) if lines[i].strip().startswith("pin:")) + 1
    env = cli_env(PKI_TEST_SET_PIN="1234")
    assert "PKI_TEST_UNSET_PIN" not in env
    before = tree(work)

    val = run_cli(["validate", name], cwd=work, env=env)
    assert val.returncode == 0, describe(val)
    assert "valid ceremony 'pins'" in val.stdout and "2 CAs" in val.stdout, describe(val)
    assert tree(work) == before

    app = run_cli(["apply", name, "--yes"], cwd=work, env=env)
    assert "Traceback" not in app.stdout + app.stderr, describe(app)
    assert app.returncode == 2, describe(app)
    first = app.stderr.splitlines()[0]
    assert first.startswith(f"error: {name}:{pin_line}:"), describe(app)
    assert "hsms.beta.pin" in first and "PKI_TEST_UNSET_PIN" in first, describe(app)
    assert "1234" not in app.stdout + app.stderr
    assert tree(work) == before, f"apply left files behind: {tree(work)}"
    assert not (work / "pins-workspace").exists()


# --- 3. the loader, in process ---------------------------------------------------------------

def test_load_example_ceremony():
    loaded = load_ceremony(EXAMPLE)
    assert isinstance(loaded, LoadedCeremony)
    model = loaded.model
    assert [ca.name for ca in model.cas()] == ["root", "primary", "issuing-a", "issuing-b", "issuing-c"]
    assert model.metadata.name == "example-corp-pki"
    assert sorted(model.hsms) == ["online-hsm", "root-hsm"]
    assert {s.name: s.issuer for s in model.hierarchy.subordinates} == {
        "primary": "root", "issuing-a": "primary", "issuing-b": "primary", "issuing-c": "primary"}
    assert model.key_label(model.ca("root")) == "example-root-g1"
    assert model.key_label(model.ca("issuing-a")) == "example-corp-pki-issuing-a"
    assert model.signing_algorithm(model.ca("issuing-b")).value == "SHA384WITHECDSA"
    assert re.fullmatch(r"[0-9a-f]{64}", loaded.fingerprint)
    assert loaded.fingerprint == load_ceremony(EXAMPLE).fingerprint
    # positions are kept for later errors: issuing-c's validity is on the line that says so
    line, col = loaded.source.locate(("hierarchy", "subordinates", 3, "validity"))
    assert EXAMPLE.read_text().splitlines()[line - 1].strip() == "validity: {months: 18}"
    assert col == 7


@pytest.mark.parametrize("name,column,fld", [
    ("duplicate_key_nested", 7, "hierarchy.subordinates[1].validity"),
    ("issuer_cycle", 7, "hierarchy.subordinates[0].issuer"),
    ("pin_neither", 5, "hsms.h.pin"),
    ("tab_indentation", 1, ""),
])
def test_error_attributes(name: str, column: int, fld: str):
    path = BAD_DIR / f"{name}.yaml"
    exp = read_expectation(path)
    with pytest.raises(CeremonyFileError) as info:
        load_ceremony(path)
    err = info.value
    assert (err.file, err.line, err.column, err.field) == (str(path), exp.line, column, fld)
    assert exp.expects[0] in err.reason
    assert err.exit_code == 2 and isinstance(err, ValueError)
    assert str(err).startswith(f"{path}:{exp.line}:{column}: ")


def test_collect_reports_every_problem(tmp_path: Path):
    text = (BAD_DIR / "issuer_missing.yaml").read_text().replace("common_name: A}", "common_name: A, country: usa}")
    text = text.replace("    validity: {years: 10}", "    validity: {years: 10, days: 3}")
    path = tmp_path / "two.yaml"
    path.write_text(text)
    with pytest.raises(CeremonyFileErrors) as info:
        load_ceremony(path, collect=True)
    fields = [e.field for e in info.value.errors]
    assert fields == ["hierarchy.root.validity", "hierarchy.subordinates[0].subject.country"]
    assert [e.line for e in info.value.errors] == sorted(e.line for e in info.value.errors)
    assert len(str(info.value).splitlines()) == 2


# --- 4. the JSON Schema ------------------------------------------------------------------------

def test_json_schema_file_is_in_sync():
    proc = subprocess.run([sys.executable, "-m", "pki_ceremony.schemas.export", "--check"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, describe(proc)
    assert "out of date" not in proc.stdout


def test_example_validates_against_json_schema():
    import json

    schema = json.loads(SCHEMA.read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    example = yaml.safe_load(EXAMPLE.read_text())
    errors = [e.message for e in validator.iter_errors(example)]
    assert errors == []
    # the schema is not vacuous: it refuses what the loader refuses for the same reason
    for case in ("unknown_key_top", "unknown_key_in_subordinate", "wrong_api_version", "missing_root"):
        data = yaml.safe_load((BAD_DIR / f"{case}.yaml").read_text())
        assert list(validator.iter_errors(data)), f"the schema accepts {case}.yaml"
