"""A SoftHSM token directory as a verifiable archive.

An archive is a gzip'd tar of one token's folder plus `MANIFEST.json` (every file's name, size
and SHA-256). It is verified by unpacking it into a scratch SoftHSM in a separate process
(SoftHSM's config is per process) and finding the key there by CKA_ID, label and public key.
PINs reach that process on its standard input, never its argv or environment.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from pki_ceremony.engine.workspace import fsync_dir, write_atomically
from pki_ceremony.errors import CeremonyError

from .secrets import Secret

MANIFEST = "MANIFEST.json"


class BackupError(CeremonyError):
    pass


def token_folder(token_dir: Path, serial: str) -> Path | None:
    """SoftHSM names a token's folder by a UUID whose last 16 hex digits are the token's serial."""
    found = [p for p in token_dir.iterdir() if p.is_dir() and p.name.replace("-", "").endswith(serial.lower())]
    if len(found) > 1:
        raise BackupError(f"{len(found)} token folders match serial {serial}")
    return found[0] if found else None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def make_archive(folder: Path, dest: Path, meta: dict) -> dict:
    """Write `dest` (never over an existing file) and return the manifest."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    manifest = {**meta, "folder": folder.name,
                "files": [{"name": str(p.relative_to(folder)), "size": p.stat().st_size, "sha256": sha256_file(p)}
                          for p in files]}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = json.dumps(manifest, indent=2, sort_keys=True).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode = len(data), 0o600
        tar.addfile(info, io.BytesIO(data))
        for p in files:
            tar.add(p, arcname=f"{folder.name}/{p.relative_to(folder)}", recursive=False)
    if dest.exists():
        raise BackupError(f"{dest} exists already; refusing to overwrite a backup")
    write_atomically(dest, buf.getvalue(), mode=0o600)
    return manifest


def extract(archive: Path, into: Path) -> tuple[dict, Path]:
    """Unpack into `into` (the token folder appears there); check every file against the manifest."""
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.getmember(MANIFEST)
        manifest = json.loads(tar.extractfile(member).read())
        folder = manifest["folder"]
        names = {f"{folder}/{f['name']}": f for f in manifest["files"]}
        members = [m for m in tar.getmembers() if m.name != MANIFEST]
        if {m.name for m in members} != set(names) or any(not m.isfile() for m in members):
            raise BackupError(f"{archive}: its contents do not match its manifest")
        tar.extractall(into, members=members, filter="data")
    target = into / folder
    for f in manifest["files"]:
        p = target / f["name"]
        if p.stat().st_size != f["size"] or sha256_file(p) != f["sha256"]:
            raise BackupError(f"{archive}: {f['name']} does not match its manifest")
    return manifest, target


def verify_in_scratch(archive: Path, token_label: str, pin: Secret, key: dict) -> None:
    """Unpack into a scratch SoftHSM and find the key by id, label and public key (separate process)."""
    scratch = Path(tempfile.mkdtemp(prefix="pki-ceremony-verify-"))
    try:
        tokens = scratch / "tokens"
        tokens.mkdir(mode=0o700)
        extract(archive, tokens)
        conf = scratch / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
        request = json.dumps({"token": token_label, "pin": pin.reveal(), "key_id": key["key_id"],
                              "label": key["label"], "algorithm": key["algorithm"],
                              "public_key_pem": key["public_key_pem"]})
        # A minimal environment: nothing of ours (PIN variables included) but what the child needs.
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV",
                                          "PKI_CEREMONY_SOFTHSM_MODULE") if k in os.environ}
        env["SOFTHSM2_CONF"] = str(conf)
        r = subprocess.run([sys.executable, "-m", "pki_ceremony.steps.softhsm_verify"], input=request,
                           capture_output=True, text=True, env=env, timeout=120)
        if r.returncode != 0:
            raise BackupError(f"the archive {archive.name} does not hold the key: {r.stdout.strip() or r.stderr[-300:]}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def remove_folder(folder: Path) -> None:
    parent = folder.parent
    shutil.rmtree(folder)
    fsync_dir(parent)


def restore_into(archive: Path, token_dir: Path) -> Path:
    """Unpack the token folder into the live token directory (atomically: unpack beside, then rename)."""
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=token_dir))
    try:
        manifest, folder = extract(archive, staging)
        target = token_dir / manifest["folder"]
        if target.exists():
            raise BackupError(f"{target} exists already; refusing to overwrite a live token")
        os.replace(folder, target)
        fsync_dir(token_dir)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)
