"""cloudhsmv2 stand-in: clusters, the HSM lifecycle and the backups it leaves behind."""

from __future__ import annotations

import re

import pytest
from botocore.exceptions import ClientError
from cryptography import x509

BACKUP_ID = re.compile(r"^backup-[2-7a-zA-Z]{11,16}$")


def make_cluster(hsm, **kwargs):
    cluster = hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=["subnet-0123456789abcdef0"], **kwargs)["Cluster"]
    assert cluster["State"] == "CREATE_IN_PROGRESS"
    return cluster["ClusterId"]


def describe(hsm, cluster_id):
    return hsm.describe_clusters(Filters={"clusterIds": [cluster_id]})["Clusters"][0]


def backups(hsm, **filters):
    return hsm.describe_backups(Filters=filters)["Backups"]


def settle_backups(hsm, cluster_id):
    backups(hsm, clusterIds=[cluster_id])  # the poll that still sees CREATE_IN_PROGRESS


def test_cluster_and_hsm_lifecycle_leaves_a_backup(hsm, kit):
    cluster_id = make_cluster(hsm, TagList=[{"Key": "ceremony", "Value": "rehearsal"}])
    assert re.match(r"^cluster-[2-7a-zA-Z]{11,16}$", cluster_id)
    assert describe(hsm, cluster_id)["State"] == "CREATE_IN_PROGRESS"  # the first poll still sees it
    assert describe(hsm, cluster_id)["State"] == "UNINITIALIZED"

    created = hsm.create_hsm(ClusterId=cluster_id, AvailabilityZone="us-east-1a")["Hsm"]
    assert created["State"] == "CREATE_IN_PROGRESS" and created["HsmId"].startswith("hsm-")
    assert describe(hsm, cluster_id)["Hsms"][0]["State"] == "CREATE_IN_PROGRESS"
    cluster = describe(hsm, cluster_id)
    assert cluster["Hsms"][0]["State"] == "ACTIVE"
    assert x509.load_pem_x509_csr(cluster["Certificates"]["ClusterCsr"].encode()).is_signature_valid
    assert backups(hsm, clusterIds=[cluster_id]) == []  # no API call makes a backup by itself

    deleted = hsm.delete_hsm(ClusterId=cluster_id, HsmId=created["HsmId"])
    assert deleted["HsmId"] == created["HsmId"]
    assert describe(hsm, cluster_id)["Hsms"] == []
    [backup] = backups(hsm, clusterIds=[cluster_id])
    assert BACKUP_ID.match(backup["BackupId"])
    assert backup["BackupState"] == "CREATE_IN_PROGRESS"
    assert backup["BackupArn"] == f"arn:aws:cloudhsm:us-east-1:123456789012:backup/{backup['BackupId']}"
    [ready] = backups(hsm, clusterIds=[cluster_id], states=["READY"])
    assert ready["BackupId"] == backup["BackupId"] and ready["NeverExpires"] is False


def test_unknown_az_and_unknown_cluster_are_refused(hsm, kit):
    cluster_id = make_cluster(hsm)
    with pytest.raises(ClientError) as excinfo:
        hsm.create_hsm(ClusterId=cluster_id, AvailabilityZone="us-east-1f")
    assert kit.error_code(excinfo) == "CloudHsmInvalidRequestException"
    with pytest.raises(ClientError) as excinfo:
        hsm.create_hsm(ClusterId="cluster-aaaaaaaaaaa", AvailabilityZone="us-east-1a")
    assert kit.error_code(excinfo) == "CloudHsmResourceNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        hsm.delete_hsm(ClusterId=cluster_id, HsmId="hsm-aaaaaaaaaaa")
    assert kit.error_code(excinfo) == "CloudHsmResourceNotFoundException"


def test_delete_hsm_by_eni_ip(hsm):
    cluster_id = make_cluster(hsm)
    describe(hsm, cluster_id)
    created = hsm.create_hsm(ClusterId=cluster_id, AvailabilityZone="us-east-1a", IpAddress="10.0.0.10")["Hsm"]
    assert hsm.delete_hsm(ClusterId=cluster_id, EniIp="10.0.0.10")["HsmId"] == created["HsmId"]


