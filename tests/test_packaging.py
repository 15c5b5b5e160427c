"""The built wheel: everything under one import name, and it works installed, away from the checkout.

The source tree keeps `engine/`, `steps/` and `schemas/` at the top level and maps them to
`pki_ceremony.engine`, `pki_ceremony.steps` and `pki_ceremony.schemas` (pyproject.toml,
[tool.setuptools] package-dir). These tests build the wheel with pip and check that:

  (a) it holds every file of those directories and of `pki_ceremony/` (modules, `rehearsal/`,
      `ceremony.schema.json` and any other data file such as templates), all under
      `pki_ceremony/`, and no top-level `engine`, `steps`, `schemas` (or anything else besides
      `pki_ceremony` and its metadata);
  (b) installed into a fresh virtual environment, its `pki-ceremony` validates the example
      ceremony from a directory outside the checkout, and the modules really come from the
      wheel: with `--system-site-packages`, the editable install of the checkout (if any) can
      supply a subpackage the wheel lacks, so every `pki_ceremony` module's file is checked, and
      if any comes from elsewhere the check is redone in a venv without system site packages
      (the wheel installed with its dependencies from the package index).

The wheel is built from a copy of the checkout: an in-tree setuptools build writes `build/`
and `*.egg-info` into the source directory, which others use, and a stale `build/lib` would
leak into the wheel. Needs the package index only when setuptools/wheel are missing here
(isolated build) or the fallback venv is used.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = {"pki_ceremony": "pki_ceremony", "engine": "pki_ceremony/engine", "steps": "pki_ceremony/steps",
               "schemas": "pki_ceremony/schemas"}
MUST_HAVE = ["pki_ceremony/__init__.py", "pki_ceremony/__main__.py", "pki_ceremony/cli.py", "pki_ceremony/app.py",
             "pki_ceremony/engine/__init__.py", "pki_ceremony/engine/state.py", "pki_ceremony/engine/executor.py",
             "pki_ceremony/steps/__init__.py", "pki_ceremony/schemas/__init__.py",
             "pki_ceremony/schemas/ceremony.schema.json", "pki_ceremony/rehearsal/__init__.py"]
COPY_IGNORE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", "*-workspace", ".venv",
                                     "venv", ".pytest_cache", ".benchmarks", "*.pyc")
TIMEOUT = 300


def _env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")
           and not k.endswith("_PIN") and not k.startswith("PKI_CEREMONY_")}
    env["PYTHONNOUSERSITE"] = "1"
    env.update(extra)
    return env


def _run(args, *, cwd, timeout=TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def _build_requirements_met() -> bool:
    """True if this interpreter has what [build-system] requires (then no isolated build is needed)."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        from packaging.requirements import Requirement
    except ImportError:
        return False
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    for text in requires:
        req = Requirement(text)
        try:
            if not req.specifier.contains(version(req.name), prereleases=True):
                return False
        except PackageNotFoundError:
            return False
    return True


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("packaging")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=COPY_IGNORE)
    out = base / "wheelhouse"
    args = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-w", out, src]
    if _build_requirements_met():
        args.insert(5, "--no-build-isolation")
    r = _run(args, cwd=base)
    if r.returncode != 0 and "installing build dependencies" in (r.stdout + r.stderr) and \
            "--no-build-isolation" not in args:
        pytest.skip("the isolated build environment could not be provisioned (package index unreachable?):\n"
                    + r.stderr[-1500:])
    assert r.returncode == 0, f"pip wheel failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    wheels = sorted(out.glob("pki_ceremony-*.whl"))
    assert len(wheels) == 1, f"expected one pki_ceremony wheel in {out}: {sorted(p.name for p in out.iterdir())}"
    return wheels[0]


def _expected_files() -> set[str]:
    """Every file of the source package directories (modules and data: JSON schemas, templates...)."""
    expected = set(MUST_HAVE)
    for src_dir, target in SOURCE_DIRS.items():
        for p in (ROOT / src_dir).rglob("*"):
            rel = p.relative_to(ROOT / src_dir)
            if p.is_file() and "__pycache__" not in rel.parts and not p.name.endswith((".pyc", ".pyo")) \
                    and not any(part.startswith(".") for part in rel.parts):
                expected.add(f"{target}/{rel.as_posix()}")
    return expected


def _package_paths(names: list[str]) -> list[str]:
    """Wheel entries as installed paths: `<name>.data/purelib|platlib/x` counts as `x`."""
    out = []
    for n in names:
        m = re.match(r"^[^/]+\.data/(purelib|platlib)/(.*)$", n)
        out.append(m.group(2) if m else n)
    return out


