"""Putting the root's HSM away after a ceremony, and bringing it back for the next one.

  softhsm.backup     archive the token (+ manifest), verify the archive in a scratch SoftHSM
  softhsm.teardown   re-verify the archive, then remove the token from the live token directory
  softhsm.restore    unpack the archive into the live token directory, find the root key in it
  cloudhsm.teardown  delete the cluster's HSMs (CloudHSM backs the cluster up when an HSM is
                     removed), wait for that backup, mark it never to expire, copy it to other regions
  cloudhsm.restore   create_hsm in the cluster (CloudHSM restores the latest backup into it), wait
                     for ACTIVE, find the root key and check it is the root certificate's

A restore always ends by finding the key whose public key matches the root certificate; a
teardown never runs without a verified backup, and never while a step still needs the HSM
(the DAG puts every such step before it).
"""
from __future__ import annotations

import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from pki_ceremony.engine.contract import StepCall, StepPlugin, StepResult

from . import hsm_keys
from .aws_clients import AwsError, call
from .runtime import Runtime
from .softhsm_archive import (BackupError, extract, make_archive, remove_folder, restore_into, sha256_file, token_folder,
                              verify_in_scratch)
from .x509_profile import load_cert, same_key


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _check_root_key(ctx: Runtime, hsm: str, key: dict, certificate: dict | None) -> None:
    """The token holds the root key (id, label, public key), and it is the root certificate's key."""
    ref = hsm_keys.find(ctx.token(hsm), bytes.fromhex(key["key_id"]), key["label"], key["algorithm"])
    if ref is None:
        raise BackupError(f"the root key '{key['label']}' (id {key['key_id']}) is not on {ctx.token(hsm).describe()}")
    if ref.public_key_pem != key["public_key_pem"]:
        raise BackupError(f"the key '{key['label']}' on {ctx.token(hsm).describe()} has another public key")
    if certificate is not None and not same_key(ref.public_key(), load_cert(certificate["certificate_pem"]).public_key()):
        raise BackupError("the key found is not the root certificate's key")


# --- SoftHSM -------------------------------------------------------------------------------------------------

class SoftHsmBackup(StepPlugin):
    kind = "softhsm.backup"

    def _directory(self, call_: StepCall, ctx: Runtime) -> Path:
        d = call_.spec.get("directory")
        return (ctx.ceremony_dir / d).resolve() if d else ctx.workspace / "backups"

    def intend(self, call_: StepCall, ctx: Runtime) -> dict:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        name = f"{ctx.ceremony_name}-{call_.spec['hsm']['token']}-{stamp}.tar.gz"
        return {"archive": str(self._directory(call_, ctx) / name)}

    def _verified(self, call_: StepCall, ctx: Runtime, archive: Path, manifest: dict) -> StepResult:
        hsm = call_.spec["hsm"]
        verify_in_scratch(archive, hsm["token"], ctx.pin(hsm["name"]), call_.inputs["key"])
        outputs = {"archive": str(archive), "sha256": sha256_file(archive), "token": hsm["token"],
                   "token_serial": manifest["token_serial"], "files": len(manifest["files"]), "verified_at": _now()}
        return StepResult(outputs, {"backup-manifest.json": json.dumps(manifest, indent=2, sort_keys=True).encode()},
                          summary=f"{archive} ({len(manifest['files'])} files), verified: the root key is in it")

    def adopt(self, call_: StepCall, ctx: Runtime) -> StepResult | None:
        archive = Path(call_.intent["archive"])
        if not archive.exists():
            return None
        with tempfile.TemporaryDirectory() as tmp:
            manifest, _ = extract(archive, Path(tmp))
        return self._verified(call_, ctx, archive, manifest)

    def run(self, call_: StepCall, ctx: Runtime) -> StepResult:
        hsm = call_.spec["hsm"]
        _check_root_key(ctx, hsm["name"], call_.inputs["key"], call_.inputs["certificate"])
        serial = ctx.token(hsm["name"]).serial()
        ctx.forget_token(hsm["name"])  # closed: nothing is writing to the token while it is copied
        folder = token_folder(ctx.softhsm_token_dir(), serial)
        if folder is None:
            raise BackupError(f"no folder for token '{hsm['token']}' (serial {serial}) in the live token directory")
        archive = Path(call_.intent["archive"])
        manifest = make_archive(folder, archive, {"token": hsm["token"], "token_serial": serial,
                                                  "ceremony": ctx.ceremony_name, "made_at": _now()})
        return self._verified(call_, ctx, archive, manifest)


