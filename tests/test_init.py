"""`pki-ceremony init` (pki_ceremony/init_wizard.py): answers -> a ceremony file that loads.

Every rendered file is written with `write` and read back with the real loader
(`load_ceremony`: strict YAML, the pydantic model, the hierarchy rules), then its CAs are
compared with what the answers asked for. The questions are driven by a scripted input.
"""
from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

from pki_ceremony.errors import UsageError
from pki_ceremony.init_wizard import Answers, answers_from, ask, render, write, yaml_str
from pki_ceremony.schemas.ceremony import AwsPcaBackend, LocalBackend
from pki_ceremony.schemas.loader import load_ceremony

ODD_ORGANIZATIONS = [
    'Example: "Corp" #1',
    "O'Brien & Sons, Inc. [EU] {x}",
    "Ünïcødé Straße 株式会社 ‹α›",
    "- yes: no # * & ! | > % @ `",
    "null",
    "123",
]


def _expected_issuing(template: str, n: int) -> list[str]:
    if template == "hybrid":
        return [f"subordinate-{i}b" for i in range(n)]
    return [f"issuing-{c}" for c in "abcdefghijklmnopqrst"[:n]]


def _load(tmp_path: Path, answers: Answers, name: str = "ceremony.yaml"):
    path = tmp_path / name
    text = render(answers, filename=path.name)
    write(path, text)
    return path, text, load_ceremony(path).model


def _script(*lines: str):
    """An input_fn answering `lines` in order and recording the prompts; fails when they run out."""
    prompts: list[str] = []
    queue = list(lines)

    def input_fn(prompt: str) -> str:
        prompts.append(prompt)
        if not queue:
            raise AssertionError(f"asked more than scripted: {prompt!r}")
        return queue.pop(0)

    input_fn.prompts = prompts  # type: ignore[attr-defined]
    input_fn.left = queue  # type: ignore[attr-defined]
    return input_fn


ANSWER_SETS = [
    pytest.param(Answers(), id="local-defaults"),
    pytest.param(Answers(template="hybrid"), id="hybrid-defaults"),
    pytest.param(Answers(issuing_cas=1), id="local-1"),
    pytest.param(Answers(issuing_cas=20), id="local-20"),
    pytest.param(Answers(template="hybrid", issuing_cas=1), id="hybrid-1"),
    pytest.param(Answers(template="hybrid", issuing_cas=20, region="eu-central-1", profile="pki admin"),
                 id="hybrid-20"),
    pytest.param(Answers(root_key_algorithm="EC_secp384r1", root_validity_years=20, issuing_validity_years=19,
                         primary_key_algorithm="EC_prime256v1", issuing_key_algorithm="RSA_3072"), id="local-ec"),
    pytest.param(Answers(template="hybrid", root_key_algorithm="EC_prime256v1", root_validity_years=2,
                         issuing_validity_years=1, primary_key_algorithm="EC_secp521r1",
                         issuing_key_algorithm="EC_secp521r1"), id="hybrid-ec"),
    *[pytest.param(Answers(template=t, organization=o, country="de", issuing_cas=2), id=f"{t}-odd{i}")
      for t in ("local", "hybrid") for i, o in enumerate(ODD_ORGANIZATIONS)],
]


