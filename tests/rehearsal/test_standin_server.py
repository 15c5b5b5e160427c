"""The stand-in as a process and in-process: framing, introspection, persistence, hooks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from pki_ceremony.rehearsal import ENDPOINT_VARIABLES, Settings, StandInServer


def raw_post(url, target, body=b"{}"):
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = urllib.request.Request(url + "/", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_ready_line_and_health(standin):
    assert standin.ready_line == f"READY {standin.url}"
    assert standin.url.startswith("http://127.0.0.1:") and int(standin.url.rsplit(":", 1)[1]) > 0
    assert standin.admin("GET", "/_standin/health") == {"ok": True}


@pytest.mark.parametrize("target, body, code", [
    ("ACMPrivateCA.CreatePermission", b"{}", "UnknownOperationException"),
    ("ACMPrivateCA.NoSuchThing", b"{}", "UnknownOperationException"),
    ("AmazonEC2.DescribeInstances", b"{}", "UnknownOperationException"),
    (None, b"{}", "UnknownOperationException"),
    ("ACMPrivateCA.ListCertificateAuthorities", b"not json", "SerializationException"),
])
def test_errors_are_400_with_an_aws_type(standin, target, body, code):
    status, headers, payload = raw_post(standin.url, target, body)
    assert status == 400
    assert payload["__type"] == code and payload["message"]
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert headers["x-amzn-ErrorType"] == code


def test_region_comes_from_the_credential_scope(standin, kit):
    client = kit.make_client("acm-pca", standin.url, "eu-central-1")
    arn = client.create_certificate_authority(CertificateAuthorityConfiguration=kit.EC_SUBJECT_CONFIG,
                                              CertificateAuthorityType="ROOT")["CertificateAuthorityArn"]
    assert arn.startswith("arn:aws:acm-pca:eu-central-1:123456789012:certificate-authority/")


def test_call_counters_and_reset(standin, pca):
    standin.reset_calls()
    assert standin.calls() == {"acm-pca": {}, "cloudhsmv2": {}}
    pca.list_certificate_authorities()
    with pytest.raises(ClientError):
        pca.describe_certificate_authority(CertificateAuthorityArn="arn:aws:acm-pca:us-east-1:1:certificate-authority/x")
    assert standin.calls()["acm-pca"] == {"ListCertificateAuthorities": 1, "DescribeCertificateAuthority": 1}
    assert standin.mutating() == 0


def test_state_survives_a_restart(kit, root, tmp_path):
    state = tmp_path / "standin.json"
    first = kit.StandInProcess(state_file=state)
    client, _ = first.clients()
    ca = kit.create_pending_ca(client, Tags=[{"Key": "ceremony-step", "Value": "primary"}])
    client.import_certificate_authority_certificate(CertificateAuthorityArn=ca.arn,
                                                    Certificate=kit.pem(kit.sign_csr(root, ca.csr)),
                                                    CertificateChain=root.pem)
    certificate_arn = client.issue_certificate(CertificateAuthorityArn=ca.arn, Csr=kit.leaf_csr()[1],
                                               SigningAlgorithm="SHA256WITHECDSA",
                                               Validity={"Type": "DAYS", "Value": 7})["CertificateArn"]
    client.get_waiter("certificate_issued").wait(CertificateAuthorityArn=ca.arn, CertificateArn=certificate_arn,
                                                 WaiterConfig=kit.FAST_WAIT)
    issued = client.get_certificate(CertificateAuthorityArn=ca.arn, CertificateArn=certificate_arn)
    assert first.terminate() == 0
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600

    second = kit.StandInProcess(state_file=state)
    try:
        client, _ = second.clients()
        described = client.describe_certificate_authority(CertificateAuthorityArn=ca.arn)["CertificateAuthority"]
        assert described["Status"] == "ACTIVE"
        assert client.get_certificate_authority_csr(CertificateAuthorityArn=ca.arn)["Csr"] == ca.csr
        again = client.get_certificate(CertificateAuthorityArn=ca.arn, CertificateArn=certificate_arn)
        assert (again["Certificate"], again["CertificateChain"]) == (issued["Certificate"], issued["CertificateChain"])
        assert client.list_tags(CertificateAuthorityArn=ca.arn)["Tags"] == [
            {"Key": "ceremony-step", "Value": "primary"}]
        # the restarted stand-in still signs with the same CA key
        issue = client.issue_certificate(CertificateAuthorityArn=ca.arn, Csr=kit.leaf_csr()[1],
                                         SigningAlgorithm="SHA256WITHECDSA", Validity={"Type": "DAYS", "Value": 7})
        assert issue["CertificateArn"].startswith(ca.arn)
        assert second.calls()["acm-pca"]["DescribeCertificateAuthority"] == 1  # counters are per process
    finally:
        second.terminate()


def test_unusable_state_file_stops_the_process(tmp_path, kit):
    bad = tmp_path / "state.json"
    bad.write_text("{not json")
    env = dict(os.environ, PYTHONPATH=str(kit.StandInProcess.__init__.__globals__["REPO_ROOT"]))
    result = subprocess.run([sys.executable, "-m", "pki_ceremony.rehearsal.server", "--state-file", str(bad)],
                            capture_output=True, text=True, timeout=30, env=env)
    assert result.returncode == 2
    assert "not JSON" in result.stderr and "READY" not in result.stdout


# ---- in-process -----------------------------------------------------------------------------


def test_in_process_server_context_manager_and_env(kit):
    with StandInServer() as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.endpoint_env() == {name: server.url for name in ENDPOINT_VARIABLES}
        assert set(ENDPOINT_VARIABLES) == {"AWS_ENDPOINT_URL_ACM_PCA", "AWS_ENDPOINT_URL_CLOUDHSM_V2"}
        client = kit.make_client("acm-pca", server.url)
        assert client.list_certificate_authorities()["CertificateAuthorities"] == []
        assert server.calls()["acm-pca"] == {"ListCertificateAuthorities": 1}
        url = server.url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/_standin/health", timeout=2)


def test_in_process_state_file_and_clock(kit, tmp_path):
    state = tmp_path / "state.json"
    server = StandInServer(state_file=str(state), settings=Settings(pending_polls=0))
    url = server.start()
    try:
        client = kit.make_client("acm-pca", url)
        arn = client.create_certificate_authority(CertificateAuthorityConfiguration=kit.EC_SUBJECT_CONFIG,
                                                  CertificateAuthorityType="SUBORDINATE",
                                                  IdempotencyToken="tok")["CertificateAuthorityArn"]
        # pending_polls=0: the CSR is ready at once
        assert client.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"].startswith("-----BEGIN")
        server.advance_clock(301)
    finally:
        server.stop()
    with StandInServer(state_file=str(state)) as resumed:
        client = kit.make_client("acm-pca", resumed.url)
        assert client.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"][
            "Status"] == "PENDING_CERTIFICATE"
        # the clock offset was persisted too: the token is already forgotten
        again = client.create_certificate_authority(CertificateAuthorityConfiguration=kit.EC_SUBJECT_CONFIG,
                                                    CertificateAuthorityType="SUBORDINATE", IdempotencyToken="tok")
        assert again["CertificateAuthorityArn"] != arn
        assert resumed.mutating_calls() == 1


def test_hsm_hooks_follow_the_lifecycle(kit):
    created, last_deleted = [], []
    with StandInServer(settings=Settings(pending_polls=0),
                       on_last_hsm_deleted=lambda cluster, backup: last_deleted.append((cluster, backup))) as server:
        server.on_hsm_created = lambda cluster, backup: created.append((cluster, backup))
        client = kit.make_client("cloudhsmv2", server.url)
        cluster = client.create_cluster(HsmType="hsm2m.medium", SubnetIds=["subnet-0123456789abcdef0",
                                                                           "subnet-0123456789abcdef1"])["Cluster"]
        cluster_id = cluster["ClusterId"]
        assert sorted(cluster["SubnetMapping"]) == ["us-east-1a", "us-east-1b"]

        first = client.create_hsm(ClusterId=cluster_id, AvailabilityZone="us-east-1a")["Hsm"]["HsmId"]
        assert created == [(cluster_id, None)]  # a fresh cluster: nothing to restore
        client.delete_hsm(ClusterId=cluster_id, HsmId=first)
        [backup_1] = client.describe_backups(Filters={"clusterIds": [cluster_id]})["Backups"]
        assert last_deleted == [(cluster_id, backup_1["BackupId"])]

        second = client.create_hsm(ClusterId=cluster_id, AvailabilityZone="us-east-1b")["Hsm"]["HsmId"]
        assert created[-1] == (cluster_id, backup_1["BackupId"])  # the latest backup is restored
        third = client.create_hsm(ClusterId=cluster_id, AvailabilityZone="us-east-1a")["Hsm"]["HsmId"]
        assert created[-1] == (cluster_id, None)  # cloned from a live HSM
        assert len(client.describe_backups(Filters={"clusterIds": [cluster_id]})["Backups"]) == 2
        client.delete_hsm(ClusterId=cluster_id, HsmId=second)
        assert len(last_deleted) == 1  # one HSM is left
        client.delete_hsm(ClusterId=cluster_id, HsmId=third)
        newest = client.describe_backups(Filters={"clusterIds": [cluster_id]})["Backups"][0]
        assert last_deleted[-1] == (cluster_id, newest["BackupId"])
        client.create_hsm(ClusterId=cluster_id, AvailabilityZone="us-east-1a")
        assert created[-1] == (cluster_id, newest["BackupId"])


def test_a_failing_hook_is_reported(kit):
    def broken(cluster_id, backup_id):
        raise OSError("token directory is read-only")

    with StandInServer(settings=Settings(pending_polls=0), on_hsm_created=broken) as server:
        client = kit.make_client("cloudhsmv2", server.url)
        cluster_id = client.create_cluster(HsmType="hsm2m.medium",
                                           SubnetIds=["subnet-0123456789abcdef0"])["Cluster"]["ClusterId"]
        with pytest.raises(ClientError) as excinfo:
            client.create_hsm(ClusterId=cluster_id, AvailabilityZone="us-east-1a")
        assert kit.error_code(excinfo) == "CloudHsmInternalFailureException"
        assert "read-only" in str(excinfo.value)
