"""The cloudhsmv2 operations of the stand-in (target prefix ``BaldrApiService``).

Modelled lifecycle (from the CloudHSM user guide, see the project reference):

* A cluster is CREATE_IN_PROGRESS, then UNINITIALIZED (or INITIALIZED when made from a
  backup) on a later DescribeClusters. Creating the first HSM of an uninitialized cluster
  produces a real ClusterCsr; InitializeCluster takes the signed certificate (its key
  must be the CSR's) and makes the cluster INITIALIZED. An initialized cluster with an
  ACTIVE HSM reads as ACTIVE (activation itself happens outside the API).
* An HSM is CREATE_IN_PROGRESS, then ACTIVE on a later DescribeClusters.
* There is no API to request a backup. Removing an HSM makes one, and so does adding an
  HSM to a cluster that already has one (it is cloned from a backup). A backup is
  CREATE_IN_PROGRESS, then READY on a later DescribeBackups.
* Creating the only HSM of a cluster that had HSMs before, or of a cluster made from a
  backup, restores the latest backup of that cluster into it.
* DeleteBackup makes a backup PENDING_DELETION for 7 days (RestoreBackup undoes it),
  after which it reads as DELETED. CopyBackupToRegion makes a copy with no cluster in
  the destination region, found there with the ``sourceBackupIds`` filter.

Hooks: after a request, the server calls ``on_hsm_created(cluster_id, backup_id)`` for
each new HSM (backup_id: the backup restored into it, or None) and
``on_last_hsm_deleted(cluster_id, backup_id)`` when a cluster's last HSM is deleted
(backup_id: the backup that deletion made).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from . import pca_keys
from .clock import Clock
from .protocol import ACCOUNT_ID, AwsError, RequestContext, paginate, require, validation_error
from .settings import Settings
from .store import Store

ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
BACKUP_FILTERS = frozenset({"backupIds", "sourceBackupIds", "clusterIds", "states", "neverExpires"})
CLUSTER_FILTERS = frozenset({"clusterIds", "vpcIds", "states"})
RESTORE_WINDOW = dt.timedelta(days=7)
_SUBNET = re.compile(r"^subnet-[0-9a-fA-F]{8,17}$")
_REGION = re.compile(r"^[a-z]{2}(-(gov))?-(east|west|north|south|central){1,2}-\d$")
_BACKUP_ARN = re.compile(r"^arn:aws[a-z-]*:cloudhsm:([a-z0-9-]+):\d{12}:backup/(backup-[2-7a-zA-Z]{11,16})$")

HOOK_HSM_CREATED = "on_hsm_created"
HOOK_LAST_HSM_DELETED = "on_last_hsm_deleted"


def new_id(prefix: str) -> str:
    return prefix + "-" + "".join(secrets.choice(ID_ALPHABET) for _ in range(11))


def _invalid(message: str) -> AwsError:
    return AwsError("CloudHsmInvalidRequestException", message)


def _not_found(message: str) -> AwsError:
    return AwsError("CloudHsmResourceNotFoundException", message)


class HsmService:
    NAME = "cloudhsmv2"
    TARGET_PREFIX = "BaldrApiService"
    MUTATING = frozenset({
        "CreateCluster", "DeleteCluster", "InitializeCluster", "CreateHsm", "DeleteHsm",
        "DeleteBackup", "RestoreBackup", "ModifyBackupAttributes", "CopyBackupToRegion",
        "TagResource", "UntagResource",
    })

    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings

    def operations(self) -> dict[str, Callable[[dict[str, Any], RequestContext], dict[str, Any]]]:
        return {name.removeprefix("op_"): getattr(self, name) for name in dir(self) if name.startswith("op_")}

    @property
    def _state(self) -> dict[str, Any]:
        section = self._store.section(self.NAME)
        section.setdefault("clusters", {})
        section.setdefault("backups", {})
        return section

    def _now(self) -> float:
        return self._clock.now().timestamp()

    # ---- clusters ---------------------------------------------------------------------

    def _cluster(self, cluster_id: Any, ctx: RequestContext) -> dict[str, Any]:
        record = self._state["clusters"].get(cluster_id)
        if record is None or record["region"] != ctx.region:
            raise _not_found(f"Cluster {cluster_id} not found.")
        return record

    @staticmethod
    def _count_poll(record: dict[str, Any]) -> bool:
        """Count one poll that saw ``record`` in progress; True when it is now settled."""
        record["pending_polls"] = max(0, record.get("pending_polls", 0) - 1)
        return record["pending_polls"] == 0

    def _observe_cluster(self, cluster: dict[str, Any]) -> None:
        """After a DescribeClusters that saw it: count the poll for the cluster and its HSMs."""
        if cluster["state"] in ("CREATE_IN_PROGRESS", "INITIALIZE_IN_PROGRESS") and self._count_poll(cluster):
            cluster["state"] = cluster.pop("next_state")
        for hsm in cluster["hsms"]:
            if hsm["state"] == "CREATE_IN_PROGRESS" and self._count_poll(hsm):
                hsm["state"] = "ACTIVE"

    @staticmethod
    def _cluster_state(cluster: dict[str, Any]) -> str:
        if cluster["state"] == "INITIALIZED" and any(h["state"] == "ACTIVE" for h in cluster["hsms"]):
            return "ACTIVE"
        return cluster["state"]

    def _describe_cluster(self, cluster: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "BackupPolicy": "DEFAULT",
            "BackupRetentionPolicy": cluster["backup_retention_policy"],
            "ClusterId": cluster["id"],
            "CreateTimestamp": cluster["created_at"],
            "Hsms": [self._describe_hsm(cluster, hsm) for hsm in cluster["hsms"]],
            "HsmType": cluster["hsm_type"],
            "SecurityGroup": cluster["security_group"],
            "State": self._cluster_state(cluster),
            "SubnetMapping": cluster["subnet_mapping"],
            "VpcId": cluster["vpc_id"],
            "NetworkType": cluster["network_type"],
            "Certificates": cluster["certificates"],
            "Mode": cluster["mode"],
        }
        if cluster.get("source_backup_id"):
            out["SourceBackupId"] = cluster["source_backup_id"]
        if cluster["tags"]:
            out["TagList"] = cluster["tags"]
        return out

    @staticmethod
    def _describe_hsm(cluster: dict[str, Any], hsm: dict[str, Any]) -> dict[str, Any]:
        return {
            "AvailabilityZone": hsm["availability_zone"], "ClusterId": cluster["id"],
            "SubnetId": hsm["subnet_id"], "EniId": hsm["eni_id"], "EniIp": hsm["eni_ip"],
            "HsmId": hsm["id"], "HsmType": cluster["hsm_type"], "State": hsm["state"],
            "StateMessage": "HSM created." if hsm["state"] == "ACTIVE" else "HSM is being created.",
        }

    def seed_cluster(self, cluster_id: str, region: str, zone: str) -> bool:
        """A rehearsal's starting point: an initialised cluster with this id and one ACTIVE HSM in `zone`,
        as the ceremony file describes an existing one. False if it exists already."""
        if cluster_id in self._state["clusters"]:
            return False
        zones = sorted({zone, f"{region}a", f"{region}b"})
        cluster = {
            "id": cluster_id, "region": region, "hsm_type": "hsm1.medium", "mode": "FIPS", "network_type": "IPV4",
            "subnet_mapping": {z: "subnet-" + secrets.token_hex(8) for z in zones},
            "vpc_id": "vpc-" + secrets.token_hex(8), "security_group": "sg-" + secrets.token_hex(8),
            "backup_retention_policy": {"Type": "DAYS", "Value": "90"}, "state": "INITIALIZED",
            "pending_polls": 0, "created_at": self._now(), "hsms": [], "had_hsms": False,
            "source_backup_id": None, "certificates": {}, "tags": [],
        }
        cluster["hsms"].append({
            "id": new_id("hsm"), "availability_zone": zone, "subnet_id": cluster["subnet_mapping"][zone],
            "eni_id": "eni-" + secrets.token_hex(8), "eni_ip": f"10.0.0.{secrets.randbelow(250) + 2}",
            "state": "ACTIVE", "pending_polls": 0, "restored_backup_id": None})
        self._state["clusters"][cluster_id] = cluster
        return True

    def op_CreateCluster(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        hsm_type = require(params, "HsmType")
        subnet_ids = require(params, "SubnetIds")
        if not isinstance(subnet_ids, list) or not 1 <= len(subnet_ids) <= 10:
            raise validation_error("subnetIds", "Member must have length between 1 and 10", subnet_ids)
        for subnet in subnet_ids:
            if not isinstance(subnet, str) or not _SUBNET.match(subnet):
                raise validation_error("subnetIds", "Member must satisfy regular expression pattern: "
                                       "subnet-[0-9a-fA-F]{8,17}", subnet)
        source = None
        if params.get("SourceBackupId"):
            source = self._backup(self._backup_id_from(params["SourceBackupId"]), ctx)
            if self._backup_state(source) != "READY":
                raise _invalid(f"Backup {source['id']} is {self._backup_state(source)}, not READY.")
        polls = self._settings.pending_polls
        settled = "INITIALIZED" if source else "UNINITIALIZED"
        cluster = {
            "id": new_id("cluster"),
            "region": ctx.region,
            "hsm_type": hsm_type,
            "mode": params.get("Mode", source["mode"] if source else "FIPS"),
            "network_type": params.get("NetworkType", "IPV4"),
            "subnet_mapping": {f"{ctx.region}{chr(ord('a') + i)}": s for i, s in enumerate(subnet_ids)},
            "vpc_id": "vpc-" + secrets.token_hex(8),
            "security_group": "sg-" + secrets.token_hex(8),
            "backup_retention_policy": params.get("BackupRetentionPolicy") or {"Type": "DAYS", "Value": "90"},
            "state": "CREATE_IN_PROGRESS" if polls > 0 else settled,
            "next_state": settled,
            "pending_polls": polls,
            "created_at": self._now(),
            "hsms": [],
            "had_hsms": False,
            "source_backup_id": source["id"] if source else None,
            "certificates": {},
            "tags": list(params.get("TagList") or []),
        }
        if polls == 0:
            cluster.pop("next_state")
        self._state["clusters"][cluster["id"]] = cluster
        return {"Cluster": self._describe_cluster(cluster)}

    def op_DescribeClusters(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        filters = params.get("Filters") or {}
        unknown = set(filters) - CLUSTER_FILTERS
        if unknown:
            raise _invalid(f"Unknown filter(s): {', '.join(sorted(unknown))}.")
        seen = [
            cluster for cluster in self._state["clusters"].values()
            if cluster["region"] == ctx.region
            and ("clusterIds" not in filters or cluster["id"] in filters["clusterIds"])
            and ("vpcIds" not in filters or cluster["vpc_id"] in filters["vpcIds"])
        ]
        selected = [c for c in seen if "states" not in filters or self._cluster_state(c) in filters["states"]]
        page, token = paginate(selected, params.get("NextToken"), params.get("MaxResults"), 25,
                               "CloudHsmInvalidRequestException")
        out: dict[str, Any] = {"Clusters": [self._describe_cluster(c) for c in page]}
        if token:
            out["NextToken"] = token
        for cluster in seen:  # polling with a states filter must still move things along
            self._observe_cluster(cluster)
        return out

    def op_DeleteCluster(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        cluster = self._cluster(require(params, "ClusterId"), ctx)
        if cluster["hsms"]:
            raise _invalid(f"Cluster {cluster['id']} still has HSMs; delete them first.")
        if cluster["state"] == "DELETED":
            raise _invalid(f"Cluster {cluster['id']} is already deleted.")
        cluster["state"] = "DELETED"
        out = self._describe_cluster(cluster)
        out["State"] = "DELETE_IN_PROGRESS"
        return {"Cluster": out}

    def op_InitializeCluster(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        cluster = self._cluster(require(params, "ClusterId"), ctx)
        signed_pem, anchor_pem = require(params, "SignedCert"), require(params, "TrustAnchor")
        if cluster["state"] != "UNINITIALIZED" or "ClusterCsr" not in cluster["certificates"]:
            raise _invalid(f"Cluster {cluster['id']} is {cluster['state']}; it must be UNINITIALIZED with an HSM.")
        try:
            signed = x509.load_pem_x509_certificate(signed_pem.encode("ascii"))
            x509.load_pem_x509_certificate(anchor_pem.encode("ascii"))
        except ValueError as exc:
            raise _invalid(f"SignedCert and TrustAnchor must be PEM certificates: {exc}") from exc
        csr = x509.load_pem_x509_csr(cluster["certificates"]["ClusterCsr"].encode("ascii"))
        if pca_keys.public_der(signed.public_key()) != pca_keys.public_der(csr.public_key()):
            raise _invalid("SignedCert was not issued for the cluster's CSR (public keys differ).")
        cluster["certificates"]["ClusterCertificate"] = signed_pem
        polls = self._settings.pending_polls
        if polls > 0:
            cluster.update(state="INITIALIZE_IN_PROGRESS", next_state="INITIALIZED", pending_polls=polls)
        else:
            cluster["state"] = "INITIALIZED"
        return {"State": "INITIALIZE_IN_PROGRESS", "StateMessage": "Cluster is initializing."}

    # ---- HSMs -------------------------------------------------------------------------

    def _latest_backup(self, cluster: dict[str, Any]) -> str | None:
        candidates = [
            b for b in self._state["backups"].values()
            if b.get("cluster_id") == cluster["id"] and self._backup_state(b) in ("READY", "CREATE_IN_PROGRESS")
        ]
        if candidates:
            return max(candidates, key=lambda b: (b["created_at"], b["sequence"]))["id"]
        return cluster.get("source_backup_id")

    def op_CreateHsm(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        cluster = self._cluster(require(params, "ClusterId"), ctx)
        zone = require(params, "AvailabilityZone")
        if cluster["state"] in ("CREATE_IN_PROGRESS", "DELETED", "DELETE_IN_PROGRESS"):
            raise _invalid(f"Cluster {cluster['id']} is {cluster['state']}; HSMs cannot be created in it.")
        if zone not in cluster["subnet_mapping"]:
            raise _invalid(f"The cluster has no subnet in {zone}; its zones are "
                           + ", ".join(sorted(cluster["subnet_mapping"])) + ".")
        restored = None
        if cluster["hsms"]:
            self._new_backup(cluster)  # the new HSM is cloned from a backup of a live one
        elif cluster["had_hsms"] or cluster.get("source_backup_id"):
            restored = self._latest_backup(cluster)
        polls = self._settings.pending_polls
        hsm = {
            "id": new_id("hsm"),
            "availability_zone": zone,
            "subnet_id": cluster["subnet_mapping"][zone],
            "eni_id": "eni-" + secrets.token_hex(8),
            "eni_ip": params.get("IpAddress") or f"10.0.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 2}",
            "state": "CREATE_IN_PROGRESS" if polls > 0 else "ACTIVE",
            "pending_polls": polls,
            "restored_backup_id": restored,
        }
        cluster["hsms"].append(hsm)
        if cluster["state"] == "UNINITIALIZED" and "ClusterCsr" not in cluster["certificates"]:
            cluster["certificates"]["ClusterCsr"] = self._cluster_csr(cluster)
        ctx.events.append((HOOK_HSM_CREATED, (cluster["id"], restored)))
        return {"Hsm": self._describe_hsm(cluster, hsm)}

    def _cluster_csr(self, cluster: dict[str, Any]) -> str:
        key = pca_keys.generate("RSA_2048")
        cluster["csr_key_pem"] = pca_keys.to_pem(key)
        name = x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, f"HSM:{cluster['id']}"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CloudHSM stand-in"),
        ])
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, pca_keys.hash_for("SHA256WITHRSA"))
        return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def op_DeleteHsm(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        cluster = self._cluster(require(params, "ClusterId"), ctx)
        keys = [(k, params[p]) for k, p in (("id", "HsmId"), ("eni_id", "EniId"), ("eni_ip", "EniIp")) if params.get(p)]
        if not keys:
            raise _invalid("One of HsmId, EniId or EniIp is required.")
        matches = [h for h in cluster["hsms"] if all(h[k] == v for k, v in keys)]
        if not matches:
            raise _not_found(f"No HSM matching {dict(keys)} in cluster {cluster['id']}.")
        hsm = matches[0]
        backup = self._new_backup(cluster)
        cluster["hsms"].remove(hsm)
        cluster["had_hsms"] = True
        if not cluster["hsms"]:
            ctx.events.append((HOOK_LAST_HSM_DELETED, (cluster["id"], backup["id"])))
        return {"HsmId": hsm["id"]}

    # ---- backups ----------------------------------------------------------------------

    def _new_backup(
        self, cluster: dict[str, Any] | None, *, region: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        backup_id = new_id("backup")
        region = region or cluster["region"]  # type: ignore[index]
        polls = self._settings.pending_polls
        record = {
            "id": backup_id,
            "arn": f"arn:aws:cloudhsm:{region}:{ACCOUNT_ID}:backup/{backup_id}",
            "region": region,
            "cluster_id": cluster["id"] if cluster else None,
            "state": "CREATE_IN_PROGRESS" if polls > 0 else "READY",
            "pending_polls": polls,
            "created_at": self._now(),
            "sequence": len(self._state["backups"]),
            "never_expires": False,
            "hsm_type": cluster["hsm_type"] if cluster else None,
            "mode": cluster["mode"] if cluster else None,
            "tags": [],
        }
        record.update(fields)
        self._state["backups"][backup_id] = record
        return record

    @staticmethod
    def _backup_id_from(value: str) -> str:
        match = _BACKUP_ARN.match(value)
        return match.group(2) if match else value

    def _backup(self, backup_id: Any, ctx: RequestContext) -> dict[str, Any]:
        record = self._state["backups"].get(backup_id)
        if record is None or record["region"] != ctx.region:
            raise _not_found(f"Backup {backup_id} not found in {ctx.region}.")
        return record

    def _backup_state(self, backup: dict[str, Any]) -> str:
        if backup["state"] == "PENDING_DELETION" and self._now() > backup["delete_timestamp"]:
            return "DELETED"
        return backup["state"]

    def _observe_backup(self, backup: dict[str, Any]) -> None:
        """After a DescribeBackups that saw it: count the poll."""
        if backup["state"] == "CREATE_IN_PROGRESS" and self._count_poll(backup):
            backup["state"] = "READY"

    def _describe_backup(self, backup: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "BackupId": backup["id"],
            "BackupArn": backup["arn"],
            "BackupState": self._backup_state(backup),
            "CreateTimestamp": backup["created_at"],
            "NeverExpires": backup["never_expires"],
        }
        for field, key in (("ClusterId", "cluster_id"), ("CopyTimestamp", "copy_timestamp"),
                           ("SourceRegion", "source_region"), ("SourceBackup", "source_backup"),
                           ("SourceCluster", "source_cluster"), ("DeleteTimestamp", "delete_timestamp"),
                           ("HsmType", "hsm_type"), ("Mode", "mode")):
            if backup.get(key) is not None:
                out[field] = backup[key]
        if backup["tags"]:
            out["TagList"] = backup["tags"]
        return out

    def op_DescribeBackups(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        filters = params.get("Filters") or {}
        unknown = set(filters) - BACKUP_FILTERS
        if unknown:
            raise _invalid(f"Unknown filter(s): {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(sorted(BACKUP_FILTERS))}.")
        never = [str(v).lower() for v in filters["neverExpires"]] if "neverExpires" in filters else None
        seen = [
            backup for backup in self._state["backups"].values()
            if backup["region"] == ctx.region
            and ("backupIds" not in filters or backup["id"] in filters["backupIds"])
            and ("sourceBackupIds" not in filters or backup.get("source_backup") in filters["sourceBackupIds"])
            and ("clusterIds" not in filters or backup.get("cluster_id") in filters["clusterIds"])
            and (never is None or str(backup["never_expires"]).lower() in never)
        ]
        selected = [b for b in seen if "states" not in filters or self._backup_state(b) in filters["states"]]
        selected.sort(key=lambda b: (b["created_at"], b["sequence"]), reverse=not params.get("SortAscending", False))
        page, token = paginate(selected, params.get("NextToken"), params.get("MaxResults"), 50,
                               "CloudHsmInvalidRequestException")
        out: dict[str, Any] = {"Backups": [self._describe_backup(b) for b in page]}
        if token:
            out["NextToken"] = token
        for backup in seen:  # polling with a states filter must still move things along
            self._observe_backup(backup)
        return out

    def op_ModifyBackupAttributes(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        backup = self._backup(require(params, "BackupId"), ctx)
        never = require(params, "NeverExpires")
        if not isinstance(never, bool):
            raise validation_error("neverExpires", "Member must be a boolean", never)
        backup["never_expires"] = never
        return {"Backup": self._describe_backup(backup)}

    def op_CopyBackupToRegion(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        destination = require(params, "DestinationRegion")
        backup = self._backup(require(params, "BackupId"), ctx)
        if not isinstance(destination, str) or not _REGION.match(destination):
            raise validation_error("destinationRegion", "Member must be a region name", destination)
        if destination == backup["region"]:
            raise _invalid("The destination region must differ from the backup's region.")
        if self._backup_state(backup) != "READY":
            raise _invalid(f"Backup {backup['id']} is {self._backup_state(backup)}, not READY.")
        now = self._now()
        self._new_backup(
            None, region=destination, cluster_id=None, hsm_type=backup.get("hsm_type"), mode=backup.get("mode"),
            source_region=backup["region"], source_backup=backup["id"],
            source_cluster=backup.get("cluster_id"), copy_timestamp=now,
            tags=list(params.get("TagList") or []),
        )
        destination_backup: dict[str, Any] = {
            "CreateTimestamp": now, "SourceRegion": backup["region"], "SourceBackup": backup["id"],
        }
        if backup.get("cluster_id"):
            destination_backup["SourceCluster"] = backup["cluster_id"]
        return {"DestinationBackup": destination_backup}

    def op_DeleteBackup(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        backup = self._backup(require(params, "BackupId"), ctx)
        if self._backup_state(backup) != "READY":
            raise _invalid(f"Backup {backup['id']} is {self._backup_state(backup)}; "
                           "only a READY backup can be deleted.")
        backup["state"] = "PENDING_DELETION"
        backup["delete_timestamp"] = self._now() + RESTORE_WINDOW.total_seconds()
        return {"Backup": self._describe_backup(backup)}

    def op_RestoreBackup(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        backup = self._backup(require(params, "BackupId"), ctx)
        if self._backup_state(backup) != "PENDING_DELETION":
            raise _invalid(f"Backup {backup['id']} is {self._backup_state(backup)}, not PENDING_DELETION.")
        backup["state"] = "READY"
        backup.pop("delete_timestamp", None)
        return {"Backup": self._describe_backup(backup)}

    # ---- tags -------------------------------------------------------------------------

    def _taggable(self, resource_id: Any, ctx: RequestContext) -> dict[str, Any]:
        if isinstance(resource_id, str) and resource_id.startswith("backup-"):
            return self._backup(resource_id, ctx)
        return self._cluster(resource_id, ctx)

    def op_TagResource(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        record = self._taggable(require(params, "ResourceId"), ctx)
        merged = {t["Key"]: t for t in record["tags"]}
        for tag in require(params, "TagList"):
            merged[tag["Key"]] = dict(tag)
        if len(merged) > 50:
            raise AwsError("CloudHsmTagException", "A resource can have at most 50 tags.")
        record["tags"] = list(merged.values())
        return {}

    def op_UntagResource(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        record = self._taggable(require(params, "ResourceId"), ctx)
        keys = set(require(params, "TagKeyList"))
        record["tags"] = [t for t in record["tags"] if t["Key"] not in keys]
        return {}

    def op_ListTags(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        record = self._taggable(require(params, "ResourceId"), ctx)
        page, token = paginate(record["tags"], params.get("NextToken"), params.get("MaxResults"), 100,
                               "CloudHsmInvalidRequestException")
        out: dict[str, Any] = {"TagList": page}
        if token:
            out["NextToken"] = token
        return out
