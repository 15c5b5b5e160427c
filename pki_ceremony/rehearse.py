"""`pki-ceremony rehearse FILE`: run a ceremony with nothing real behind it.

Every HSM becomes a SoftHSM2 token in the workspace (same token label, same PIN source), and
AWS becomes the local stand-in (`pki_ceremony.rehearsal`) on 127.0.0.1, which speaks the AWS
protocol and applies AWS's rules. The same ceremony file that will be run against real AWS is
rehearsed unchanged. The stand-in's state is kept in the workspace, so an interrupted
rehearsal resumes like a real ceremony.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pki_ceremony.schemas.ceremony import AwsSettings

from .app import Ceremony

DEFAULT_REGION = "us-east-1"
# Rehearsal credentials: fixed dummies, so nothing on the machine (profiles, SSO) is used.
_AWS_ENV = {"AWS_ACCESS_KEY_ID": "rehearsal", "AWS_SECRET_ACCESS_KEY": "rehearsal",
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


MARKER = "REHEARSAL"  # a file in the workspace: later commands open it as a rehearsal too


def rehearsal_model(model):
    """The ceremony as rehearsed: every HSM a SoftHSM token (same label and PIN source), AWS local."""
    hsms = {n: h.model_copy(update={"provider": "softhsm", "module": None}) for n, h in model.hsms.items()}
    aws = AwsSettings(region=(model.aws.region if model.aws else None) or DEFAULT_REGION) if model.uses_aws() else None
    return model.model_copy(update={"hsms": hsms, "aws": aws})


def is_rehearsal(workspace: Path) -> bool:
    return (Path(workspace) / MARKER).exists()


def rehearsal_ceremony(path: str | Path, workspace: str | Path | None) -> Ceremony:
    from .app import open_ceremony

    root = Path(workspace) if workspace else Path(tempfile.mkdtemp(prefix="pki-ceremony-rehearsal-"))
    c = open_ceremony(path, root, model_transform=rehearsal_model)
    c.aws_waiter_delay = 1
    return c


def mark(c: Ceremony) -> None:
    c.workspace.create()
    marker = c.workspace.root / MARKER
    if not marker.exists():
        marker.write_text("This workspace is a rehearsal: every HSM was a SoftHSM2 token in softhsm/, and AWS "
                          "was a local stand-in whose state is in rehearsal/.\n")


@contextmanager
def stand_in(c: Ceremony) -> Iterator[str | None]:
    """The AWS stand-in, serving for the life of the block, with boto3 pointed at it."""
    if not c.model.uses_aws():
        yield None
        return
    from pki_ceremony.rehearsal import Settings, StandInServer

    state = c.workspace.root / "rehearsal" / "aws-stand-in.json"
    state.parent.mkdir(mode=0o700, exist_ok=True)
    server = StandInServer(state_file=str(state), settings=Settings(pending_polls=1))
    _tie_cluster_to_token(c, server)
    url = server.start()
    saved = {k: os.environ.get(k) for k in [*server.endpoint_env(), *_AWS_ENV, "AWS_PROFILE", "AWS_ENDPOINT_URL"]}
    os.environ.update({**server.endpoint_env(), **_AWS_ENV})
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        yield url
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def _tie_cluster_to_token(c: Ceremony, server) -> None:
    """The CloudHSM cluster of the ceremony's custody is played by the root's SoftHSM token: deleting
    the cluster's last HSM archives the token (that archive is the cluster backup) and removes it;
    creating an HSM restores the latest backup into the live token directory again."""
    custody = c.model.custody
    if custody is None or custody.cloudhsm is None:
        return
    region = c.model.aws.region
    cluster = custody.cloudhsm
    server.seed_cluster(cluster.cluster_id, region, cluster.availability_zone or f"{region}a")
    label = c.model.hsms[custody.hsm].token
    vault = c.workspace.root / "rehearsal" / "cloudhsm-backups"
    tokens = c.workspace.root / "softhsm" / "tokens"

    def last_hsm_deleted(cluster_id: str, backup_id: str | None) -> None:
        from pki_ceremony.steps.softhsm_archive import make_archive, remove_folder, token_folder

        serial = _serial_of(label)
        folder = token_folder(tokens, serial) if serial else None
        if folder is None or backup_id is None:
            return
        vault.mkdir(parents=True, exist_ok=True)
        make_archive(folder, vault / f"{backup_id}.tar.gz", {"token": label, "token_serial": serial,
                                                               "cluster": cluster_id})
        remove_folder(folder)

    def hsm_created(cluster_id: str, backup_id: str | None) -> None:
        from pki_ceremony.steps.softhsm_archive import restore_into

        archive = vault / f"{backup_id}.tar.gz"
        if backup_id and archive.exists():
            restore_into(archive, tokens)

    server.on_last_hsm_deleted = last_hsm_deleted
    server.on_hsm_created = hsm_created


def _serial_of(label: str) -> str | None:
    from pki_ceremony.steps.pkcs11_token import PKCS11_LOCK, load_module
    from pki_ceremony.steps.softhsm import softhsm_module

    with PKCS11_LOCK:
        lib = load_module(softhsm_module())
        for slot in lib.get_slots(token_present=True):
            token = slot.get_token()
            if token.label == label:
                return token.serial.decode().strip()
    return None