@pytest.mark.parametrize("answers", ANSWER_SETS)
def test_rendered_file_loads_with_the_asked_hierarchy(tmp_path, answers):
    path, text, c = _load(tmp_path, answers)
    n = answers.issuing_cas
    subs = c.hierarchy.subordinates
    issuing = _expected_issuing(answers.template, n)

    assert c.metadata.name == answers.name
    assert [ca.name for ca in c.cas()] == ["root", "primary", *issuing]
    assert [s.issuer for s in subs] == ["root"] + ["primary"] * n

    root = c.hierarchy.root
    assert root.validity.years == answers.root_validity_years
    assert root.path_len is None
    assert root.key.algorithm.value == answers.root_key_algorithm
    assert root.subject.common_name == answers.root_common_name
    assert subs[0].validity.same_as_issuer is True and subs[0].path_len == 1
    assert subs[0].key.algorithm.value == answers.primary_key_algorithm
    for s in subs[1:]:
        assert s.validity.years == answers.issuing_validity_years < answers.root_validity_years
        assert s.validity.same_as_issuer is None
        assert s.path_len == 0
        assert s.key.algorithm.value == answers.issuing_key_algorithm

    # Subjects: the organization and country exactly as answered, one distinct DN per CA.
    for ca in c.cas():
        assert ca.subject.organization == answers.organization
        assert ca.subject.country == answers.country.upper()
        assert len(ca.subject.common_name) <= 64
    assert len({ca.subject.common_name for ca in c.cas()}) == n + 2

    # PINs: only environment variable names, never a value, never a prompt.
    for hsm in c.hsms.values():
        assert hsm.pin.env and not hsm.pin.prompt and hsm.so_pin is None

    if answers.template == "local":
        assert {k: (h.provider, h.token) for k, h in c.hsms.items()} == {
            "root-hsm": ("softhsm", "root"), "online-hsm": ("softhsm", "online")}
        assert c.hsms["root-hsm"].pin.env == answers.root_pin_env
        assert c.hsms["online-hsm"].pin.env == answers.online_pin_env
        assert root.hsm == "root-hsm"
        assert all(isinstance(s.backend, LocalBackend) and s.backend.hsm == "online-hsm" for s in subs)
        labels = [c.key_label(ca) for ca in c.cas()]
        assert len(set(labels)) == len(labels) and all(len(label) <= 64 for label in labels)
        assert c.aws is None
    else:
        (hsm_name, hsm), = c.hsms.items()
        assert (hsm.provider, hsm.module, hsm.token, hsm.pin.env) == (
            "pkcs11", answers.cloudhsm_module, answers.cloudhsm_token, answers.cloudhsm_pin_env)
        assert root.hsm == hsm_name and root.key.exportable is True
        assert all(isinstance(s.backend, AwsPcaBackend) and s.key.label is None for s in subs)
        assert c.aws.region == answers.region and c.aws.profile == answers.profile


@pytest.mark.parametrize("template", ["local", "hybrid"])
def test_first_line_is_the_schema_and_points_at_the_installed_schema(tmp_path, template):
    path, text, _ = _load(tmp_path, Answers(template=template), name="my ceremony.yaml")
    first = text.splitlines()[0]
    prefix = "# yaml-language-server: $schema="
    assert first.startswith(prefix)
    uri = urlparse(first[len(prefix):])
    assert uri.scheme == "file"
    schema = Path(unquote(uri.path))
    assert schema.is_absolute() and schema.name == "ceremony.schema.json" and schema.is_file()
    json.loads(schema.read_text(encoding="utf-8"))
    # A comment says how to validate, plan and apply this very file.
    comments = [line for line in text.splitlines() if line.startswith("#")]
    for verb in ("validate", "plan", "apply"):
        assert any(f"pki-ceremony {verb} 'my ceremony.yaml'" in line for line in comments), verb


@pytest.mark.parametrize("template", ["local", "hybrid"])
def test_rendered_file_matches_the_json_schema(template):
    jsonschema = pytest.importorskip("jsonschema")
    text = render(Answers(template=template, organization='Example: "Corp" #1', issuing_cas=4))
    uri = text.splitlines()[0].split("$schema=", 1)[1]
    schema = json.loads(Path(unquote(urlparse(uri).path)).read_text(encoding="utf-8"))
    jsonschema.validate(yaml.safe_load(text), schema)


def test_no_pin_value_in_the_file():
    for template in ("local", "hybrid"):
        data = yaml.safe_load(render(Answers(template=template)))
        for hsm in data["hsms"].values():
            assert set(hsm["pin"]) == {"env"}


@pytest.mark.parametrize("value", ODD_ORGANIZATIONS + [
    "", " lead and trail ", "a, b", "{x}", "[y]", "yes", "No", "~", "1e3", "0x1F", "2024-01-01", "x: y",
    "#hash", "a #b", "'quoted'", '"dq"', "back\\slash", "tab\there", "line\nbreak", "nul\0", "é" * 80])
def test_yaml_str_is_one_safe_scalar(value):
    out = yaml_str(value)
    assert "\n" not in out
    assert not out.startswith("'")
    assert yaml.safe_load(f"k: {out}  # comment") == {"k": value}
    assert yaml.safe_load(f"{{a: {out}, b: {out}}}") == {"a": value, "b": value}
    assert yaml.safe_load(f"- [{out}, {out}]") == [[value, value]]


def test_yaml_str_plain_when_safe():
    assert yaml_str("Example Corp") == "Example Corp"
    assert yaml_str("us-east-1") == "us-east-1"
    assert yaml_str("yes") == '"yes"'


# ---------------------------------------------------------------------------- questions

