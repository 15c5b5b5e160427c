"""The documentation is true to the code: generated parts in sync, links resolve, commands exist.

Fast checks only (no HSM): the ceremony file reference equals what the generator renders from the
JSON Schema, every relative link in README.md and docs/*.md reaches a file (and a heading, when it
names one), the commands, options and exit codes in docs/cli.md are the CLI's, and the facts the
other pages list by name (hierarchy rules, crash-hook phases) are the code's.
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
EXPECTED_PAGES = {"getting-started.md", "cli.md", "architecture.md", "security-model.md", "ceremony-file.md"}


def _without_code(text: str) -> str:
    """Markdown text with fenced code blocks and inline code spans blanked out."""
    text = re.sub(r"^(```|~~~).*?^\1[ \t]*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


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
    for line in _without_code(path.read_text(encoding="utf-8")).splitlines():
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


def test_every_hierarchy_rule_is_documented():
    from pki_ceremony.schemas.rules import RULES

    text = (DOCS / "ceremony-file.md").read_text(encoding="utf-8")
    missing = [rule.__name__ for rule in RULES if f"| `{rule.__name__}` |" not in text]
    assert missing == [], f"rules in schemas/rules.py without a row in the template: {missing}"


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
    undocumented = {c for c in commands if f"## `pki-ceremony {c}" not in text and f"## pki-ceremony {c}" not in text}
    assert undocumented == set(), f"commands without a section in docs/cli.md: {sorted(undocumented)}"


def test_every_option_in_cli_md_exists_for_its_command():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)
    for command in cli_commands():
        section = next((s for s in sections if s.startswith(f"`pki-ceremony {command}")), "")
        options = set(re.findall(r"`(--[a-z][a-z-]*)", section))
        real = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", _help(command)))
        assert options <= real, f"{command}: docs/cli.md names options the CLI lacks: {sorted(options - real)}"
        assert real - {"--help"} <= options, f"{command}: options not documented: {sorted(real - {'--help'} - options)}"


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
    assert phases >= {"before-intent", "after-intent", "run-start", "after-run", "after-result"}
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    missing = [p for p in sorted(phases | {"during"}) if f"`{p}`" not in text]
    assert missing == [], f"crash-hook phases not described in docs/architecture.md: {missing}"
    assert "PKI_CEREMONY_TEST_CRASH_DELAY" in text


def test_step_kinds_in_architecture_md_are_the_registered_ones():
    from pki_ceremony import app

    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    missing = [k for k in app.registry().kinds() if f"`{k}`" not in text]
    assert missing == [], f"step kinds not described in docs/architecture.md: {missing}"
