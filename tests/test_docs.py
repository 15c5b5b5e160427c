"""The documentation is true to the code: generated parts in sync, links resolve, commands exist.

Fast checks only (no HSM): the ceremony file reference equals what the generator renders from the
JSON Schema, its hand-written RootCeremony tables name the models' fields, its examples validate,
every relative link in README.md and docs/*.md reaches a file (and a heading, when it names one),
the commands, options and exit codes in docs/cli.md are the CLI's, and the facts the other pages
list by name (hierarchy and root-ceremony rules, crash-hook phases, step kinds, the DAG drawings,
the CloudHSM actions of the IAM policy) are the code's.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
EXPECTED_PAGES = {"getting-started.md", "cli.md", "architecture.md", "security-model.md", "ceremony-file.md",
                  "custody.md", "hierarchies.md", "aws.md"}


def _without_fences(text: str) -> str:
    """Markdown text with fenced code blocks removed."""
    return re.sub(r"^(```|~~~).*?^\1[ \t]*$", "", text, flags=re.S | re.M)


def _without_code(text: str) -> str:
    """Markdown text with fenced code blocks and inline code spans blanked out."""
    return re.sub(r"`[^`\n]*`", "", _without_fences(text))


def _code(text: str) -> list[str]:
    """The contents of fenced code blocks and inline code spans."""
    blocks = re.findall(r"^(?:```|~~~)[^\n]*\n(.*?)^(?:```|~~~)[ \t]*$", text, flags=re.S | re.M)
    rest = re.sub(r"^(```|~~~).*?^\1[ \t]*$", "", text, flags=re.S | re.M)
    return blocks + re.findall(r"`([^`\n]+)`", rest)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    out: set[str] = set()
    for line in _without_fences(path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug, n = _slug(m.group(1)), 1
            candidate = slug
            while candidate in out:
                candidate, n = f"{slug}-{n}", n + 1
            out.add(candidate)
    out |= set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', path.read_text(encoding="utf-8")))
    return out


def links(path: Path) -> list[str]:
    text = _without_code(path.read_text(encoding="utf-8"))
    found = re.findall(r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)
    found += re.findall(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?", text)  # images
    found += re.findall(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", text, flags=re.M)  # reference definitions
    return found


# --- the generated reference -------------------------------------------------------------------

def test_every_documentation_page_is_there():
    assert EXPECTED_PAGES <= {p.name for p in DOCS.glob("*.md")}


def test_ceremony_file_reference_is_generated_and_in_sync():
    from pki_ceremony.schemas import reference_doc

    on_disk = (DOCS / "ceremony-file.md").read_text(encoding="utf-8")
    assert reference_doc.render() == on_disk, (
        "docs/ceremony-file.md is out of date: run python -m pki_ceremony.schemas.reference_doc")
    check = subprocess.run([sys.executable, "-m", "pki_ceremony.schemas.reference_doc", "--check"], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr


def test_reference_check_fails_on_a_stale_file(tmp_path):
    stale = tmp_path / "ceremony-file.md"
    stale.write_text("# stale\n")
    check = subprocess.run([sys.executable, "-m", "pki_ceremony.schemas.reference_doc", "--check", "--output",
                            str(stale)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert check.returncode == 1 and "out of date" in check.stdout
    assert stale.read_text() == "# stale\n"


def test_reference_documents_every_definition_of_the_schema():
    import json

    from pki_ceremony.schemas import reference_doc

    schema = json.loads(reference_doc.SCHEMA_PATH.read_text())
    text = (DOCS / "ceremony-file.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^### (\S+)$", text, flags=re.M))
    assert set(schema["$defs"]) <= headings
    for name, definition in schema["$defs"].items():
        for prop in definition.get("properties", {}):
            assert f"| `{prop}` |" in text, f"{name}.{prop} has no row in docs/ceremony-file.md"


def test_annotated_example_in_the_reference_is_a_valid_ceremony(tmp_path):
    from pki_ceremony.schemas.loader import load_ceremony

    text = (DOCS / "ceremony-file.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```yaml\n(.*?)^```$", text, flags=re.S | re.M)
    assert blocks, "docs/ceremony-file.md has no ```yaml example"
    example = tmp_path / "example.yaml"
    example.write_text(blocks[0])
    loaded = load_ceremony(example)
    assert len(loaded.model.cas()) >= 3


def test_hierarchy_rules_named_in_the_reference_exist():
    from pki_ceremony.schemas.rules import RULES

    text = (DOCS / "ceremony-file.md").read_text(encoding="utf-8")
    section = text.split("### 3. The hierarchy", 1)[1].split("\n### ", 1)[0]
    named = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))
    assert named, "no rule rows found under '### 3. The hierarchy'"
    unknown = named - {rule.__name__ for rule in RULES}
    assert unknown == set(), f"the reference names rules schemas/rules.py does not have: {sorted(unknown)}"


def _section(text: str, heading: str) -> str:
    """The text under `heading` (a whole heading line), up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    body = text.split(heading + "\n", 1)[1]
    end = re.search(rf"^#{{1,{level}}} ", body, flags=re.M)
    return body[:end.start()] if end else body


