"""Operating a ceremony: the workspace lock, drift, --replace, a wrong PIN, tampered artifacts."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509

from ceremony_support import CeremonyDir, verify_all_chains

SPY = next((p for p in ("/usr/lib/x86_64-linux-gnu/pkcs11-spy.so", "/usr/lib/aarch64-linux-gnu/pkcs11-spy.so",
                        "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so") if Path(p).exists()), None)


def test_second_concurrent_apply_is_refused_with_the_lock_holder_while_the_first_completes(local_ceremony):
    cd = local_ceremony
    first = subprocess.Popen([sys.executable, "-m", "pki_ceremony", "apply", str(cd.file), "--yes"], cwd=cd.dir,
                             env=cd.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = cd.workspace / "apply.lock"
    deadline = time.monotonic() + 30
    while not (lock.exists() and lock.read_text().startswith("pid")):
        assert time.monotonic() < deadline and first.poll() is None, "the first apply never took the lock"
        time.sleep(0.005)
    os.kill(first.pid, signal.SIGSTOP)  # hold it mid-ceremony, deterministically
    try:
        second = cd.apply()
    finally:
        os.kill(first.pid, signal.SIGCONT)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 4
    assert re.search(rf"locked by pid {first.pid} on host \S+ since \d{{4}}-\d\d-\d\dT", second.stderr), second.stderr
    assert verify_all_chains(cd) == {n: "OK" for n in ("issuing-a", "issuing-b", "issuing-c", "primary")}
    private = [o for objs in cd.tokens().values() for o in objs if o["class"] == "PRIVATE_KEY"]
    assert len(private) == 5


@pytest.fixture
def applied(local_ceremony) -> CeremonyDir:
    r = local_ceremony.apply()
    assert r.returncode == 0, r.stderr
    return local_ceremony


def test_changed_ceremony_file_is_drift_and_apply_refuses_then_replace_remakes(applied):
    cd = applied
    old_cert = cd.certificates()["issuing-c"].read_bytes()
    text = cd.file.read_text()
    cd.file.write_text(text.replace("validity: {months: 18}", "validity: {months: 12}"))

    plan = cd.cli("plan", str(cd.file))
    assert plan.returncode == 0, plan.stderr
    assert re.search(r"~ issuing-c/certificate .*\n.*drifted: finished, but its inputs changed since\n"
                     r".*changed: validity.months", plan.stdout), plan.stdout
    assert re.search(r"! issuing-c/import", plan.stdout)
    assert "1 drifted, 1 blocked" in plan.stdout

    refused = cd.apply()
    assert refused.returncode == 3 and "drifted" in refused.stderr
    assert cd.certificates()["issuing-c"].read_bytes() == old_cert

    replaced = cd.apply("--replace", "issuing-c/certificate")
    assert replaced.returncode == 0, replaced.stderr
    new = x509.load_pem_x509_certificate(cd.certificates()["issuing-c"].read_bytes())
    months = (new.not_valid_after_utc.year - new.not_valid_before_utc.year) * 12 + \
        new.not_valid_after_utc.month - new.not_valid_before_utc.month
    assert months == 12
    superseded = list((cd.workspace / "superseded").rglob("issuing-c/certificate.pem"))
    assert [p.read_bytes() for p in superseded] == [old_cert]  # kept, not overwritten
    assert verify_all_chains(cd)["issuing-c"] == "OK"
    certs_on_token = [o for o in cd.tokens()["online"] if o["class"] == "CERTIFICATE"
                      and o["label"] == "example-corp-pki-issuing-c"]
    assert len(certs_on_token) == 1 and bytes.fromhex(certs_on_token[0]["der"]) == new.public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).Encoding.DER)
    assert "Nothing to do" in cd.apply().stdout


def test_a_new_subordinate_is_added_to_a_finished_ceremony(applied):
    cd = applied
    text = cd.file.read_text()
    cd.file.write_text(text + """
    - name: issuing-d
      issuer: primary
      backend: {type: local, hsm: online-hsm}
      key: {algorithm: EC_secp384r1}
      subject: {country: US, organization: Example Corp, common_name: Example Corp Issuing CA D}
      validity: {years: 2}
      path_len: 0