def test_ask_reasks_after_invalid_country_and_number():
    printed: list[str] = []
    input_fn = _script(
        "",             # template: local
        "Acme Ltd",     # organization
        "usa",          # country: refused
        "de",           # country: accepted, upper-cased
        "",             # name: default from the organization
        "lots",         # issuing CAs: not a number
        "21",           # issuing CAs: out of range
        "2",
        "", "", "",     # root CN, root algorithm, root years
        "12",           # issuing years: not shorter than the root's 10
        "",             # issuing years: default
        "", "",         # primary and issuing algorithms
    )
    a = ask(None, input_fn=input_fn, print_fn=lambda *args: printed.append(" ".join(map(str, args))))
    assert input_fn.left == []
    assert (a.country, a.issuing_cas, a.name, a.organization) == ("DE", 2, "acme-ltd-pki", "Acme Ltd")
    assert (a.root_validity_years, a.issuing_validity_years) == (10, 3)
    prompts = input_fn.prompts
    assert sum(p.startswith("Country") for p in prompts) == 2
    assert sum(p.startswith("Number of issuing CAs") for p in prompts) == 3
    assert sum(p.startswith("Issuing CAs' validity") for p in prompts) == 2
    refusals = [p for p in printed if "Not accepted" in p]
    assert len(refusals) == 4
    assert "two-letter" in refusals[0] and "'usa'" in refusals[0]
    assert "whole number" in refusals[1]
    assert "from 1 to 20" in refusals[2]
    assert "fewer than 10" in refusals[3]
    # The defaults are shown in brackets; no question is about a PIN or password.
    assert any(p.startswith("Root key algorithm") and "[RSA_4096]" in p for p in prompts)
    assert any(p.startswith("Ceremony name") and "[acme-ltd-pki]" in p for p in prompts)
    assert not any("pin" in p.lower().split() or "password" in p.lower() for p in prompts)


def test_ask_hybrid_asks_aws_and_cloudhsm_and_uses_given_defaults():
    input_fn = _script("hybrid", "", "", "", "", "", "", "", "", "", "", "moon-1", "eu-west-3", "", "")
    printed: list[str] = []
    a = ask({"organization": "Globex", "issuing_cas": 5}, input_fn=input_fn, print_fn=printed.append)
    assert input_fn.left == []
    assert (a.template, a.organization, a.issuing_cas, a.region) == ("hybrid", "Globex", 5, "eu-west-3")
    assert (a.cloudhsm_module, a.cloudhsm_token) == ("/opt/cloudhsm/lib/libcloudhsm_pkcs11.so", "hsm1")
    assert a.cloudhsm_pin_env == "CLOUDHSM_CU_PIN"
    assert any("[Globex]" in p for p in input_fn.prompts)
    assert any("Not accepted" in p and "us-east-1 or eu-central-1" in p and "'moon-1'" in p for p in printed)
    assert sum(p.startswith("AWS region") for p in input_fn.prompts) == 2


def test_ask_end_of_input_is_a_usage_error():
    def eof(prompt):
        raise EOFError

    with pytest.raises(UsageError, match="end of input"):
        ask(None, input_fn=eof, print_fn=lambda *a: None)


def test_answers_from_flags_asks_only_the_rest():
    flags = {"template": "hybrid", "name": "acme-pki", "organization": "Acme", "country": "fr",
             "issuing_cas": 4, "region": "eu-west-1", "file": "x.yaml", "force": False, "yes": None}
    input_fn = _script(*[""] * 8)  # root CN, algorithm, years; issuing years; 2 algorithms; module, token
    a = answers_from(flags, interactive=True, input_fn=input_fn, print_fn=lambda *a: None)
    assert (a.template, a.name, a.organization, a.country, a.issuing_cas, a.region) == (
        "hybrid", "acme-pki", "Acme", "FR", 4, "eu-west-1")
    asked = " ".join(input_fn.prompts)
    for flag_question in ("Template", "Organization", "Country", "Ceremony name", "Number of issuing", "AWS region"):
        assert flag_question not in asked
    assert input_fn.left == []