def _verified_archive(call_: StepCall, ctx: Runtime) -> Path:
    """The interlock: the recorded backup is there, unchanged, and still holds the root key."""
    backup = call_.inputs["backup"]
    archive = Path(backup["archive"])
    if not archive.exists():
        raise BackupError(f"no verified backup: {archive} is missing", hint="restore the archive file, or make a new "
                          "backup (apply --replace custody/backup) before tearing the token down")
    if sha256_file(archive) != backup["sha256"]:
        raise BackupError(f"no verified backup: {archive} is not the archive that was verified (SHA-256 differs)",
                          hint="restore the original archive before tearing the token down")
    verify_in_scratch(archive, call_.spec["hsm"]["token"], ctx.pin(call_.spec["hsm"]["name"]), call_.inputs["key"])
    return archive


class SoftHsmTeardown(StepPlugin):
    kind = "softhsm.teardown"
    destructive = True

    def run(self, call_: StepCall, ctx: Runtime) -> StepResult:
        hsm = call_.spec["hsm"]
        archive = _verified_archive(call_, ctx)
        serial = call_.inputs["backup"]["token_serial"]
        ctx.forget_token(hsm["name"])
        folder = token_folder(ctx.softhsm_token_dir(), serial)
        if folder is not None:
            remove_folder(folder)
            ctx.reload_pkcs11()
        return StepResult({"removed_token": hsm["token"], "token_serial": serial, "archive": str(archive),
                           "offline_since": _now()},
                          summary=f"token '{hsm['token']}' removed; its verified archive is {archive}")


class SoftHsmRestore(StepPlugin):
    kind = "softhsm.restore"

    def run(self, call_: StepCall, ctx: Runtime) -> StepResult:
        hsm = call_.spec["hsm"]
        backup = call_.inputs["backup"]
        archive = Path(backup["archive"])
        if not archive.exists() or sha256_file(archive) != backup["sha256"]:
            raise BackupError(f"the backup {archive} is missing or is not the one verified when it was made")
        token_dir = ctx.softhsm_token_dir()
        if token_folder(token_dir, backup["token_serial"]) is None:
            restore_into(archive, token_dir)
            ctx.reload_pkcs11()
        _check_root_key(ctx, hsm["name"], call_.inputs["key"], call_.inputs["certificate"])
        return StepResult({"restored_from": str(archive), "token_serial": backup["token_serial"], "at": _now()},
                          summary=f"token '{hsm['token']}' restored from {archive.name}; the root key is in it")


# --- AWS CloudHSM ----------------------------------------------------------------------------------------------

def _hsm_client(ctx: Runtime, region: str | None = None):
    if region is None or region == ctx.aws.region:
        return ctx.aws.client("cloudhsmv2")
    return ctx.aws.regional_client("cloudhsmv2", region)


def _cluster(ctx: Runtime, cluster_id: str) -> dict:
    found = call("describe the cluster", _hsm_client(ctx).describe_clusters,
                 Filters={"clusterIds": [cluster_id]}).get("Clusters", [])
    if not found:
        raise AwsError(f"no CloudHSM cluster {cluster_id} in {ctx.aws.region}")
    return found[0]