""")
    plan = cd.cli("plan", str(cd.file))
    assert "Plan: 4 to create, 18 done." in plan.stdout, plan.stdout
    r = cd.apply()
    assert r.returncode == 0, r.stderr
    assert "4 steps run" in r.stdout
    assert verify_all_chains(cd)["issuing-d"] == "OK"


def test_wrong_pin_fails_once_without_retry_and_without_echoing_it(applied, tmp_path):
    assert SPY, "OpenSC's pkcs11-spy (package opensc, installed by .ci/run) is needed to count logins"
    cd = applied
    cd.file.write_text(cd.file.read_text().replace("validity: {months: 18}", "validity: {months: 12}"))
    wrong = "8" + "31415926535"
    spy_log = tmp_path / "spy.log"
    from pki_ceremony.steps.softhsm import softhsm_module

    env = cd.env(ONLINE_HSM_PIN=wrong, PKI_CEREMONY_SOFTHSM_MODULE=SPY, PKCS11SPY=softhsm_module(),
                 PKCS11SPY_OUTPUT=str(spy_log))
    r = cd.apply("--replace", "issuing-c/certificate", env=env)
    assert r.returncode == 5, (r.stdout, r.stderr)
    assert "PIN for token 'online'" in r.stderr and "not retried" in r.stderr
    assert wrong not in r.stdout + r.stderr
    logins = spy_log.read_text(errors="replace").count("C_Login")
    assert logins == 1  # one attempt, never a second
    assert not (cd.workspace / "artifacts" / "issuing-c" / "certificate.pem").read_bytes() == b""
    assert cd.apply("--replace", "issuing-c/certificate").returncode == 0


def test_tampered_artifact_is_reported_not_overwritten(applied):
    cd = applied
    victim = cd.certificates()["issuing-b"]
    victim.write_bytes(victim.read_bytes().replace(b"MII", b"MIJ", 1))
    plan = cd.cli("plan", str(cd.file))
    assert "changed by hand" in plan.stdout and "issuing-b/certificate.pem" in plan.stdout
    r = cd.apply()
    assert r.returncode == 1 and "issuing-b/certificate.pem" in r.stderr
    assert b"MIJ" in victim.read_bytes()


def test_missing_artifact_is_rewritten_from_the_state(applied):
    cd = applied
    victim = cd.certificates()["primary"]
    content = victim.read_bytes()
    victim.unlink()
    r = cd.apply()
    assert r.returncode == 0, r.stderr
    assert victim.read_bytes() == content


def test_replacing_a_key_under_the_same_label_is_refused_and_leaves_the_ceremony_as_it_was(applied):
    cd = applied
    r = cd.apply("--replace", "issuing-b/key")
    assert r.returncode == 1 and "a new key needs a new label" in r.stderr
    again = cd.apply()
    assert again.returncode == 0 and "Nothing to do" in again.stdout  # not stuck


def test_destructive_step_waits_for_every_step_that_needs_its_resource():
    from pki_ceremony.engine.graph import CeremonyGraph, StepNode
    from pki_ceremony.engine.plan import Action, make_plan

    g = CeremonyGraph()
    g.add(StepNode("root/key", "k", "root", "key", {}, resources=("hsm:root",)))
    g.add(StepNode("custody/teardown", "teardown", "custody", "teardown", {}, {"key": "root/key"},
                   resources=("hsm:root",)))
    g.add(StepNode("extra/sign", "sign", "extra", "sign", {}, {"key": "root/key"}, resources=("hsm:root",)))
    plan = make_plan(g, None, destructive_kinds=["teardown"])
    teardown = plan.by_id("custody/teardown")
    assert teardown.action is Action.BLOCKED and "extra/sign" in teardown.reason
    g2 = CeremonyGraph()
    g2.add(StepNode("root/key", "k", "root", "key", {}, resources=("hsm:root",)))
    g2.add(StepNode("extra/sign", "sign", "extra", "sign", {}, {"key": "root/key"}, resources=("hsm:root",)))
    g2.add(StepNode("custody/teardown", "teardown", "custody", "teardown", {}, {"after": "extra/sign"},
                    resources=("hsm:root",)))
    assert make_plan(g2, None, destructive_kinds=["teardown"]).by_id("custody/teardown").action is Action.CREATE


def test_parallel_local_apply_serialises_pkcs11_and_builds_the_same_hierarchy(local_ceremony):
    cd = local_ceremony
    r = cd.apply("--parallel", "4")
    assert r.returncode == 0, r.stderr
    assert verify_all_chains(cd) == {n: "OK" for n in ("issuing-a", "issuing-b", "issuing-c", "primary")}
    private = sorted(o["label"] for objs in cd.tokens().values() for o in objs if o["class"] == "PRIVATE_KEY")
    assert len(private) == len(set(private)) == 5