def test_wheel_has_everything_under_pki_ceremony(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        dist_info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
        top_level = zf.read(f"{dist_info}/top_level.txt").decode().split() \
            if f"{dist_info}/top_level.txt" in names else None
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode() \
            if f"{dist_info}/entry_points.txt" in names else ""
    paths = _package_paths(names)

    missing = sorted(_expected_files() - set(paths))
    assert not missing, f"{wheel.name} lacks {missing}"

    tops = {p.split("/")[0] for p in paths if "/" in p} | {p for p in paths if "/" not in p}
    stray = sorted(t for t in tops if t != "pki_ceremony" and not t.endswith((".dist-info", ".data")))
    assert not stray, f"{wheel.name} installs top-level names other than pki_ceremony: {stray}"
    for name in ("engine", "steps", "schemas", "tests", "bench"):
        assert not any(p == name or p.startswith(name + "/") for p in paths), f"top-level {name}/ in {wheel.name}"
    if top_level is not None:
        assert top_level == ["pki_ceremony"], f"top_level.txt: {top_level}"
    assert re.search(r"^pki-ceremony\s*=\s*pki_ceremony\.cli:main\s*$", entry_points, re.M), entry_points

    with zipfile.ZipFile(wheel) as zf:
        schema = json.loads(zf.read("pki_ceremony/schemas/ceremony.schema.json"))
    assert schema.get("title") or schema.get("properties"), "ceremony.schema.json is not a JSON Schema"


# Run in the venv, from outside the checkout: import everything, validate the example through the CLI's
# own entry function, and report where every pki_ceremony module was loaded from.
PROBE = r"""
import importlib, importlib.resources, importlib.util, json, sys
import pki_ceremony, pki_ceremony.engine, pki_ceremony.steps, pki_ceremony.schemas
import pki_ceremony.rehearsal, pki_ceremony.cli, pki_ceremony.steps.hsm_steps
tops = {name: importlib.util.find_spec(name) is not None for name in ("engine", "steps", "schemas")}
schema = importlib.resources.files("pki_ceremony.schemas").joinpath("ceremony.schema.json").read_text()
json.loads(schema)
code = pki_ceremony.cli.run(["validate", sys.argv[1]])
mods = {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())
        if n == "pki_ceremony" or n.startswith("pki_ceremony.")}
print("PROBE " + json.dumps({"tops": tops, "validate": code, "modules": mods, "prefix": sys.prefix}))
"""


def _venv(path: Path, system_site: bool) -> Path:
    args = [sys.executable, "-m", "venv", path] + (["--system-site-packages"] if system_site else [])
    r = _run(args, cwd=path.parent)
    assert r.returncode == 0, f"venv creation failed:\n{r.stderr}"
    return path / "bin"


def _probe(bindir: Path, cwd: Path) -> dict:
    r = _run([bindir / "python", "-c", PROBE, ROOT / "ceremonies" / "local.yaml"], cwd=cwd)
    assert r.returncode == 0, f"importing from the installed wheel failed:\n{r.stdout}\n{r.stderr[-3000:]}"
    line = next(x for x in r.stdout.splitlines() if x.startswith("PROBE "))
    return json.loads(line[len("PROBE "):])


def _foreign(probe: dict, venv: Path) -> dict[str, str]:
    """pki_ceremony modules not loaded from the venv's own site-packages."""
    site = [str(p) for p in venv.glob("lib/python*/site-packages")]
    return {n: f for n, f in probe["modules"].items()
            if f is None or not any(os.path.realpath(f).startswith(os.path.realpath(s) + os.sep) for s in site)}


def test_installed_wheel_runs_outside_the_checkout(wheel, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert ROOT not in outside.resolve().parents

    venv = tmp_path / "venv"
    bindir = _venv(venv, system_site=True)
    r = _run([bindir / "python", "-m", "pip", "install", "--disable-pip-version-check", "--no-deps",
              "--ignore-installed", "--no-index", wheel], cwd=outside)
    assert r.returncode == 0, f"installing the wheel failed:\n{r.stdout}\n{r.stderr}"
    probe = _probe(bindir, outside)
    foreign = _foreign(probe, venv)
    if foreign:
        # The system's site-packages (e.g. the editable install of this checkout) supplied modules the
        # wheel should have: judge the wheel alone, in a venv that cannot see them.
        venv = tmp_path / "venv-isolated"
        bindir = _venv(venv, system_site=False)
        r = _run([bindir / "python", "-m", "pip", "install", "--disable-pip-version-check", wheel], cwd=outside)
        assert r.returncode == 0, (f"installing the wheel with its dependencies failed (modules had come from "
                                   f"outside the first venv: {foreign}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
        probe = _probe(bindir, outside)
        foreign = _foreign(probe, venv)
    assert not foreign, f"modules loaded from outside the venv: {foreign}"
    assert probe["tops"] == {"engine": False, "steps": False, "schemas": False}, \
        f"top-level packages importable in the venv: {probe['tops']}"
    assert probe["validate"] == 0

    # The console script, as a user runs it.
    r = _run([bindir / "pki-ceremony", "validate", ROOT / "ceremonies" / "local.yaml"], cwd=outside)
    assert r.returncode == 0, f"pki-ceremony validate failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert "valid ceremony" in r.stdout, r.stdout
    # And the import check exactly as a user would type it.
    r = _run([bindir / "python", "-c", "import pki_ceremony.engine, pki_ceremony.steps, pki_ceremony.schemas; "
              "import importlib.util; assert importlib.util.find_spec('engine') is None"], cwd=outside)
    assert r.returncode == 0, r.stderr