def test_answers_from_non_interactive_uses_defaults_without_asking():
    def no_input(prompt):
        raise AssertionError(f"asked {prompt!r}")

    a = answers_from({"issuing_cas": None, "organization": None}, interactive=False, input_fn=no_input,
                     print_fn=no_input)
    assert a == Answers()
    assert (a.template, a.country, a.root_key_algorithm, a.root_validity_years, a.issuing_cas,
            a.issuing_validity_years) == ("local", "US", "RSA_4096", 10, 3, 3)
    b = answers_from({"template": "hybrid", "issuing_cas": "20"}, interactive=False, input_fn=no_input,
                     print_fn=no_input)
    assert b.issuing_cas == 20 and b.region == "us-east-1" and b.cloudhsm_token == "hsm1"


@pytest.mark.parametrize("flags, flag", [
    ({"country": "usa"}, "--country"),
    ({"issuing_cas": 0}, "--issuing-cas"),
    ({"issuing_cas": "three"}, "--issuing-cas"),
    ({"template": "cloud"}, "--template"),
    ({"template": "hybrid", "region": "Mars"}, "--region"),
    ({"name": "Not A Name"}, "--name"),
])
def test_answers_from_invalid_flag_is_a_usage_error(flags, flag):
    with pytest.raises(UsageError) as err:
        answers_from(flags, interactive=True, input_fn=_script(*[""] * 20), print_fn=lambda *a: None)
    assert str(err.value).startswith(flag + ":")
    assert err.value.exit_code == 2


# ---------------------------------------------------------------------------- answers

def test_answers_validate_and_normalise():
    assert Answers(country="gb", root_key_algorithm="ec_secp384r1").country == "GB"
    assert Answers(root_key_algorithm="ec_secp384r1").root_key_algorithm == "EC_secp384r1"
    with pytest.raises(UsageError, match="country"):
        Answers(country="usa")
    with pytest.raises(UsageError, match="validity_years: .*issuing CAs"):
        Answers(root_validity_years=3, issuing_validity_years=3)
    with pytest.raises(UsageError, match="issuing_cas"):
        Answers(issuing_cas=21)
    with pytest.raises(UsageError, match="primary_key_algorithm"):
        Answers(primary_key_algorithm="EC_secp521r1")   # a local token cannot hold it
    assert Answers(template="hybrid", primary_key_algorithm="EC_secp521r1").primary_key_algorithm == "EC_secp521r1"
    with pytest.raises(UsageError, match="root_key_algorithm"):
        Answers(template="hybrid", root_key_algorithm="EC_secp521r1")  # the root is on an HSM
    with pytest.raises(UsageError, match="root_common_name"):
        Answers(organization="Acme", root_common_name="Acme Primary CA G1")
    with pytest.raises(UsageError, match="organization"):
        Answers(organization="line\nbreak")
    with pytest.raises(UsageError, match="root_pin_env"):
        Answers(root_pin_env="1234")


@pytest.mark.parametrize("template", ["local", "hybrid"])
def test_long_organization_gets_a_shorter_common_name_prefix(tmp_path, template):
    org = "The Very Long Organization Name Of Examples International Holdings"[:64]
    a = Answers(template=template, organization=org, issuing_cas=20)
    assert a.cn_prefix and len(a.cn_prefix) < len(org)
    _, _, c = _load(tmp_path, a)
    assert all(len(ca.subject.common_name) <= 64 for ca in c.cas())
    assert all(ca.subject.organization == org for ca in c.cas())


# ---------------------------------------------------------------------------- writing

def test_write_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "ceremony.yaml"
    path.write_text("keep me\n")
    with pytest.raises(UsageError) as err:
        write(path, "new\n")
    assert "already exists" in str(err.value) and "--force" in err.value.hint
    assert path.read_text() == "keep me\n"
    write(path, "new\n", force=True)
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ceremony.yaml"]  # no temporary file left


def test_write_refuses_a_dangling_symlink_and_a_directory(tmp_path):
    link = tmp_path / "link.yaml"
    link.symlink_to(tmp_path / "elsewhere.yaml")
    with pytest.raises(UsageError):
        write(link, "x\n")
    assert not (tmp_path / "elsewhere.yaml").exists()
    with pytest.raises(UsageError):
        write(tmp_path, "x\n", force=True)
    with pytest.raises(UsageError, match="does not exist"):
        write(tmp_path / "missing" / "c.yaml", "x\n")


def test_write_mode_0644_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        path = write(tmp_path / "c.yaml", render(Answers()))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_text(encoding="utf-8").startswith("# yaml-language-server: $schema=file://")


def test_render_rechecks_a_hand_made_answers():
    a = Answers()
    broken = dataclasses.replace  # replace() runs __post_init__, so it validates too
    with pytest.raises(UsageError):
        broken(a, country="usa")
