"""Run in its own process, with SOFTHSM2_CONF pointing at a scratch token directory: find a key.

Reads {"token", "pin", "key_id", "label", "algorithm", "public_key_pem"} as JSON on stdin; exits 0 if the token
holds exactly one private key with that CKA_ID and label, whose public half is the one given.
"""
from __future__ import annotations

import json
import sys

from .hsm_keys import find
from .pkcs11_token import Token
from .secrets import Secret
from .softhsm import softhsm_module


def main() -> int:
    req = json.loads(sys.stdin.read())
    token = Token("scratch", softhsm_module(), req["token"], Secret(req.pop("pin")))
    try:
        ref = find(token, bytes.fromhex(req["key_id"]), req["label"], req["algorithm"])
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        print(f"{type(exc).__name__}: {exc}")
        return 1
    finally:
        token.close()
    if ref is None:
        print(f"no key with id {req['key_id']} and label '{req['label']}' in the archive")
        return 1
    if ref.public_key_pem != req["public_key_pem"]:
        print("the key in the archive has another public key")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
