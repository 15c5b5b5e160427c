"""`apply ceremonies/local.yaml` on real SoftHSM, judged as a PKI engineer would judge it."""
from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509

from ceremony_support import CeremonyDir, make_ceremony_dir, verify_all_chains

SUBORDINATES = ["issuing-a", "issuing-b", "issuing-c", "primary"]


@pytest.fixture(scope="module")
def applied(tmp_path_factory) -> tuple[CeremonyDir, subprocess.CompletedProcess]:
    cd = make_ceremony_dir(tmp_path_factory.mktemp("applied"), "local.yaml")
    return cd, cd.apply()


def load(p: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(p.read_bytes())


def test_apply_succeeds_and_every_chain_verifies_strictly(applied):
    cd, r = applied
    assert r.returncode == 0, r.stderr
    verdicts = verify_all_chains(cd)
    assert sorted(verdicts) == SUBORDINATES
    assert verdicts == {name: "OK" for name in SUBORDINATES}


def test_chains_verify_with_cryptography_verifier(applied):
    from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store

    cd, _ = applied
    certs = {n: load(p) for n, p in cd.certificates().items()}
    verifier = (PolicyBuilder().store(Store([certs["root"]]))
                .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                                    ee_policy=ExtensionPolicy.permit_all()).build_client_verifier())
    for name in ("issuing-a", "issuing-b", "issuing-c"):
        chain = verifier.verify(certs[name], [certs["primary"]])
        assert [c.subject for c in chain.chain] == [certs[name].subject, certs["primary"].subject,
                                                                certs["root"].subject]


def test_profile_of_every_ca_certificate(applied):
    cd, _ = applied
    certs = {n: load(p) for n, p in cd.certificates().items()}
    expected_path_len = {"root": None, "primary": 1, "issuing-a": 0, "issuing-b": 0, "issuing-c": 0}
    issuer_of = {"primary": "root", "issuing-a": "primary", "issuing-b": "primary", "issuing-c": "primary"}
    for name, cert in certs.items():
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical and bc.value.ca and bc.value.path_length == expected_path_len[name], name
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and ku.value.digital_signature
        assert not ku.value.key_encipherment
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        issuer = certs[issuer_of.get(name, "root")]
        assert aki.key_identifier == issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        assert cert.serial_number > 0 and cert.serial_number.bit_length() >= 64 + 1
    assert certs["primary"].not_valid_after_utc == certs["root"].not_valid_after_utc
    for name in ("issuing-a", "issuing-b", "issuing-c"):
        assert certs[name].not_valid_after_utc < certs["primary"].not_valid_after_utc
    assert len({c.serial_number for c in certs.values()}) == len(certs)


def test_keys_on_tokens_have_the_promised_attributes_and_one_private_key_per_ca(applied):
    cd, _ = applied
    tokens = cd.tokens()
    private = {t: [o for o in objs if o["class"] == "PRIVATE_KEY"] for t, objs in tokens.items()}
    assert [o["label"] for o in private["root"]] == ["example-root-g1"]
    assert sorted(o["label"] for o in private["online"]) == [f"example-corp-pki-{n}" for n in SUBORDINATES]
    for objs in private.values():
        for key in objs:
            assert key["TOKEN"] and key["PRIVATE"] and key["SENSITIVE"], key
            assert not key["EXTRACTABLE"] and key["NEVER_EXTRACTABLE"] and key["ALWAYS_SENSITIVE"], key
            assert key["SIGN"] and not key["DECRYPT"] and not key["UNWRAP"] and not key["DERIVE"], key
    # Each subordinate's certificate is stored beside its key (same CKA_ID), byte for byte.
    certs_on_token = {o["label"]: o for o in tokens["online"] if o["class"] == "CERTIFICATE"}
    keys = {o["label"]: o for o in private["online"]}
    for name in SUBORDINATES:
        label = f"example-corp-pki-{name}"
        assert certs_on_token[label]["id"] == keys[label]["id"]
        der = load(cd.certificates()[name]).public_bytes(__import__("cryptography.hazmat.primitives.serialization",
                                                                     fromlist=["x"]).Encoding.DER)
        assert bytes.fromhex(certs_on_token[label]["der"]) == der


def _digest_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "apply.lock"}


def _serial(cd: CeremonyDir) -> int:
    db = sqlite3.connect(f"file:{cd.workspace / 'state.db'}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT value FROM meta WHERE key='serial'").fetchone()[0])
    finally:
        db.close()


def test_second_apply_does_nothing_and_changes_nothing(applied):
    cd, _ = applied
    before_objects = cd.tokens()  # first: a login rewrites SoftHSM's token.object files
    before_files, before_serial = _digest_tree(cd.workspace), _serial(cd)
    r = cd.apply()
    assert r.returncode == 0, r.stderr
    assert "Nothing to do" in r.stdout
    assert "0 to create" in r.stdout and "18 done" in r.stdout
    assert _digest_tree(cd.workspace) == before_files
    assert cd.tokens() == before_objects
    assert _serial(cd) == before_serial


def test_no_pin_anywhere_in_workspace_or_output(applied):
    cd, r = applied
    pins = [p.encode() for p in cd.pins.values()]
    leaks = [str(p) for p in cd.workspace.rglob("*") if p.is_file() and any(pin in p.read_bytes() for pin in pins)]
    assert leaks == []
    assert not any(pin.decode() in r.stdout + r.stderr for pin in pins)


def test_pins_never_reach_argv_of_any_process(tmp_path):
    cd = make_ceremony_dir(tmp_path, "local.yaml")
    proc = subprocess.Popen([os.sys.executable, "-m", "pki_ceremony", "apply", str(cd.file), "--yes"], cwd=cd.dir,
                            env=cd.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: set[bytes] = set()
    while proc.poll() is None:
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    seen.add(Path(f"/proc/{pid}/cmdline").read_bytes())
                except OSError:
                    pass
        time.sleep(0.01)
    assert proc.returncode == 0, proc.stderr.read()
    assert any(b"pki_ceremony" in c for c in seen)  # the sampler did see the apply
    assert not [c for c in seen if any(p.encode() in c for p in cd.pins.values())]


def test_status_shows_the_tree(applied):
    cd, _ = applied
    r = cd.cli("status", str(cd.file))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].startswith("root: Example Corp Root CA G1 [RSA_4096")
    assert any(line.lstrip(" │").startswith("└── issuing-c") or "issuing-c" in line for line in lines)
    assert sum("complete" in line for line in lines) == 5