ROOT_CEREMONY_TABLES = {"RootCeremony": "RootCeremony", "CrlSpec": "CrlSpec", "RevokedEntry": "RevokedEntry",
                        "ExportSpec": "ExportSpec"}


def test_root_ceremony_tables_name_the_models_fields():
    """`kind: RootCeremony` is not in ceremony.schema.json: its tables are written by hand from the models."""
    from pki_ceremony.schemas import ceremony

    text = (DOCS / "ceremony-file.md").read_text(encoding="utf-8")
    for heading, model_name in ROOT_CEREMONY_TABLES.items():
        model = getattr(ceremony, model_name)
        section = _section(text, f"### {heading}")
        rows = set(re.findall(r"^\| `([A-Za-z0-9_]+)` \|", section, flags=re.M))
        fields = {(f.alias or name) for name, f in model.model_fields.items()}
        assert rows - fields == set(), f"{heading}: rows for fields {model_name} does not have: {sorted(rows - fields)}"
        assert fields - rows == set(), f"{heading}: fields of {model_name} without a row: {sorted(fields - rows)}"
        required = {(f.alias or name) for name, f in model.model_fields.items() if f.is_required()}
        documented = set(re.findall(r"^\| `([A-Za-z0-9_]+)` \| [^|]+ \| yes \|", section, flags=re.M))
        assert documented == required, f"{heading}: required fields {sorted(required)}, documented {sorted(documented)}"


def test_root_ceremony_example_in_the_reference_validates(tmp_path):
    import datetime
    import shutil

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from pki_ceremony.schemas.ceremony import RootCeremony
    from pki_ceremony.schemas.loader import load_ceremony

    text = (DOCS / "ceremony-file.md").read_text(encoding="utf-8")
    section = _section(text, "## Root ceremonies (`kind: RootCeremony`)")
    block = re.search(r"^```yaml\n(.*?)^```$", section, flags=re.S | re.M).group(1)
    base = re.search(r"^base: (\S+)", block, flags=re.M).group(1)
    shutil.copy(REPO / "ceremonies" / base, tmp_path / base)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old primary")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0x1A2B3D).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (tmp_path / "old-primary.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    example = tmp_path / "example.yaml"
    example.write_text(block)
    loaded = load_ceremony(example)
    assert isinstance(loaded.model, RootCeremony) and loaded.model.crl and loaded.model.export


def test_root_ceremony_rules_named_in_the_reference_exist():
    from pki_ceremony.schemas import root_rules

    tree = ast.parse((REPO / "schemas" / "root_rules.py").read_text())
    check = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "check_root_ceremony")
    used = {n.id for n in ast.walk(check) if isinstance(n, ast.Name) and callable(getattr(root_rules, n.id, None))}
    text = (DOCS / "ceremony-file.md").read_text(encoding="utf-8")
    section = _section(text, "### 4. Root ceremonies (`schemas/root_rules.py`)")
    named = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))
    assert named, "no rule rows found under '### 4. Root ceremonies'"
    assert named <= used, f"the reference names root-ceremony rules the code does not run: {sorted(named - used)}"


