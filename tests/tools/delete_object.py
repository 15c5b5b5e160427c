"""Delete objects with a given label and class from a SoftHSM token: run in its own process.

    SOFTHSM2_CONF=... python delete_object.py MODULE TOKEN LABEL CLASS   (PIN on stdin)
"""
import sys

import pkcs11
from pkcs11 import Attribute, ObjectClass

module, token_label, label, cls = sys.argv[1:5]
pin = sys.stdin.read().strip()
token = pkcs11.lib(module).get_token(token_label=token_label)
with token.open(rw=True, user_pin=pin) as s:
    objs = list(s.get_objects({Attribute.CLASS: getattr(ObjectClass, cls), Attribute.LABEL: label}))
    for o in objs:
        o.destroy()
print(len(objs))
