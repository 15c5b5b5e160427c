"""`pki-ceremony init`: write a new, commented ceremony file from a few answers.

Two templates (``pki_ceremony/templates/*.yaml.j2``):

* ``local``: every key on a SoftHSM2 token inside the workspace (the shape of
  ``ceremonies/local.yaml``): the root on token ``root``, a primary subordinate on token
  ``online`` with the root's validity and path_len 1, and N issuing CAs (path_len 0).
* ``hybrid``: the seed walkthrough (``ceremonies/hybrid-cloudhsm-pca.yaml``): the root key in
  AWS CloudHSM over PKCS#11, the primary and N second-level subordinates in AWS Private CA.

The wizard never asks for a PIN and never writes one: every token's PIN is
``pin: {env: NAME}``, and only the variable's name is in the file.

API: `Answers` (validated on construction), `ask` (terminal questions), `answers_from`
(command-line flags, asking for the rest only when interactive), `render` (Jinja2) and
`write` (atomic, refuses to overwrite unless forced).
"""
from __future__ import annotations

import dataclasses
import importlib.resources
import os
import re
import shlex
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import jinja2
import yaml

from pki_ceremony.engine.workspace import write_atomically
from pki_ceremony.errors import UsageError
from pki_ceremony.schemas.ceremony import (HSM_KEY_ALGORITHMS, NAME_PATTERN, KeyAlgorithm,
                                           default_signing_algorithm)

TEMPLATES = ("local", "hybrid")
DEFAULT_CLOUDHSM_MODULE = "/opt/cloudhsm/lib/libcloudhsm_pkcs11.so"
MAX_ISSUING_CAS = 20
MAX_NAME_LENGTH = 48          # key labels are built from it and may have at most 64 characters
MAX_COMMON_NAME = 64          # Subject.common_name
MAX_ORGANIZATION = 64         # Subject.organization
MAX_YEARS = 30                # Validity.years
MAX_ATTEMPTS = 10             # questions re-asked this often before giving up
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_HSM_ALGORITHMS = [a.value for a in KeyAlgorithm if a in HSM_KEY_ALGORITHMS]
_ALL_ALGORITHMS = [a.value for a in KeyAlgorithm]


# ---------------------------------------------------------------------------- names

def issuing_names(template: str, count: int) -> list[str]:
    """The second-level CAs' names: issuing-a, issuing-b, ... or subordinate-0b, subordinate-1b, ..."""
    if template == "hybrid":
        return [f"subordinate-{i}b" for i in range(count)]
    return [f"issuing-{chr(ord('a') + i)}" for i in range(count)]


def _issuing_cn_suffixes(template: str, count: int) -> list[str]:
    if template == "hybrid":
        return [f"Subordinate CA {i}b" for i in range(count)]
    return [f"Issuing CA {chr(ord('A') + i)}" for i in range(count)]


def subordinate_common_names(prefix: str, template: str, count: int) -> list[str]:
    """Common names of the primary, then of the second-level CAs."""
    return [f"{prefix} Primary CA G1"] + [f"{prefix} {s}" for s in _issuing_cn_suffixes(template, count)]


def _prefix_limit(template: str, count: int) -> int:
    return MAX_COMMON_NAME - 1 - max(len(s) for s in ["Primary CA G1", *_issuing_cn_suffixes(template, count)])


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _default_name(organization: str) -> str:
    slug = _slug(organization)[:MAX_NAME_LENGTH - 4].strip("-")
    return f"{slug}-pki" if slug else "pki"


def _default_prefix(organization: str, limit: int) -> str:
    if len(organization) <= limit:
        return organization
    cut = organization[:limit + 1]
    cut = cut[:cut.rfind(" ")] if " " in cut[1:] else cut[:limit]
    return cut.rstrip(" ,.;:-") or organization[:limit]


# ---------------------------------------------------------------------------- checks of one answer
# Each takes the raw value (a string from a terminal or flag, or an already typed value) and
# the answers known so far; returns the normalised value or raises ValueError(reason).

def _text(value: Any, what: str, max_len: int) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError(f"{what} cannot be empty")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text):
        raise ValueError(f"{what} cannot contain control characters or line breaks")
    if len(text) > max_len:
        raise ValueError(f"{what} can have at most {max_len} characters, this has {len(text)}")
    return text