# --- links -----------------------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_point_at_existing_files(page: Path):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I):  # http:, https:, mailto:...
            continue
        path_part, _, fragment = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file {dest}")
            continue
        if fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading #{fragment} in {dest.name}")
    assert broken == [], f"{page.name}: " + "; ".join(broken)


def test_link_checker_sees_links(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# Title\n\nSee [a](a.md), [b](#title), ![i](img.png).\n\n```\n[not](a link)\n```\n"
                    "[ref]: other.md\n")
    assert links(page) == ["a.md", "#title", "img.png", "other.md"]
    assert "title" in anchors(page)


# --- the CLI page ------------------------------------------------------------------------------

def _help(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "pki_ceremony", *args, "--help"], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def cli_commands() -> set[str]:
    """The commands listed by `pki-ceremony --help` (the indented lines under COMMAND)."""
    text = _help()
    block = text.split("COMMAND\n", 1)[1] if "COMMAND\n" in text else text
    return set(re.findall(r"^    ([a-z][a-z-]*)\s", block, flags=re.M))


def commands_mentioned(text: str) -> set[str]:
    found = set()
    for code in _code(text):
        found |= set(re.findall(r"(?<![\w/.-])(?:\S*/)?pki-ceremony\s+([a-z][a-z-]*)", code))
    return found


def test_every_command_in_cli_md_exists_in_the_cli_help():
    commands = cli_commands()
    assert {"validate", "plan", "apply", "status"} <= commands
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    mentioned = commands_mentioned(text)
    assert mentioned, "docs/cli.md shows no pki-ceremony command"
    assert mentioned <= commands, f"docs/cli.md shows commands the CLI does not have: {sorted(mentioned - commands)}"


def test_every_option_in_cli_md_exists_for_its_command():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)
    documented = [s for s in sections if s.startswith("`pki-ceremony ")]
    assert documented, "docs/cli.md has no '## `pki-ceremony COMMAND ...`' section"
    commands = cli_commands()
    for section in documented:
        command = section.split()[1].strip("`")
        assert command in commands, f"docs/cli.md has a section for '{command}', which the CLI does not have"
        options = set(re.findall(r"`(--[a-z][a-z-]*)", section))
        real = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", _help(command)))
        assert options <= real, f"{command}: docs/cli.md names options the CLI lacks: {sorted(options - real)}"


def test_exit_codes_in_cli_md_are_the_codes_of_the_errors():
    import inspect

    import pki_ceremony.errors as errors
    from pki_ceremony import cli

    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    table = set(int(n) for n in re.findall(r"^\|\s*(\d+)\s*\|", text, flags=re.M))
    codes = {cls.exit_code for _, cls in inspect.getmembers(errors, inspect.isclass)
             if issubclass(cls, errors.CeremonyError)}
    assert codes | {0, cli.EXIT_INTERRUPTED} <= table, f"exit codes missing from docs/cli.md: {sorted(codes - table)}"
    assert table <= codes | {0, 2, cli.EXIT_INTERRUPTED}, f"docs/cli.md lists unknown exit codes: {sorted(table)}"
    for name, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, errors.CeremonyError) and cls is not errors.CeremonyError:
            assert f"`{name}`" in text, f"docs/cli.md does not say which exit code {name} gives"


# --- facts named in architecture.md ----------------------------------------------------------

def test_crash_hook_phases_in_architecture_md_are_the_executors():
    source = (REPO / "engine" / "executor.py").read_text()
    phases = {node.args[1].value for node in ast.walk(ast.parse(source))
              if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "crash_point"
              and len(node.args) == 2 and isinstance(node.args[1], ast.Constant)}
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    section = text.split("The crash test hook", 1)[1]
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", section, flags=re.M))
    assert documented, "no phase table in the crash test hook section"
    assert documented <= phases | {"during"}, f"phases the executor does not have: {sorted(documented - phases)}"
    assert "PKI_CEREMONY_TEST_CRASH_DELAY" in text and '"_DELAY"' in source