def _wait(ctx: Runtime, what: str, check, timeout_s: float = 3600, delay_s: float = 2.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AwsError(f"gave up waiting for {what}")
        ctx.waiting(what)
        time.sleep(delay_s)


class CloudHsmTeardown(StepPlugin):
    kind = "cloudhsm.teardown"
    destructive = True

    def intend(self, call_: StepCall, ctx: Runtime) -> dict:
        # The zone is recorded first: a teardown resumed after the HSMs are gone still knows where
        # to create one when the root is needed again.
        hsms = _cluster(ctx, call_.spec["cluster"]["cluster_id"]).get("Hsms", [])
        return {"started_at": time.time(), "availability_zone": next((h.get("AvailabilityZone") for h in hsms), None)}

    def run(self, call_: StepCall, ctx: Runtime) -> StepResult:
        spec, cluster_id = call_.spec, call_.spec["cluster"]["cluster_id"]
        client = _hsm_client(ctx)
        with ctx.aws.counting() as calls:
            hsms = _cluster(ctx, cluster_id).get("Hsms", [])
            zone = next((h.get("AvailabilityZone") for h in hsms), None) or call_.intent.get("availability_zone")
            if hsms:  # the key must be in what the backup will hold
                _check_root_key(ctx, spec["hsm"]["name"], call_.inputs["key"], call_.inputs.get("certificate"))
                ctx.forget_token(spec["hsm"]["name"])
                for h in hsms:
                    call("delete an HSM", client.delete_hsm, ClusterId=cluster_id, HsmId=h["HsmId"])
                ctx.reload_pkcs11()
            since = call_.intent["started_at"] - 5

            def ready_backup():
                backups = call("list the cluster's backups", lambda: [
                    b for page in client.get_paginator("describe_backups").paginate(
                        Filters={"clusterIds": [cluster_id]}) for b in page.get("Backups", [])])
                mine = [b for b in backups if _ts(b.get("CreateTimestamp")) >= since]
                done = [b for b in mine if b.get("BackupState") == "READY"]
                return max(done, key=lambda b: _ts(b.get("CreateTimestamp"))) if done and len(done) == len(mine) else None

            backup = _wait(ctx, f"the backup of {cluster_id} made by the teardown", ready_backup)
            backup_id = backup["BackupId"]
            if not backup.get("NeverExpires"):
                call("keep the backup", client.modify_backup_attributes, BackupId=backup_id, NeverExpires=True)
            copies = {}
            for region in spec["cluster"].get("copy_backup_to", []):
                copies[region] = self._copy(ctx, backup_id, region)
        return StepResult({"cluster_id": cluster_id, "backup_id": backup_id, "never_expires": True, "copies": copies,
                           "deleted_hsms": [h["HsmId"] for h in hsms], "availability_zone": zone,
                           "offline_since": _now()},
                          summary=f"{len(hsms)} HSM(s) deleted; backup {backup_id} kept, never to expire"
                                  + (f", copied to {', '.join(copies)}" if copies else ""), api_calls=dict(calls))

    @staticmethod
    def _copy(ctx: Runtime, backup_id: str, region: str) -> str:
        remote = _hsm_client(ctx, region)
        existing = call(f"look for copies in {region}", remote.describe_backups,
                        Filters={"sourceBackupIds": [backup_id]}).get("Backups", [])
        if existing:
            return existing[0]["BackupId"]
        call(f"copy the backup to {region}", _hsm_client(ctx).copy_backup_to_region,
             DestinationRegion=region, BackupId=backup_id)
        # The answer names the source only: the copy is found in its region by its source backup id.
        found = _wait(ctx, f"the copy of {backup_id} in {region}", lambda: call(
            f"look for copies in {region}", remote.describe_backups,
            Filters={"sourceBackupIds": [backup_id]}).get("Backups", []), timeout_s=600, delay_s=1)
        return found[0]["BackupId"]


def _ts(value) -> float:
    if value is None:
        return 0.0
    return value.timestamp() if isinstance(value, datetime) else float(value)


class CloudHsmRestore(StepPlugin):
    kind = "cloudhsm.restore"

    def run(self, call_: StepCall, ctx: Runtime) -> StepResult:
        cluster_id = call_.spec["cluster"]["cluster_id"]
        teardown = call_.inputs["teardown"]
        zone = call_.spec["cluster"].get("availability_zone") or teardown.get("availability_zone")
        if not zone:
            raise AwsError(f"no availability zone to create an HSM in for {cluster_id}",
                           hint="set custody.cloudhsm.availability_zone in the base ceremony")
        client = _hsm_client(ctx)
        with ctx.aws.counting() as calls:
            hsms = _cluster(ctx, cluster_id).get("Hsms", [])
            if not hsms:
                call("create an HSM", client.create_hsm, ClusterId=cluster_id, AvailabilityZone=zone)
            _wait(ctx, f"an ACTIVE HSM in {cluster_id}", lambda: [
                h for h in _cluster(ctx, cluster_id).get("Hsms", []) if h.get("State") == "ACTIVE"])
            ctx.reload_pkcs11()
            _check_root_key(ctx, call_.spec["hsm"]["name"], call_.inputs["key"], call_.inputs["certificate"])
        return StepResult({"cluster_id": cluster_id, "availability_zone": zone, "at": _now()},
                          summary=f"an HSM of {cluster_id} is ACTIVE with the root key restored",
                          api_calls=dict(calls))


BUILTIN = (SoftHsmBackup, SoftHsmTeardown, SoftHsmRestore, CloudHsmTeardown, CloudHsmRestore)