def _int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a whole number")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not re.fullmatch(r"[0-9]+", text):
            raise ValueError(f"{what} must be a whole number from {low} to {high}, got {text!r}")
        number = int(text)
    if not low <= number <= high:
        raise ValueError(f"{what} must be from {low} to {high}, got {number}")
    return number


def _algorithm(value: Any, what: str, allowed: list[str], why: str = "") -> str:
    text = str(getattr(value, "value", value)).strip()
    match = next((a for a in _ALL_ALGORITHMS if a.lower() == text.lower()), None)
    if match is None:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {text!r}")
    if match not in allowed:
        raise ValueError(f"{what} {match} is not available{why}: choose one of {', '.join(allowed)}")
    return match


def _template(v, ctx) -> str:
    text = str(v).strip().lower()
    if text not in TEMPLATES:
        raise ValueError(f"the template must be 'local' or 'hybrid', got {text!r}")
    return text


def _name(v, ctx) -> str:
    text = str(v).strip()
    if not re.fullmatch(NAME_PATTERN, text):
        raise ValueError(f"the ceremony name must be lower-case letters, digits and dashes, "
                         f"starting and ending with a letter or digit; got {text!r}")
    if len(text) > MAX_NAME_LENGTH:
        raise ValueError(f"the ceremony name can have at most {MAX_NAME_LENGTH} characters "
                         "(key labels are built from it)")
    return text


def _organization(v, ctx) -> str:
    return _text(v, "the organization", MAX_ORGANIZATION)


def _country(v, ctx) -> str:
    text = str(v).strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", text):
        raise ValueError(f"the country must be a two-letter ISO 3166 code such as US or DE, got {str(v).strip()!r}")
    return text


def _cn_prefix(v, ctx) -> str:
    text = _text(v, "the common-name prefix", MAX_COMMON_NAME)
    limit = _prefix_limit(ctx.get("template", "local"), ctx.get("issuing_cas", 1))
    if len(text) > limit:
        raise ValueError(f"the common-name prefix can have at most {limit} characters here, so that "
                         f"'{text} Primary CA G1' and the others fit in {MAX_COMMON_NAME}")
    return text


def _root_common_name(v, ctx) -> str:
    text = _text(v, "the root's common name", MAX_COMMON_NAME)
    prefix = ctx.get("cn_prefix") or ctx.get("organization")
    if prefix:
        others = subordinate_common_names(prefix, ctx.get("template", "local"), ctx.get("issuing_cas", MAX_ISSUING_CAS))
        if text.casefold() in {o.casefold() for o in others}:
            raise ValueError(f"'{text}' is the common name of a subordinate CA: every CA needs its own")
    return text


def _root_key_algorithm(v, ctx) -> str:
    return _algorithm(v, "the root key algorithm", _HSM_ALGORITHMS, " on an HSM")


def _root_validity_years(v, ctx) -> int:
    years = _int(v, "the root's validity in years", 2, MAX_YEARS)
    issuing = ctx.get("issuing_validity_years")
    if issuing is not None and issuing >= years:
        raise ValueError(f"the root must live longer than the issuing CAs ({issuing} years)")
    return years


def _issuing_cas(v, ctx) -> int:
    return _int(v, "the number of issuing CAs", 1, MAX_ISSUING_CAS)


def _issuing_validity_years(v, ctx) -> int:
    years = _int(v, "the issuing CAs' validity in years", 1, MAX_YEARS - 1)
    root = ctx.get("root_validity_years")
    if root is not None and years >= root:
        raise ValueError(f"second-level CAs must end strictly before the root and the primary "
                         f"({root} years): give fewer than {root} years")
    return years


def _primary_key_algorithm(v, ctx) -> str:
    if ctx.get("template") == "hybrid":
        return _algorithm(v, "the primary's key algorithm", _ALL_ALGORITHMS)
    return _algorithm(v, "the primary's key algorithm", _HSM_ALGORITHMS, " on an HSM")


def _issuing_key_algorithm(v, ctx) -> str:
    if ctx.get("template") == "hybrid":
        return _algorithm(v, "the issuing CAs' key algorithm", _ALL_ALGORITHMS)
    return _algorithm(v, "the issuing CAs' key algorithm", _HSM_ALGORITHMS, " on an HSM")