STEP_KIND = r"`((?:hsm|x509|aws_pca|softhsm|cloudhsm)\.[a-z_]+)`"


@pytest.mark.parametrize("page", ["architecture.md", "custody.md"])
def test_step_kinds_named_in_the_docs_exist(page):
    from pki_ceremony import app

    text = (DOCS / page).read_text(encoding="utf-8")
    named = set(re.findall(STEP_KIND, text))
    assert named, f"docs/{page} names no step kind"
    unknown = named - set(app.registry().kinds())
    assert unknown == set(), f"docs/{page} names step kinds that are not registered: {sorted(unknown)}"


def _dag_diagrams(text: str) -> dict[str, str]:
    """Mermaid diagrams marked `<!-- dag: ceremonies/FILE.yaml -->`, by ceremony file."""
    return dict(re.findall(r"^<!-- dag: (\S+) -->\n```mermaid\n(.*?)^```$", text, flags=re.S | re.M))


def test_dag_diagrams_in_architecture_md_show_real_edges():
    from pki_ceremony.app import open_ceremony

    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    diagrams = _dag_diagrams(text)
    assert {"ceremonies/local.yaml", "ceremonies/local-offline-root.yaml", "ceremonies/root-crl.yaml"} <= set(diagrams)
    for ceremony_file, diagram in diagrams.items():
        labels = dict(re.findall(r'^\s*(\w+)\["([^"<]+)<br/>', diagram, flags=re.M))
        edges = re.findall(r"^\s*(\w+) -- (\w+) --> (\w+)$", diagram, flags=re.M)
        edges += re.findall(r'^\s*(\w+) -->\|"([^"]+)"\| (\w+)$', diagram, flags=re.M)
        drawn = {(labels[a], role, labels[b]) for a, role, b in edges}
        graph = open_ceremony(REPO / ceremony_file).graph
        real = {(u, d["role"], v) for u, v, d in graph.g.edges(data=True)}
        kinds = {n.id: n.kind for n in graph.order()}
        assert drawn and drawn <= real, f"{ceremony_file}: edges drawn that the DAG does not have: {sorted(drawn - real)}"
        for node_id, label_kind in re.findall(r'\["([^"<]+)<br/>([\w.]+)"\]', diagram):
            assert kinds.get(node_id) == label_kind, \
                f"{ceremony_file}: {node_id} is drawn as {label_kind}, the DAG has {kinds.get(node_id)}"


# --- facts named in aws.md -----------------------------------------------------------------------

def test_cloudhsm_actions_in_the_iam_policy_are_the_calls_of_the_custody_steps():
    import json

    import botocore.session
    from botocore import xform_name

    operations = botocore.session.get_session().get_service_model("cloudhsmv2").operation_names
    by_method = {xform_name(op): op for op in operations}
    source = (REPO / "steps" / "custody_steps.py").read_text()
    called = {by_method[m] for m in re.findall(r"[a-z_]+", source) if m in by_method}
    text = (DOCS / "aws.md").read_text(encoding="utf-8")
    section = _section(text, "## CloudHSM custody: the cloudhsmv2 calls")
    policy = json.loads(re.search(r"^```json\n(.*?)^```$", section, flags=re.S | re.M).group(1))
    actions = {a.split(":", 1)[1] for s in policy["Statement"]
               for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]) if a.startswith("cloudhsm:")}
    assert called, "found no cloudhsmv2 call in steps/custody_steps.py"
    assert called <= actions, f"cloudhsmv2 calls missing from the policy in docs/aws.md: {sorted(called - actions)}"
    assert actions <= called, f"docs/aws.md allows cloudhsm actions the tool does not call: {sorted(actions - called)}"