def test_backup_filters_and_attributes(hsm, kit):
    cluster_id = make_cluster(hsm)
    describe(hsm, cluster_id)
    for _ in range(2):
        hsm_id = hsm.create_hsm(ClusterId=cluster_id, AvailabilityZone="us-east-1a")["Hsm"]["HsmId"]
        hsm.delete_hsm(ClusterId=cluster_id, HsmId=hsm_id)
    settle_backups(hsm, cluster_id)
    both = backups(hsm, clusterIds=[cluster_id], states=["READY"])
    assert len(both) == 2
    newest, oldest = both  # newest first unless SortAscending
    ascending = hsm.describe_backups(Filters={"clusterIds": [cluster_id]}, SortAscending=True)["Backups"]
    assert [b["BackupId"] for b in ascending] == [oldest["BackupId"], newest["BackupId"]]
    assert [b["BackupId"] for b in backups(hsm, backupIds=[oldest["BackupId"]])] == [oldest["BackupId"]]

    modified = hsm.modify_backup_attributes(BackupId=newest["BackupId"], NeverExpires=True)["Backup"]
    assert modified["NeverExpires"] is True
    assert [b["BackupId"] for b in backups(hsm, clusterIds=[cluster_id], neverExpires=["true"])] == [newest["BackupId"]]
    assert [b["BackupId"] for b in backups(hsm, clusterIds=[cluster_id], neverExpires=["false"])] == [oldest["BackupId"]]

    pages = list(hsm.get_paginator("describe_backups").paginate(
        Filters={"clusterIds": [cluster_id]}, PaginationConfig={"PageSize": 1}))
    assert [len(p["Backups"]) for p in pages] == [1, 1]

    with pytest.raises(ClientError) as excinfo:
        backups(hsm, colour=["blue"])
    assert kit.error_code(excinfo) == "CloudHsmInvalidRequestException"
    with pytest.raises(ClientError) as excinfo:
        hsm.modify_backup_attributes(BackupId="backup-aaaaaaaaaaa", NeverExpires=True)
    assert kit.error_code(excinfo) == "CloudHsmResourceNotFoundException"


def test_copy_backup_to_another_region(hsm, hsm_west, kit):
    cluster_id = make_cluster(hsm)
    describe(hsm, cluster_id)
    hsm_id = hsm.create_hsm(ClusterId=cluster_id, AvailabilityZone="us-east-1a")["Hsm"]["HsmId"]
    hsm.delete_hsm(ClusterId=cluster_id, HsmId=hsm_id)
    [source] = backups(hsm, clusterIds=[cluster_id])

    destination = hsm.copy_backup_to_region(DestinationRegion="us-west-2", BackupId=source["BackupId"])[
        "DestinationBackup"]
    assert destination["SourceBackup"] == source["BackupId"]
    assert destination["SourceRegion"] == "us-east-1" and destination["SourceCluster"] == cluster_id
    assert backups(hsm, sourceBackupIds=[source["BackupId"]]) == []  # not in the source region
    [copy] = backups(hsm_west, sourceBackupIds=[source["BackupId"]])
    assert copy["BackupId"] != source["BackupId"] and "ClusterId" not in copy
    assert copy["BackupArn"].startswith("arn:aws:cloudhsm:us-west-2:")
    assert backups(hsm_west, sourceBackupIds=[source["BackupId"]], states=["READY"])[0]["BackupId"] == copy["BackupId"]


def test_a_backup_in_progress_cannot_be_copied(kit):
    process = kit.StandInProcess("--pending-polls", "2")
    try:
        _, client = process.clients()
        cluster_id = make_cluster(client)
        describe(client, cluster_id)
        describe(client, cluster_id)
        client.delete_hsm(ClusterId=cluster_id,
                          HsmId=client.create_hsm(ClusterId=cluster_id, AvailabilityZone="us-east-1a")["Hsm"]["HsmId"])
        [backup] = backups(client, clusterIds=[cluster_id])
        assert backup["BackupState"] == "CREATE_IN_PROGRESS"
        with pytest.raises(ClientError) as excinfo:
            client.copy_backup_to_region(DestinationRegion="us-west-2", BackupId=backup["BackupId"])
        assert kit.error_code(excinfo) == "CloudHsmInvalidRequestException"
        assert backups(client, clusterIds=[cluster_id], states=["READY"]) == []  # second poll: still in progress
        assert backups(client, clusterIds=[cluster_id], states=["READY"])[0]["BackupId"] == backup["BackupId"]
    finally:
        process.terminate()


