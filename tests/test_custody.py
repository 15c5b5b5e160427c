"""Root custody on real SoftHSM: backup and teardown, restore for a CRL, export to another HSM."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from cryptography import x509

from ceremony_support import EXAMPLES, TOOLS, CeremonyDir, clean_env, make_ceremony_dir, softhsm_module, verify_all_chains

PINS = {"ROOT_HSM_PIN": "7" + "1" * 11, "ROOT_HSM_SO_PIN": "7" + "2" * 11, "ONLINE_HSM_PIN": "7" + "3" * 11,
        "ESCROW_HSM_PIN": "7" + "4" * 11}


def pki(tmp_path: Path) -> CeremonyDir:
    """local-offline-root.yaml with its two root ceremonies beside it."""
    cd = make_ceremony_dir(tmp_path, "local-offline-root.yaml")
    for name in ("root-crl.yaml", "root-export.yaml", "root-new-subordinate.yaml"):
        shutil.copy(EXAMPLES / name, cd.dir / name)
    cd.pins = dict(PINS)
    return cd


def live_tokens(cd: CeremonyDir) -> dict[str, list[dict]]:
    pins = {"root": PINS["ROOT_HSM_PIN"], "online": PINS["ONLINE_HSM_PIN"], "escrow": PINS["ESCROW_HSM_PIN"]}
    conf = cd.workspace / "softhsm" / "softhsm2.conf"
    r = subprocess.run([sys.executable, str(TOOLS / "inspect_tokens.py"), softhsm_module()], input=json.dumps(pins),
                       capture_output=True, text=True, env=clean_env(SOFTHSM2_CONF=str(conf)))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def archives(cd: CeremonyDir) -> list[Path]:
    return sorted((cd.dir / "local-offline-root-backups").glob("*.tar.gz"))


@pytest.fixture
def offline(tmp_path) -> CeremonyDir:
    cd = pki(tmp_path)
    r = cd.apply(timeout=600)
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
    return cd


def test_ceremony_ends_with_the_root_archived_verified_and_removed(offline):
    cd = offline
    assert verify_all_chains(cd) == {n: "OK" for n in ("issuing-a", "issuing-b", "issuing-c", "primary")}
    tokens = live_tokens(cd)
    assert "root" not in tokens and "online" in tokens  # the root's token is gone, the online one stays
    [archive] = archives(cd)
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("MANIFEST.json").read())
        names = {m.name for m in tar.getmembers()}
    assert manifest["token"] == "root" and {f"{manifest['folder']}/{f['name']}" for f in manifest["files"]} | {
        "MANIFEST.json"} == names
    assert json.loads((cd.workspace / "artifacts" / "custody" / "backup-manifest.json").read_text()) == manifest
    plan = cd.cli("plan", str(cd.file)).stdout
    assert "Nothing to do" in plan


def test_teardown_is_planned_as_destructive_and_needs_confirmation(tmp_path):
    cd = pki(tmp_path)
    plan = cd.cli("plan", str(cd.file)).stdout
    assert "custody/teardown" in plan and "[destructive]" in plan.split("custody/teardown")[1].splitlines()[0]
    r = cd.cli("apply", str(cd.file))  # no --yes, no terminal: refused before anything
    assert r.returncode == 3 and not cd.workspace.exists()


def test_teardown_without_a_verified_backup_is_refused_and_changes_nothing(tmp_path):
    cd = pki(tmp_path)
    crashed = cd.apply(env=cd.env(PKI_CEREMONY_TEST_CRASH="custody/teardown:before-intent"), timeout=600)
    assert crashed.returncode == -signal.SIGKILL
    [archive] = archives(cd)
    archive.write_bytes(archive.read_bytes()[:-100])  # the verified archive is no longer what was verified
    r = cd.apply()
    assert r.returncode == 1 and "no verified backup" in r.stderr and "custody/teardown" in r.stderr
    assert "root" in live_tokens(cd)  # the root's token is still there
    assert "custody/teardown" not in [e["step"] for e in map(json.loads, (cd.workspace / "ceremony-log.jsonl")
                                                             .read_text().splitlines()) if e["event"] == "finished"]
    archive.unlink()
    r = cd.apply()
    assert r.returncode == 1 and "is missing" in r.stderr and "root" in live_tokens(cd)


def test_root_crl_restores_the_root_signs_a_crl_and_removes_it_again(offline):
    cd = offline
    env = cd.env()
    del env["ROOT_HSM_SO_PIN"]  # a CRL needs no security officer
    r = cd.cli("apply", "root-crl.yaml", "--yes", env=env)
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
    assert "root" not in live_tokens(cd)
    root = cd.workspace / "artifacts" / "root" / "certificate.pem"
    crl = cd.workspace / "artifacts" / "root-crl-1" / "crl-1.pem"
    v = subprocess.run(["openssl", "crl", "-in", str(crl), "-CAfile", str(root), "-noout"], capture_output=True,
                       text=True)
    assert v.returncode == 0 and "verify OK" in v.stdout + v.stderr
    lint = subprocess.run([str(Path(sys.executable).parent / "lint_crl"), "lint", "-t", "CRL", "-p", "PKIX", "-s",
                           "WARNING", str(crl)], capture_output=True, text=True)
    assert lint.returncode == 0 and lint.stdout.strip() == "", lint.stdout + lint.stderr
    first = x509.load_pem_x509_crl(crl.read_bytes())
    assert first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
    assert first.next_update_utc - first.last_update_utc == __import__("datetime").timedelta(days=180)
    # A second CRL ceremony revokes the primary (by its certificate file): the number only grows.
    primary = cd.workspace / "artifacts" / "primary" / "certificate.pem"
    (cd.dir / "root-crl-2.yaml").write_text((cd.dir / "root-crl.yaml").read_text()
                                            .replace("name: root-crl-1", "name: root-crl-2")
                                            .replace("revoked: []", f"revoked: [{{certificate: {primary}, "
                                                                    "reason: superseded}]"))
    r = cd.cli("apply", "root-crl-2.yaml", "--yes")
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
    second = x509.load_pem_x509_crl((cd.workspace / "artifacts" / "root-crl-2" / "crl-2.pem").read_bytes())
    assert second.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
    revoked = second.get_revoked_certificate_by_serial_number(
        x509.load_pem_x509_certificate(primary.read_bytes()).serial_number)
    assert revoked is not None
    assert revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.superseded
    assert "root" not in live_tokens(cd)
    assert cd.cli("apply", "root-crl-2.yaml", "--yes").stdout.count("Nothing to do") == 1
    # Made anew (restore, CRL, teardown): the replaced CRL's number counts, so this one is 3.
    again = cd.cli("apply", "root-crl-2.yaml", "--yes", "--replace", "root-crl-2/restore")
    assert again.returncode == 0, again.stdout[-1500:] + again.stderr[-1500:]
    third = x509.load_pem_x509_crl((cd.workspace / "artifacts" / "root-crl-2" / "crl-3.pem").read_bytes())
    assert third.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 3
    assert "root" not in live_tokens(cd)


def test_export_copies_the_root_to_another_token_that_signs_as_the_root(offline):
    cd = offline
    r = cd.cli("apply", "root-export.yaml", "--yes")
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
    tokens = live_tokens(cd)
    assert "root" not in tokens
    escrow = {o["class"]: o for o in tokens["escrow"]}
    assert set(escrow) == {"PRIVATE_KEY", "PUBLIC_KEY"}  # no wrapping key left behind
    key = escrow["PRIVATE_KEY"]
    assert key["label"] == "example-root-g1" and key["PRIVATE"] and key["SENSITIVE"] and key["SIGN"]
    assert not key["EXTRACTABLE"] and not key["DECRYPT"]
    # The ceremony's own proof, and a certificate signed on the escrow token, verify under the root.
    proof = cd.workspace / "artifacts" / "root-export-1"
    assert (proof / "export-proof.txt").read_text().startswith("pki-ceremony export proof")
    import sqlite3

    outputs = json.loads(sqlite3.connect(cd.workspace / "state.db").execute(
        "select outputs from steps where id='root-export-1/export'").fetchone()[0])
    root = cd.workspace / "artifacts" / "root" / "certificate.pem"
    conf = cd.workspace / "softhsm" / "softhsm2.conf"
    signed = subprocess.run([sys.executable, str(TOOLS / "sign_with_token.py")], input=json.dumps({
        "module": softhsm_module(), "token": "escrow", "pin": PINS["ESCROW_HSM_PIN"], "key_id": outputs["key_id"],
        "label": outputs["label"], "public_key_pem": outputs["public_key_pem"], "issuer_pem": root.read_text()}),
        capture_output=True, text=True, env=clean_env(SOFTHSM2_CONF=str(conf)))
    assert signed.returncode == 0, signed.stderr
    leaf = cd.dir / "escrow-signed.pem"
    leaf.write_text(signed.stdout)
    v = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", str(root), str(leaf)], capture_output=True,
                       text=True)
    assert v.returncode == 0 and v.stdout.strip().endswith(": OK"), v.stdout + v.stderr


def test_a_non_exportable_root_is_refused_before_any_hsm_is_touched(tmp_path):
    cd = make_ceremony_dir(tmp_path, "local.yaml")  # its root key is not exportable
    cd.pins["ESCROW_HSM_PIN"] = PINS["ESCROW_HSM_PIN"]
    assert cd.apply().returncode == 0
    before = (cd.tokens(), sorted(p.name for p in (cd.workspace / "softhsm" / "tokens").iterdir()),
              (cd.workspace / "state.db").read_bytes())
    (cd.dir / "export.yaml").write_text((EXAMPLES / "root-export.yaml").read_text()
                                        .replace("base: local-offline-root.yaml", "base: local.yaml"))
    r = cd.cli("apply", "export.yaml", "--yes")
    assert r.returncode == 2
    assert "export.yaml:" in r.stderr and "generated non-extractable" in r.stderr and "exportable: true" in r.stderr
    after = (cd.tokens(), sorted(p.name for p in (cd.workspace / "softhsm" / "tokens").iterdir()),
             (cd.workspace / "state.db").read_bytes())
    assert after == before  # no new token (no escrow), no temporary key, no state written


def test_a_subordinate_crl_is_signed_without_bringing_the_root_back(offline):
    cd = offline
    (cd.dir / "primary-crl.yaml").write_text(
        "apiVersion: pki-ceremony/v1\nkind: RootCeremony\nmetadata: {name: primary-crl-1}\n"
        "base: local-offline-root.yaml\ncrl:\n  issuer: primary\n  next_update: {days: 7}\n"
        "  revoked: [{serial: '1a2b3c', reason: key_compromise}]\n")
    plan = cd.cli("plan", "primary-crl.yaml").stdout
    assert "primary-crl-1/crl" in plan and "restore" not in plan and "teardown" not in plan.split("primary-crl-1")[1]
    env = cd.env()
    del env["ROOT_HSM_PIN"]  # the root is not needed, so neither is its PIN
    r = cd.cli("apply", "primary-crl.yaml", "--yes", env=env)
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
    arts = cd.workspace / "artifacts"
    bundle = cd.dir / "primary-and-root.pem"
    bundle.write_bytes((arts / "primary" / "certificate.pem").read_bytes() + (arts / "root" / "certificate.pem")
                       .read_bytes())
    v = subprocess.run(["openssl", "crl", "-in", str(arts / "primary-crl-1" / "crl-1.pem"), "-CAfile", str(bundle),
                        "-noout"], capture_output=True, text=True)
    assert v.returncode == 0 and "verify OK" in v.stdout + v.stderr
    crl = x509.load_pem_x509_crl((arts / "primary-crl-1" / "crl-1.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(0x1A2B3C) is not None
    assert "root" not in live_tokens(cd)


def test_a_crl_is_published_to_s3(offline):
    """S3 is moto's server here (the stand-in plays Private CA and CloudHSM only); boto3 talks HTTP to it."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server._server.server_address[:2]
        url = f"http://{host}:{port}"
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=url, aws_access_key_id="t",
                          aws_secret_access_key="t")
        s3.create_bucket(Bucket="example-crls")
        cd = offline
        (cd.dir / "published.yaml").write_text((cd.dir / "root-crl.yaml").read_text().replace(
            "  revoked: []", "  revoked: []\n  s3_bucket: example-crls"))
        r = cd.cli("apply", "published.yaml", "--yes", env=cd.env(
            AWS_ENDPOINT_URL_S3=url, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="t", AWS_SECRET_ACCESS_KEY="t"))
        assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
        assert "PutObject x1" in r.stdout
        der = (cd.workspace / "artifacts" / "root-crl-1" / "crl-1.crl").read_bytes()
        got = s3.get_object(Bucket="example-crls", Key="crl/root-crl-1/1.crl")
        assert got["Body"].read() == der and got["ContentType"] == "application/pkix-crl"
    finally:
        server.stop()


