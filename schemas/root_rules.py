"""Rules of a RootCeremony, checked against the base ceremony it names."""
from __future__ import annotations

from typing import Iterator

from .ceremony import Ceremony, RootCeremony, add_validity
from .rules import Problem, _STARTS

MAX_CRL_PERIOD_DAYS = 366  # nextUpdate at most 12 months after thisUpdate (boulder's rule)


def check_root_ceremony(rc: RootCeremony, base: Ceremony) -> list[Problem]:
    problems = [p for rule in (hsm_names, names_free, export_possible, crl_issuer, crl_period) for p in rule(rc, base)]
    return problems or new_subordinates(rc, base)


def with_additions(rc: RootCeremony, base: Ceremony) -> Ceremony:
    """The base's hierarchy and HSMs with this file's HSMs and subordinates added: what the steps use."""
    hierarchy = base.hierarchy.model_copy(update={"subordinates": [*base.hierarchy.subordinates, *rc.subordinates]})
    return base.model_copy(update={"hsms": {**base.hsms, **rc.hsms}, "hierarchy": hierarchy})


def new_subordinates(rc: RootCeremony, base: Ceremony) -> list[Problem]:
    """The whole hierarchy, the base's CAs and the new ones, passes every hierarchy rule; problems
    are reported at the new CAs' place in this file."""
    if not rc.subordinates:
        return []
    from .rules import check_hierarchy

    first_new = len(base.hierarchy.subordinates)
    out = []
    for path, message, hint in check_hierarchy(with_additions(rc, base)):
        if path[:2] == ("hierarchy", "subordinates") and len(path) > 2 and path[2] >= first_new:
            out.append((("subordinates", path[2] - first_new, *path[3:]), message, hint))
        elif path[:1] == ("custody",):
            continue  # the base's custody rules see the new CAs too; a new CA's key is not on the root's HSM
        else:
            out.append((("subordinates",), f"with the new subordinates, the base ceremony breaks a rule: {message}",
                        hint))
    return out


def names_free(rc: RootCeremony, base: Ceremony) -> Iterator[Problem]:
    taken = {ca.name for ca in base.cas()} | {ca.name for ca in rc.subordinates} | {"custody"}
    if rc.metadata.name in taken:
        yield (("metadata", "name"), f"'{rc.metadata.name}' is the name of a CA, whose steps use it already",
               "name this ceremony after what it does and when, e.g. root-crl-2027-01")


def crl_issuer(rc: RootCeremony, base: Ceremony) -> Iterator[Problem]:
    if rc.crl is None or rc.crl.issuer is None:
        return
    names = {ca.name: ca for ca in base.cas()}
    if rc.crl.issuer not in names:
        yield ("crl", "issuer"), f"the base ceremony has no CA named '{rc.crl.issuer}'", None
    elif base.hsm_of(names[rc.crl.issuer]) is None:
        yield (("crl", "issuer"), f"'{rc.crl.issuer}' lives in AWS Private CA, which signs its own CRLs",
               "configure its revocation (backend.revocation) instead")


def hsm_names(rc: RootCeremony, base: Ceremony) -> Iterator[Problem]:
    for name in rc.hsms:
        if name in base.hsms:
            yield ("hsms", name), f"'{name}' is already declared by the base ceremony", "use another name"


def export_possible(rc: RootCeremony, base: Ceremony) -> Iterator[Problem]:
    ex = rc.export
    if ex is None:
        return
    root = base.hierarchy.root
    if not root.key.exportable:
        yield (("export",), "the root key was generated non-extractable (the base ceremony's "
               "hierarchy.root.key.exportable is false): it can never leave its HSM",
               "a portable root is generated with 'key: {exportable: true}' (extractable only under a wrapping "
               "key the security officer trusts); this root can be backed up with its HSM, not exported")
    if ex.to not in rc.hsms:
        yield ("export", "to"), f"'{ex.to}' is not declared under this file's hsms", None
        return
    source = base.hsms[root.hsm]
    target = rc.hsms[ex.to]
    if (target.provider, target.module, target.token) == (source.provider, source.module, source.token):
        yield ("export", "to"), "the target is the root's own token", None
    if source.so_pin is None:
        yield (("export",), f"exporting needs the security officer of hsm '{root.hsm}' to trust the wrapping key, "
               "and the base ceremony declares no so_pin for it", f"add 'so_pin: {{env: ...}}' to hsms.{root.hsm}")


def crl_period(rc: RootCeremony, base: Ceremony) -> Iterator[Problem]:
    if rc.crl is None:
        return
    v = rc.crl.next_update
    if v.same_as_issuer:
        yield ("crl", "next_update"), "give years, months or days", None
        return
    spec = v.model_dump(exclude_none=True)
    if any((add_validity(s, spec) - s).days > MAX_CRL_PERIOD_DAYS for s in _STARTS):
        yield (("crl", "next_update"), f"{v.describe()}: nextUpdate must be at most 12 months after thisUpdate",
               "relying parties treat a CRL as current until nextUpdate: keep it short")