def _region(v, ctx) -> str:
    text = str(v).strip()
    if not _REGION.fullmatch(text):
        raise ValueError(f"an AWS region looks like us-east-1 or eu-central-1, got {text!r}")
    return text


def _profile(v, ctx) -> str | None:
    if v is None or str(v).strip() == "":
        return None
    return _text(v, "the AWS profile", 128)


def _module(v, ctx) -> str:
    return _text(v, "the PKCS#11 module path", 4096)


def _token(v, ctx) -> str:
    return _text(v, "the token label", 32)


def _env(what: str) -> Callable[[Any, dict], str]:
    def check(v, ctx) -> str:
        text = str(v).strip()
        if not _ENV_NAME.fullmatch(text):
            raise ValueError(f"{what} must be the NAME of an environment variable (letters, digits, "
                             f"underscores; not starting with a digit), got {text!r}. The PIN itself "
                             "never goes into the file")
        return text
    return check


# ---------------------------------------------------------------------------- the answers

def _hybrid(ctx: Mapping) -> bool:
    return ctx.get("template") == "hybrid"


def _local(ctx: Mapping) -> bool:
    return ctx.get("template") != "hybrid"


@dataclass(frozen=True)
class _Field:
    name: str
    check: Callable[[Any, dict], Any]
    default: Callable[[dict], Any]
    prompt: str | None            # None: never asked, only a flag or a default
    applies: Callable[[Mapping], bool] = lambda ctx: True
    choices: tuple[str, ...] = ()


# In the order they are settled: each default and check may use the answers above it.
FIELDS: list[_Field] = [
    _Field("template", _template, lambda c: "local",
           "Template: 'local' (every key on SoftHSM2 tokens in the workspace) or "
           "'hybrid' (root in AWS CloudHSM, subordinates in AWS Private CA)", choices=TEMPLATES),
    _Field("organization", _organization, lambda c: "Example Corp", "Organization (O) of every CA"),
    _Field("country", _country, lambda c: "US", "Country (C), two letters"),
    _Field("name", _name, lambda c: _default_name(c["organization"]),
           "Ceremony name (lower-case letters, digits, dashes)"),
    _Field("issuing_cas", _issuing_cas, lambda c: 3, f"Number of issuing CAs below the primary (1-{MAX_ISSUING_CAS})"),
    _Field("cn_prefix", _cn_prefix,
           lambda c: _default_prefix(c["organization"], _prefix_limit(c["template"], c["issuing_cas"])),
           "The organization is too long to begin every CA's common name: common-name prefix",
           applies=lambda c: len(c["organization"]) > _prefix_limit(c["template"], c["issuing_cas"])),
    _Field("root_common_name", _root_common_name,
           lambda c: f"{c.get('cn_prefix') or c['organization']} Root CA G1"[:MAX_COMMON_NAME].rstrip(),
           "Root CA common name (CN)"),
    _Field("root_key_algorithm", _root_key_algorithm, lambda c: "RSA_4096", "Root key algorithm",
           choices=tuple(_HSM_ALGORITHMS)),
    _Field("root_validity_years", _root_validity_years, lambda c: 10, "Root validity in years"),
    _Field("issuing_validity_years", _issuing_validity_years,
           lambda c: min(3, c["root_validity_years"] - 1),
           "Issuing CAs' validity in years (shorter than the root's)"),
    _Field("primary_key_algorithm", _primary_key_algorithm, lambda c: "RSA_2048",
           "Primary subordinate's key algorithm"),
    _Field("issuing_key_algorithm", _issuing_key_algorithm, lambda c: "EC_prime256v1",
           "Issuing CAs' key algorithm"),
    _Field("region", _region, lambda c: "us-east-1", "AWS region of Private CA", applies=_hybrid),
    _Field("profile", _profile, lambda c: None, None, applies=_hybrid),
    _Field("cloudhsm_module", _module, lambda c: DEFAULT_CLOUDHSM_MODULE,
           "CloudHSM PKCS#11 library (Client SDK 5)", applies=_hybrid),
    _Field("cloudhsm_token", _token, lambda c: "hsm1",
           "CloudHSM token label (see pkcs11-tool -L)", applies=_hybrid),
    _Field("root_pin_env", _env("the root token's PIN variable"), lambda c: "ROOT_HSM_PIN", None, applies=_local),
    _Field("online_pin_env", _env("the online token's PIN variable"), lambda c: "ONLINE_HSM_PIN", None,
           applies=_local),
    _Field("cloudhsm_pin_env", _env("the CloudHSM crypto user's PIN variable"), lambda c: "CLOUDHSM_CU_PIN",
           None, applies=_hybrid),
]
_BY_NAME = {f.name: f for f in FIELDS}