def test_a_new_primary_is_signed_by_the_offline_root_brought_back_for_it(offline):
    cd = offline
    env = cd.env()
    del env["ROOT_HSM_SO_PIN"]
    r = cd.cli("apply", "root-new-subordinate.yaml", "--yes", env=env)
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
    assert "new-primary-g2/restore" in r.stdout and "new-primary-g2/teardown" in r.stdout
    verdicts = verify_all_chains(cd)
    assert verdicts["primary-g2"] == "OK" and verdicts["issuing-g2-a"] == "OK"
    tokens = live_tokens(cd)
    assert "root" not in tokens
    assert {"example-offline-root-primary-g2", "example-offline-root-issuing-g2-a"} <= {
        o["label"] for o in tokens["online"] if o["class"] == "PRIVATE_KEY"}
    status = cd.cli("status", "root-new-subordinate.yaml").stdout
    assert "└── primary-g2: Example Corp Primary CA G2" in status and status.count(" complete, ") == 7
    assert "Nothing to do" in cd.cli("apply", "root-new-subordinate.yaml", "--yes", env=env).stdout


def test_new_subordinates_are_checked_with_the_base_hierarchy_and_reported_in_this_file(tmp_path):
    cd = pki(tmp_path)
    text = (cd.dir / "root-new-subordinate.yaml").read_text()
    (cd.dir / "clash.yaml").write_text(text.replace("common_name: Example Corp Issuing CA G2 A",
                                                    "common_name: Example Corp Issuing CA A"))
    r = cd.cli("validate", "clash.yaml")
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "Issuing CA G2 A" in l)
    assert r.returncode == 2, r.stdout
    assert r.stderr.startswith("error: clash.yaml:" + f"{line}:"), r.stderr
    assert "subordinates[1].subject: the subject is the same as 'issuing-a's" in r.stderr
