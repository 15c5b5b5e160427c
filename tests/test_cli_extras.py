"""The CLI's smaller promises: init writes a file that validates, completion code, boto3 only for AWS."""
from __future__ import annotations

import subprocess
import sys

from ceremony_support import EXAMPLES, clean_env


def run(*args, cwd, **kw):
    return subprocess.run([sys.executable, "-m", "pki_ceremony", *args], cwd=cwd, capture_output=True, text=True,
                          env=clean_env(), stdin=subprocess.DEVNULL, **kw)


def test_init_writes_a_ceremony_that_validates_and_never_overwrites(tmp_path):
    r = run("init", "mine.yaml", "--defaults", "--organization", 'Acme "Labs": #1', "--country", "de",
            "--issuing-cas", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "mine.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=file://")
    assert "{env: ROOT_HSM_PIN}" in text  # a PIN source, never a PIN
    v = run("validate", "mine.yaml", cwd=tmp_path)
    assert v.returncode == 0 and "4 CAs" in v.stdout, v.stdout + v.stderr
    again = run("init", "mine.yaml", "--defaults", cwd=tmp_path)
    assert again.returncode == 2 and (tmp_path / "mine.yaml").read_text() == text
    hybrid = run("init", "hybrid.yaml", "--defaults", "--template", "hybrid", "--region", "eu-west-1", cwd=tmp_path)
    assert hybrid.returncode == 0 and run("validate", "hybrid.yaml", cwd=tmp_path).returncode == 0


def test_completion_code_for_each_shell(tmp_path):
    for shell in ("bash", "zsh", "fish"):
        r = run("completion", shell, cwd=tmp_path)
        assert r.returncode == 0 and "pki-ceremony" in r.stdout and len(r.stdout) > 200, shell


def test_validate_never_imports_boto3_even_for_aws_ceremonies(tmp_path):
    probe = ("import sys, runpy; sys.argv = ['pki-ceremony', 'validate', sys.argv[1]]\n"
             "try:\n    runpy.run_module('pki_ceremony', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print('BOTO3' if 'boto3' in sys.modules else 'NO-BOTO3')")
    for name, expected in (("local.yaml", "NO-BOTO3"), ("hybrid-cloudhsm-pca.yaml", "NO-BOTO3")):
        r = subprocess.run([sys.executable, "-c", probe, str(EXAMPLES / name)], capture_output=True, text=True,
                           env=clean_env())
        assert r.stdout.strip().endswith(expected), (name, r.stdout, r.stderr)


def test_the_engine_imports_neither_pkcs11_nor_boto3():
    probe = ("import sys, pkgutil, importlib, pki_ceremony.engine as e\n"
             "for m in pkgutil.iter_modules(e.__path__):\n    importlib.import_module(f'pki_ceremony.engine.{m.name}')\n"
             "print(sorted(n for n in ('pkcs11', 'boto3', 'botocore') if n in sys.modules))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=clean_env())
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
