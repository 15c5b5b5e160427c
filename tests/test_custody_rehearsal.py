"""The hybrid ceremony rehearsed to its end (CloudHSM backup and teardown), then a root CRL that
brings the root back by creating an HSM: checked against the stand-in's own records with boto3."""
from __future__ import annotations

import shutil
import subprocess
import sys

import boto3
import pytest
from cryptography import x509

from ceremony_support import EXAMPLES, clean_env, make_ceremony_dir

CLUSTER = "cluster-examplerootca"


class StandInReader:
    """The stand-in restarted on the rehearsal's state file, to read what the rehearsal did."""

    def __init__(self, state_file):
        self.proc = subprocess.Popen([sys.executable, "-m", "pki_ceremony.rehearsal.server", "--port", "0",
                                      "--state-file", str(state_file), "--pending-polls", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
        line = self.proc.stdout.readline().strip()
        assert line.startswith("READY "), line + self.proc.stderr.read()
        self.url = line.split()[1]

    def hsm(self, region="us-east-1"):
        return boto3.client("cloudhsmv2", region_name=region, endpoint_url=self.url, aws_access_key_id="t",
                            aws_secret_access_key="t")

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def read(ws):
    r = StandInReader(ws / "rehearsal" / "aws-stand-in.json")
    try:
        cluster = r.hsm().describe_clusters(Filters={"clusterIds": [CLUSTER]})["Clusters"][0]
        backups = r.hsm().describe_backups(Filters={"clusterIds": [CLUSTER]})["Backups"]
        copies = r.hsm("us-west-2").describe_backups()["Backups"]
        return cluster, backups, copies
    finally:
        r.close()


def outputs(ws, step):
    import json
    import sqlite3

    return json.loads(sqlite3.connect(ws / "state.db").execute("select outputs from steps where id=?",
                                                               (step,)).fetchone()[0])


@pytest.fixture(scope="module")
def rehearsed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("custody-rehearsal")
    cd = make_ceremony_dir(tmp, "hybrid-cloudhsm-pca.yaml")
    shutil.copy(EXAMPLES / "hybrid-root-crl.yaml", cd.dir)
    ws = tmp / "rehearsal"
    r = cd.cli("rehearse", str(cd.file), "--workspace", str(ws), timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return cd, ws, r


def test_rehearsal_ends_with_the_hsm_deleted_and_its_backup_kept_and_copied(rehearsed):
    cd, ws, r = rehearsed
    teardown = outputs(ws, "custody/teardown")
    cluster, backups, copies = read(ws)
    assert cluster["Hsms"] == []
    mine = [b for b in backups if b["BackupId"] == teardown["backup_id"]]
    assert len(mine) == 1 and mine[0]["BackupState"] == "READY" and mine[0]["NeverExpires"] is True
    assert [c["BackupId"] for c in copies if c.get("SourceBackup") == teardown["backup_id"]] == \
        [teardown["copies"]["us-west-2"]]
    # The token that played the cluster is gone from the live token directory; its backup holds it.
    assert (ws / "rehearsal" / "cloudhsm-backups" / f"{teardown['backup_id']}.tar.gz").exists()
    listed = subprocess.run(["softhsm2-util", "--show-slots"], capture_output=True, text=True,
                            env=clean_env(SOFTHSM2_CONF=str(ws / "softhsm" / "softhsm2.conf")))
    assert "hsm1" not in listed.stdout
    assert "DeleteHsm x1" in r.stdout and "ModifyBackupAttributes x1" in r.stdout


def test_root_crl_rehearsal_creates_an_hsm_from_the_backup_and_signs_the_crl(rehearsed):
    cd, ws, _ = rehearsed
    r = cd.cli("rehearse", "hybrid-root-crl.yaml", "--workspace", str(ws), timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "CreateHsm x1" in r.stdout
    root = ws / "artifacts" / "root" / "certificate.pem"
    crl = ws / "artifacts" / "hybrid-root-crl-1" / "crl-1.pem"
    v = subprocess.run(["openssl", "crl", "-in", str(crl), "-CAfile", str(root), "-noout"], capture_output=True,
                       text=True)
    assert v.returncode == 0 and "verify OK" in v.stdout + v.stderr
    assert x509.load_pem_x509_crl(crl.read_bytes()).issuer == x509.load_pem_x509_certificate(
        root.read_bytes()).subject
    cluster, backups, _ = read(ws)
    assert cluster["Hsms"] == []  # put away again
    second = outputs(ws, "hybrid-root-crl-1/teardown")["backup_id"]
    assert second != outputs(ws, "custody/teardown")["backup_id"]
    assert [b["NeverExpires"] for b in backups if b["BackupId"] == second] == [True]