@dataclass(frozen=True)
class Answers:
    """Everything a template needs. Validated (and normalised) on construction: raises UsageError.

    `name`, `root_common_name` and `cn_prefix` default from the organization; fields a template
    does not use (`region` for local, `root_pin_env` for hybrid, ...) keep their defaults.
    """

    template: str = "local"
    name: str | None = None                     # default: "<organization slug>-pki"
    organization: str = "Example Corp"
    country: str = "US"
    root_common_name: str | None = None         # default: "<cn_prefix> Root CA G1"
    root_key_algorithm: str = "RSA_4096"
    root_validity_years: int = 10
    issuing_cas: int = 3
    issuing_validity_years: int = 3
    primary_key_algorithm: str = "RSA_2048"
    issuing_key_algorithm: str = "EC_prime256v1"
    region: str = "us-east-1"                   # hybrid
    profile: str | None = None                  # hybrid; None: boto3's default credentials
    cloudhsm_module: str = DEFAULT_CLOUDHSM_MODULE  # hybrid
    cloudhsm_token: str = "hsm1"                # hybrid
    root_pin_env: str = "ROOT_HSM_PIN"          # local
    online_pin_env: str = "ONLINE_HSM_PIN"      # local
    cloudhsm_pin_env: str = "CLOUDHSM_CU_PIN"   # hybrid
    cn_prefix: str | None = None                # start of the subordinates' CNs; default: the organization

    def __post_init__(self) -> None:
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        given = {k: v for k, v in given.items() if v is not None}
        ctx = _settle(given, {}, interactive=False, input_fn=None, print_fn=None, source="answer")
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, ctx.get(f.name, getattr(self, f.name)))

    # What the templates use ------------------------------------------------------------
    @property
    def issuing_names(self) -> list[str]:
        return issuing_names(self.template, self.issuing_cas)

    @property
    def prefix(self) -> str:
        return self.cn_prefix or self.organization


# ---------------------------------------------------------------------------- asking

def _problem(field: str, reason: str, source: str) -> UsageError:
    if source == "flag":
        return UsageError(f"--{field.replace('_', '-')}: {reason}", hint="fix the option, or leave it out to be asked")
    return UsageError(f"{field}: {reason}")


def _forward(fixed: Mapping[str, Any]) -> dict[str, Any]:
    """Fixed values that checks of earlier fields look ahead to (the root's years must exceed the
    issuing CAs'), type-normalised; an invalid one is left out and reported at its own turn."""
    value = fixed.get("issuing_validity_years")
    try:
        return {} if value is None else {"issuing_validity_years": _int(value, "", 1, MAX_YEARS)}
    except ValueError:
        return {}


def _settle(fixed: Mapping[str, Any], suggested: Mapping[str, Any], *, interactive: bool,
            input_fn, print_fn, source: str) -> dict:
    """Go through FIELDS in order: a fixed value is checked (UsageError if wrong); any other is
    asked when interactive (suggested or derived default in brackets) or takes its default."""
    ctx: dict[str, Any] = {}
    ahead = _forward(fixed)
    for f in FIELDS:
        if fixed.get(f.name) is not None:
            try:
                ctx[f.name] = f.check(fixed[f.name], {**ahead, **ctx})
            except ValueError as exc:
                raise _problem(f.name, str(exc), source) from None
            continue
        if not f.applies(ctx):
            continue
        default = suggested.get(f.name)
        if default is None:
            default = f.default(ctx)
        if interactive and f.prompt is not None:
            ctx[f.name] = _ask_one(f, default, {**ahead, **ctx}, input_fn, print_fn)
        elif default is not None:
            try:
                ctx[f.name] = f.check(default, {**ahead, **ctx})
            except ValueError as exc:
                raise _problem(f.name, f"the default does not fit: {exc}", "answer") from None
    return ctx


