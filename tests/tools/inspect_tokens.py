"""Print, as JSON, every object on every token of a SoftHSM config: run in its own process.

    SOFTHSM2_CONF=<workspace>/softhsm/softhsm2.conf python inspect_tokens.py MODULE
PINs come on stdin as a JSON object {token label: pin} so they never appear in argv.
"""
import json
import sys

import pkcs11
from pkcs11 import Attribute, ObjectClass

BOOLS = ("TOKEN", "PRIVATE", "SENSITIVE", "EXTRACTABLE", "NEVER_EXTRACTABLE", "ALWAYS_SENSITIVE", "LOCAL",
         "SIGN", "DECRYPT", "UNWRAP", "DERIVE", "WRAP_WITH_TRUSTED")

pins = json.loads(sys.stdin.read())
lib = pkcs11.lib(sys.argv[1])
out = {}
for slot in lib.get_slots(token_present=True):
    token = slot.get_token()
    if not token.label or token.label not in pins:
        continue
    with token.open(user_pin=pins[token.label]) as s:
        objs = []
        for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY, ObjectClass.CERTIFICATE):
            for o in s.get_objects({Attribute.CLASS: cls}):
                item = {"class": cls.name, "label": o[Attribute.LABEL], "id": bytes(o[Attribute.ID]).hex()}
                if cls == ObjectClass.PRIVATE_KEY:
                    for name in BOOLS:
                        try:
                            item[name] = bool(o[getattr(Attribute, name)])
                        except Exception:  # attribute not applicable
                            pass
                if cls == ObjectClass.CERTIFICATE:
                    item["der"] = bytes(o[Attribute.VALUE]).hex()
                objs.append(item)
        out[token.label] = objs
print(json.dumps(out))