def test_delete_and_restore_backup(hsm, kit):
    cluster_id = make_cluster(hsm)
    describe(hsm, cluster_id)
    hsm.delete_hsm(ClusterId=cluster_id,
                   HsmId=hsm.create_hsm(ClusterId=cluster_id, AvailabilityZone="us-east-1a")["Hsm"]["HsmId"])
    settle_backups(hsm, cluster_id)
    [backup] = backups(hsm, clusterIds=[cluster_id])
    pending = hsm.delete_backup(BackupId=backup["BackupId"])["Backup"]
    assert pending["BackupState"] == "PENDING_DELETION" and "DeleteTimestamp" in pending
    with pytest.raises(ClientError) as excinfo:
        hsm.delete_backup(BackupId=backup["BackupId"])
    assert kit.error_code(excinfo) == "CloudHsmInvalidRequestException"
    assert hsm.restore_backup(BackupId=backup["BackupId"])["Backup"]["BackupState"] == "READY"


def test_deleted_backup_is_gone_after_seven_days(private_standin):
    _, client = private_standin.clients()
    cluster_id = make_cluster(client)
    describe(client, cluster_id)
    client.delete_hsm(ClusterId=cluster_id,
                      HsmId=client.create_hsm(ClusterId=cluster_id, AvailabilityZone="us-east-1a")["Hsm"]["HsmId"])
    settle_backups(client, cluster_id)
    [backup] = backups(client, clusterIds=[cluster_id])
    client.delete_backup(BackupId=backup["BackupId"])
    private_standin.advance_clock(7 * 86400 + 1)
    assert backups(client, clusterIds=[cluster_id])[0]["BackupState"] == "DELETED"


def test_cluster_from_backup(hsm, kit):
    cluster_id = make_cluster(hsm)
    describe(hsm, cluster_id)
    hsm.delete_hsm(ClusterId=cluster_id,
                   HsmId=hsm.create_hsm(ClusterId=cluster_id, AvailabilityZone="us-east-1a")["Hsm"]["HsmId"])
    settle_backups(hsm, cluster_id)
    [backup] = backups(hsm, clusterIds=[cluster_id])
    clone_id = make_cluster(hsm, SourceBackupId=backup["BackupArn"])
    describe(hsm, clone_id)
    clone = describe(hsm, clone_id)
    assert clone["SourceBackupId"] == backup["BackupId"] and clone["State"] == "INITIALIZED"
    with pytest.raises(ClientError) as excinfo:
        hsm.delete_cluster(ClusterId="cluster-aaaaaaaaaaa")
    assert kit.error_code(excinfo) == "CloudHsmResourceNotFoundException"
    assert hsm.delete_cluster(ClusterId=clone_id)["Cluster"]["State"] == "DELETE_IN_PROGRESS"


def test_initialize_cluster_needs_a_certificate_for_its_csr(hsm, kit, root):
    cluster_id = make_cluster(hsm)
    describe(hsm, cluster_id)
    hsm.create_hsm(ClusterId=cluster_id, AvailabilityZone="us-east-1a")
    csr = describe(hsm, cluster_id)["Certificates"]["ClusterCsr"]
    _, other = kit.leaf_csr("not the cluster", with_san=False)
    with pytest.raises(ClientError) as excinfo:
        hsm.initialize_cluster(ClusterId=cluster_id, SignedCert=kit.pem(kit.sign_csr(root, other.decode())).decode(),
                               TrustAnchor=root.pem.decode())
    assert kit.error_code(excinfo) == "CloudHsmInvalidRequestException"
    signed = kit.pem(kit.sign_csr(root, csr, path_length=0)).decode()
    assert hsm.initialize_cluster(ClusterId=cluster_id, SignedCert=signed, TrustAnchor=root.pem.decode())[
        "State"] == "INITIALIZE_IN_PROGRESS"
    describe(hsm, cluster_id)
    assert describe(hsm, cluster_id)["State"] == "ACTIVE"  # initialized, with an active HSM


def test_no_create_backup_operation_exists(standin, kit):
    # Some tools call a non-existent "create-backup": the stand-in answers 400, not 500.
    import urllib.error
    import urllib.request

    request = urllib.request.Request(standin.url + "/", data=b"{}", method="POST", headers={
        "X-Amz-Target": "BaldrApiService.CreateBackup", "Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=10)
    assert excinfo.value.code == 400
    assert b"UnknownOperationException" in excinfo.value.read()
