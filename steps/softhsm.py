"""The embedded default HSM: SoftHSM2 tokens kept inside the workspace.

The workspace gets its own `softhsm/softhsm2.conf` whose token directory is
`softhsm/tokens` (mode 0700); `SOFTHSM2_CONF` is pointed at it for this process only, so the
system's token directory is never read or written. Missing tokens are initialised through
PKCS#11 itself (C_InitToken, then C_InitPIN in a security-officer session): PINs are never
put on a command line. Tokens must be initialised before any session is opened, because a new
token only becomes visible after the library is re-initialised.
"""
from __future__ import annotations

import ctypes
import os
import secrets
from pathlib import Path

import pkcs11
from pkcs11 import TokenFlag
from pkcs11 import exceptions as p11x

from .pkcs11_token import PKCS11_LOCK, HsmError, load_module
from .secrets import Secret

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
MODULE_ENV = "PKI_CEREMONY_SOFTHSM_MODULE"


def softhsm_module() -> str:
    override = os.environ.get(MODULE_ENV)
    if override:
        return override
    for candidate in MODULE_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    raise HsmError("SoftHSM2 is not installed (no libsofthsm2.so found)",
                   hint="apt-get install softhsm2, or set " + MODULE_ENV)


def config_text(token_dir: Path) -> str:
    return (f"# written by pki-ceremony for this workspace only\n"
            f"directories.tokendir = {token_dir}\n"
            f"objectstore.backend = file\n"
            f"log.level = ERROR\n"
            f"slots.removable = false\n")


def prepare_config(softhsm_dir: Path) -> Path:
    """Create the workspace's SoftHSM config and token directory; point this process at them."""
    token_dir = softhsm_dir / "tokens"
    token_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(softhsm_dir, 0o700)
    conf = softhsm_dir / "softhsm2.conf"
    text = config_text(token_dir.resolve())
    if not conf.exists() or conf.read_text() != text:
        conf.write_text(text)
    if os.environ.get("SOFTHSM2_CONF") != str(conf.resolve()):
        os.environ["SOFTHSM2_CONF"] = str(conf.resolve())
        with PKCS11_LOCK:
            pkcs11.unload(softhsm_module()) if hasattr(pkcs11, "unload") else None
    return conf


def token_labels(module: str) -> set[str]:
    with PKCS11_LOCK:
        lib = load_module(module)
        return {slot.get_token().label for slot in lib.get_slots(token_present=True)
                if TokenFlag.TOKEN_INITIALIZED in slot.get_token().flags}


def missing_tokens(labels: list[str]) -> set[str]:
    return set(labels) - token_labels(softhsm_module())


def _init_token(lib, module: str, label: str, so_pin: bytes) -> None:
    free = [slot for slot in lib.get_slots(token_present=True)
            if TokenFlag.TOKEN_INITIALIZED not in slot.get_token().flags]
    if not free:
        raise HsmError("SoftHSM has no free slot to initialise a token in")
    c_init_token = ctypes.CDLL(module).C_InitToken
    c_init_token.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    c_init_token.restype = ctypes.c_ulong
    rv = c_init_token(free[0].slot_id, so_pin, len(so_pin), label.encode().ljust(32, b" "))
    if rv != 0:
        raise HsmError(f"C_InitToken for token '{label}' failed with CKR 0x{rv:x}")


def ensure_tokens(tokens: list[tuple[str, Secret, Secret | None]]) -> list[str]:
    """Initialise each (label, user PIN, SO PIN or None) token that does not exist yet.

    Without an SO PIN a random one is used once and forgotten. Returns the labels made.
    """
    module = softhsm_module()
    made = []
    with PKCS11_LOCK:
        lib = load_module(module)
        existing = token_labels(module)
        for label, user_pin, so_pin in tokens:
            if label in existing:
                continue
            so = (so_pin.reveal() if so_pin else secrets.token_urlsafe(24)).encode()
            _init_token(lib, module, label, so)
            try:
                with lib.get_token(token_label=label).open(rw=True, so_pin=so.decode()) as s:
                    s.init_pin(user_pin.reveal())
            except p11x.PKCS11Error as exc:
                raise HsmError(f"setting the user PIN of new token '{label}' failed: {type(exc).__name__}") from None
            lib.reinitialize()  # a new free slot appears only after C_Initialize
            made.append(label)
            existing.add(label)
    return made