def _ask_one(f: _Field, default: Any, check_ctx: dict, input_fn, print_fn) -> Any:
    shown = "" if default is None else str(default)
    question = f.prompt + (f" ({', '.join(f.choices)})" if f.choices and f.name != "template" else "")
    for _ in range(MAX_ATTEMPTS):
        try:
            raw = input_fn(f"{question} [{shown}]: ")
        except EOFError:
            raise UsageError(f"no answer for '{f.name}' (end of input)",
                             hint="run 'pki-ceremony init --defaults' to take every default without questions") from None
        raw = (raw or "").strip()
        value = raw if raw else default
        if value is None:
            print_fn("  An answer is needed here.")
            continue
        try:
            return f.check(value, check_ctx)
        except ValueError as exc:
            print_fn(f"  Not accepted: {exc}. Please answer again.")
    raise UsageError(f"no acceptable answer for '{f.name}' after {MAX_ATTEMPTS} tries")


def _as_mapping(defaults: Answers | Mapping[str, Any] | None) -> dict[str, Any]:
    if defaults is None:
        return {}
    if isinstance(defaults, Answers):
        out = dataclasses.asdict(defaults)
        # Derived values follow the answers they come from unless they were set by hand.
        derived = Answers(**{**out, "name": None, "root_common_name": None, "cn_prefix": None})
        for k in ("name", "root_common_name", "cn_prefix"):
            if out[k] == getattr(derived, k):
                out[k] = None
        return {k: v for k, v in out.items() if v is not None}
    unknown = set(defaults) - set(_BY_NAME)
    if unknown:
        raise TypeError(f"unknown answer field(s): {', '.join(sorted(unknown))}")
    return {k: v for k, v in defaults.items() if v is not None}


INTRO = ("A few questions for a new ceremony file; press Enter to take the [default].\n"
         "No PIN is asked and none is written: the file names the environment variables that hold them.")


def ask(defaults: Answers | Mapping[str, Any] | None = None, input_fn: Callable[[str], str] = input,
        print_fn: Callable[..., None] = print) -> Answers:
    """Ask every question on a terminal, `defaults` (an Answers or a partial mapping) in brackets.

    An invalid answer is refused with the reason and the question asked again. Never asks for a
    PIN. Raises UsageError at end of input or after MAX_ATTEMPTS refused answers to one question."""
    print_fn(INTRO)
    ctx = _settle({}, _as_mapping(defaults), interactive=True, input_fn=input_fn, print_fn=print_fn,
                  source="answer")
    return Answers(**ctx)


def answers_from(flags: Mapping[str, Any], interactive: bool, input_fn: Callable[[str], str] = input,
                 print_fn: Callable[..., None] = print) -> Answers:
    """Answers from command-line flags; the rest asked when `interactive`, else their defaults.

    `flags` may be `vars(args)`: keys that are not Answers fields (file, force, yes, debug,
    command...) are ignored, and None means "not given". A given flag that is invalid raises
    UsageError naming it (`--country: ...`), whether interactive or not."""
    fixed = {k: v for k, v in flags.items() if k in _BY_NAME and v is not None}
    if interactive:
        print_fn(INTRO)
    ctx = _settle(fixed, {}, interactive=interactive, input_fn=input_fn, print_fn=print_fn, source="flag")
    return Answers(**ctx)


# ---------------------------------------------------------------------------- rendering

def yaml_str(value: Any) -> str:
    """`value` as one YAML scalar that reads back as the same string anywhere on a line, in block
    or flow context (`{a: ..., b: ...}`): plain when that is safe, otherwise double-quoted."""
    text = str(value)
    plain = yaml.safe_dump([text], default_flow_style=True, allow_unicode=True, width=2**30).strip()
    if plain.startswith("[") and plain.endswith("]"):
        inner = plain[1:-1]
        if inner and inner[0] not in "'\"" and "\n" not in inner and yaml.safe_load(f"[{inner}]") == [text]:
            return inner
    quoted = yaml.safe_dump(text, default_style='"', allow_unicode=True, width=2**30)
    quoted = quoted.removesuffix("\n...\n").strip()
    if "\n" in quoted or yaml.safe_load(f"{{k: {quoted}}}") != {"k": text}:  # pragma: no cover - PyYAML guarantees
        raise ValueError(f"cannot write {text!r} as a one-line YAML scalar")
    return quoted


def schema_path() -> Path:
    """The installed ceremony.schema.json."""
    return Path(str(importlib.resources.files("pki_ceremony.schemas") / "ceremony.schema.json")).resolve()


def schema_uri() -> str:
    return schema_path().as_uri()


def _template_source(name: str) -> str:
    return (importlib.resources.files("pki_ceremony") / "templates" / name).read_text(encoding="utf-8")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        trim_blocks=True, lstrip_blocks=True)
    env.filters["yaml_str"] = yaml_str
    return env


def _display_file(filename: str | os.PathLike | None, answers: Answers) -> str:
    text = str(filename) if filename is not None else f"{answers.name}.yaml"
    if not text or any(unicodedata.category(ch).startswith("C") for ch in text):
        text = f"{answers.name}.yaml"
    return shlex.quote(text)


def default_filename(answers: Answers) -> str:
    """Where `init` writes when no FILE is given: `<name>.yaml` in the current directory."""
    return f"{answers.name}.yaml"


def render(answers: Answers, *, filename: str | os.PathLike | None = None) -> str:
    """The ceremony file's text. `filename` is only shown in the how-to-run comment
    (default `<name>.yaml`). The result is checked against the ceremony model and rules."""
    a = Answers(**dataclasses.asdict(answers))  # re-validated, in case of a hand-made instance
    cns = subordinate_common_names(a.prefix, a.template, a.issuing_cas)
    root_key = KeyAlgorithm(a.root_key_algorithm)
    primary_key = KeyAlgorithm(a.primary_key_algorithm)
    issuing = [{"name": n, "common_name": cn, "label": f"{a.name}-{n}"}
               for n, cn in zip(a.issuing_names, cns[1:])]
    context = {
        "a": a,
        "schema_uri": schema_uri(),
        "file": _display_file(filename, a),
        "root_label": f"{a.name}-root-g1",
        "root_signing_algorithm": default_signing_algorithm(root_key).value,
        "primary": {"name": "primary", "common_name": cns[0], "label": f"{a.name}-primary-g1",
                    "signing_algorithm": default_signing_algorithm(primary_key).value},
        "issuing": issuing,
        "description": (
            f"Offline root, a primary subordinate with the root's validity, "
            f"{a.issuing_cas} issuing CA{'s' if a.issuing_cas > 1 else ''}, all on SoftHSM2 tokens."
            if a.template == "local" else
            f"Portable root in CloudHSM, a primary and {a.issuing_cas} second-level "
            f"subordinate{'s' if a.issuing_cas > 1 else ''} in AWS Private CA."),
    }
    text = _environment().get_template(f"{a.template}.yaml.j2").render(**context)
    _self_check(text)
    return text


def _self_check(text: str) -> None:
    """A template bug must not produce a file that `validate` refuses: check it here."""
    from pki_ceremony.schemas.ceremony import Ceremony
    from pki_ceremony.schemas.rules import check_hierarchy

    model = Ceremony.model_validate(yaml.safe_load(text))
    problems = check_hierarchy(model)
    if problems:
        raise RuntimeError(f"init template produced an invalid ceremony: {problems}")


# ---------------------------------------------------------------------------- writing

def write(path: str | os.PathLike, text: str, force: bool = False) -> Path:
    """Write `text` to `path` (mode 0644) atomically: a temporary file in the same directory,
    then renamed over. Refuses an existing file unless `force` (UsageError with a hint)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a directory", hint="give the path of the ceremony file to write")
    if (path.exists() or path.is_symlink()) and not force:
        raise UsageError(f"{path} already exists; not overwriting it",
                         hint="choose another file name, or pass --force to replace it")
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"the directory {parent} does not exist", hint="create it first, or choose another path")
    try:
        write_atomically(path, text.encode("utf-8"), 0o644, exclusive=not force)
    except FileExistsError:
        raise UsageError(f"{path} already exists; not overwriting it",
                         hint="choose another file name, or pass --force to replace it") from None
    return path


__all__ = ["Answers", "ask", "answers_from", "render", "write", "yaml_str", "schema_uri", "schema_path",
           "default_filename", "issuing_names", "TEMPLATES", "FIELDS"]
