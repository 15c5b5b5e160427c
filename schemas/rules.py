"""Rules that span the whole hierarchy, each naming the field it concerns.

`check_hierarchy(ceremony)` returns a list of (field path, message, hint) problems; the
loader turns them into `file:line:col field: message` errors. Each rule is its own function.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Iterator

from .ceremony import HSM_KEY_ALGORITHMS, Ceremony, RootSpec, SubordinateSpec, add_validity

Problem = tuple[tuple, str, "str | None"]
CA = RootSpec | SubordinateSpec


def _sub_path(ceremony: Ceremony, ca: CA, *rest) -> tuple:
    if isinstance(ca, RootSpec):
        return ("hierarchy", "root", *rest)
    index = next(i for i, sub in enumerate(ceremony.hierarchy.subordinates) if sub is ca)
    return ("hierarchy", "subordinates", index, *rest)


def names_unique(c: Ceremony) -> Iterator[Problem]:
    seen: dict[str, CA] = {}
    for ca in c.cas():
        if ca.name in seen:
            yield _sub_path(c, ca, "name"), f"the name '{ca.name}' is used twice", None
        seen[ca.name] = ca


def issuers_exist(c: Ceremony) -> Iterator[Problem]:
    names = {ca.name for ca in c.cas()}
    for ca in c.hierarchy.subordinates:
        if ca.issuer == ca.name:
            yield _sub_path(c, ca, "issuer"), f"'{ca.name}' names itself as issuer; only the root is self-signed", None
        elif ca.issuer not in names:
            yield (_sub_path(c, ca, "issuer"), f"'{ca.name}' refers to issuer '{ca.issuer}', which is not declared",
                   "declare it under hierarchy.subordinates, or name one of: " + ", ".join(sorted(names)))


def no_cycles(c: Ceremony) -> Iterator[Problem]:
    issuer = {ca.name: ca.issuer for ca in c.hierarchy.subordinates}
    reported: set[frozenset] = set()
    for ca in c.hierarchy.subordinates:
        if ca.issuer == ca.name:
            continue  # reported by issuers_exist
        path, cur = [ca.name], ca.issuer
        while cur in issuer and cur not in path:
            path.append(cur)
            cur = issuer[cur]
        if cur in path:
            cycle = path[path.index(cur):] + [cur]
            if frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                yield _sub_path(c, ca, "issuer"), "issuers form a cycle: " + " -> ".join(cycle), None


def hsms_exist(c: Ceremony) -> Iterator[Problem]:
    for ca in c.cas():
        hsm = c.hsm_of(ca)
        field = ("hsm",) if isinstance(ca, RootSpec) else ("backend", "hsm")
        if hsm is not None and hsm not in c.hsms:
            yield (_sub_path(c, ca, *field), f"HSM '{hsm}' is not declared under hsms",
                   "declared HSMs: " + ", ".join(sorted(c.hsms)))


def algorithm_families(c: Ceremony) -> Iterator[Problem]:
    for ca in c.cas():
        if ca.signing_algorithm and ca.signing_algorithm.family != ca.key.algorithm.family:
            yield (_sub_path(c, ca, "signing_algorithm"),
                   f"{ca.signing_algorithm.value} does not fit a {ca.key.algorithm.value} key",
                   "RSA keys sign with SHA*WITHRSA, EC keys with SHA*WITHECDSA")


def labels_unique_per_token(c: Ceremony) -> Iterator[Problem]:
    seen: dict[tuple[str, str], str] = {}
    for ca in c.cas():
        hsm = c.hsms.get(c.hsm_of(ca) or "")
        if hsm is None:
            continue
        key = (hsm.provider, hsm.module or "", hsm.token, c.key_label(ca))
        if key in seen:
            yield (_sub_path(c, ca, "key", "label"),
                   f"key label '{c.key_label(ca)}' is also used by '{seen[key]}' on token '{hsm.token}'", None)
        seen[key] = ca.name


def subjects_unique(c: Ceremony) -> Iterator[Problem]:
    seen: dict[tuple, str] = {}
    for ca in c.cas():
        dn = tuple(sorted(ca.subject.model_dump(exclude_none=True).items()))
        if dn in seen:
            yield (_sub_path(c, ca, "subject"), f"the subject is the same as '{seen[dn]}'s",
                   "every CA needs its own distinguished name, or chains cannot be built")
        seen[dn] = ca.name


def _ancestry(c: Ceremony, ca: CA) -> list[CA] | None:
    """Issuers of `ca` from its direct issuer up to the root, or None if broken/cyclic."""
    by_name = {x.name: x for x in c.cas()}
    out, cur = [], ca
    while isinstance(cur, SubordinateSpec):
        nxt = by_name.get(cur.issuer)
        if nxt is None or nxt in out or nxt is ca:
            return None
        out.append(nxt)
        cur = nxt
    return out


def path_lengths(c: Ceremony) -> Iterator[Problem]:
    for ca in c.hierarchy.subordinates:
        ancestors = _ancestry(c, ca)
        if ancestors is None:
            continue
        for distance, anc in enumerate(ancestors, start=1):
            if anc.path_len is None:
                continue
            if distance > anc.path_len:
                yield (_sub_path(c, ca, "issuer"),
                       f"'{ca.name}' is {distance} level(s) below '{anc.name}', whose path_len is {anc.path_len}",
                       f"raise '{anc.name}'s path_len to at least {distance}, or move '{ca.name}' up")
                break
            if ca.path_len is not None and distance + ca.path_len > anc.path_len:
                yield (_sub_path(c, ca, "path_len"),
                       f"path_len {ca.path_len} is more than '{anc.name}' (path_len {anc.path_len}, "
                       f"{distance} level(s) up) allows: at most {anc.path_len - distance}", None)
                break


def _effective_validity(c: Ceremony, ca: CA) -> dict | None:
    """The validity that decides a CA's length: its own, or its issuer's for same_as_issuer."""
    by_name = {x.name: x for x in c.cas()}
    seen: set[str] = set()
    while ca.validity.same_as_issuer:
        if not isinstance(ca, SubordinateSpec) or ca.name in seen or ca.issuer not in by_name:
            return None
        seen.add(ca.name)
        ca = by_name[ca.issuer]
    return ca.validity.model_dump(exclude_none=True)


# Start dates spanning a leap-year cycle, both sides of February: calendar lengths vary with them.
_STARTS = [datetime(2028 + y, m, 1, tzinfo=timezone.utc) for y in range(4) for m in (1, 3)]


def root_validity(c: Ceremony) -> Iterator[Problem]:
    if c.hierarchy.root.validity.same_as_issuer:
        yield (("hierarchy", "root", "validity"), "the root has no issuer: same_as_issuer cannot apply",
               "give years, months or days")


def validity_inside_issuer(c: Ceremony) -> Iterator[Problem]:
    """A child's certificate must end no later than its issuer's; below the primary, strictly sooner.

    Lengths are compared in calendar arithmetic from several start dates, since a child is
    signed after its issuer and 365 days is not always a year."""
    by_name = {x.name: x for x in c.cas()}
    for ca in c.hierarchy.subordinates:
        issuer = by_name.get(ca.issuer)
        ancestors = _ancestry(c, ca)
        if issuer is None or ancestors is None:
            continue
        second_level = len(ancestors) >= 2
        if ca.validity.same_as_issuer:
            if second_level:
                yield (_sub_path(c, ca, "validity"),
                       f"'{ca.name}' is a second-level subordinate: its validity must be strictly shorter "
                       f"than its issuer '{issuer.name}'s, not the same", "give years, months or days")
            continue
        mine, theirs = _effective_validity(c, ca), _effective_validity(c, issuer)
        if mine is None or theirs is None:
            continue
        ends = [(add_validity(s, mine), add_validity(s, theirs)) for s in _STARTS]
        if all(a > b for a, b in ends):
            yield (_sub_path(c, ca, "validity"),
                   f"{ca.validity.describe()} ends after the issuer '{issuer.name}' ({issuer.validity.describe()})",
                   "a certificate cannot outlive its issuer")
        elif any(a >= b for a, b in ends):
            yield (_sub_path(c, ca, "validity"),
                   f"{ca.validity.describe()} is as long as the issuer '{issuer.name}' "
                   f"({issuer.validity.describe()}) or longer in some years, and would end after it, "
                   "since it is signed later",
                   "use 'same_as_issuer: true' to end exactly with the issuer" if not second_level else
                   "a second-level subordinate must have a strictly shorter validity")


PCA_TEMPLATE_PATH_LENS = range(0, 4)  # SubordinateCACertificate_PathLen0..3/V1


def backend_fields(c: Ceremony) -> Iterator[Problem]:
    """What a backend cannot do: HSM key algorithms, labels and exportability, Private CA templates."""
    by_name = {x.name: x for x in c.cas()}
    for ca in c.cas():
        kind = c.backend_type(ca)
        if kind == "local" and ca.key.algorithm not in HSM_KEY_ALGORITHMS:
            yield (_sub_path(c, ca, "key", "algorithm"), f"{ca.key.algorithm.value} is offered by Private CA only",
                   "HSM keys: RSA_2048, RSA_3072, RSA_4096, EC_prime256v1, EC_secp384r1")
        if kind == "aws-pca":
            if ca.key.label is not None:
                yield (_sub_path(c, ca, "key", "label"), "a Private CA key has no label: AWS holds it", None)
            if ca.key.exportable:
                yield (_sub_path(c, ca, "key", "exportable"), "a Private CA key can never be exported", None)
        issuer = by_name.get(getattr(ca, "issuer", None) or "")
        if issuer is not None and c.backend_type(issuer) == "aws-pca":
            if ca.path_len is None or ca.path_len not in PCA_TEMPLATE_PATH_LENS:
                yield (_sub_path(c, ca, "path_len"),
                       f"'{ca.name}' is issued by Private CA ('{issuer.name}'), whose CA templates set pathLen 0 to 3: "
                       "give path_len 0, 1, 2 or 3", None)


def custody(c: Ceremony) -> Iterator[Problem]:
    """The HSM put away is the root's, of the right kind, and holds no other CA's key."""
    cu = c.custody
    if cu is None:
        return
    root = c.hierarchy.root
    if cu.hsm != root.hsm:
        yield ("custody", "hsm"), f"custody is for the root's HSM ('{root.hsm}'), not '{cu.hsm}'", None
        return
    hsm = c.hsms.get(cu.hsm)
    if hsm is None:
        return
    if cu.softhsm is not None and hsm.provider != "softhsm":
        yield (("custody", "softhsm"), f"hsm '{cu.hsm}' is not a softhsm token",
               "use 'cloudhsm: {cluster_id: ...}' for AWS CloudHSM")
    if cu.cloudhsm is not None and hsm.provider != "pkcs11":
        yield (("custody", "cloudhsm"), f"hsm '{cu.hsm}' is a softhsm token, not CloudHSM",
               "use 'softhsm: {}' to archive a SoftHSM token")
    if cu.cloudhsm is not None and not cu.teardown:
        yield (("custody", "teardown"), "CloudHSM backs a cluster up when an HSM is removed, and daily while HSMs "
               "run: custody of a CloudHSM root is the teardown", "set teardown: true, or leave custody out to keep "
               "the HSMs running")
    if cu.teardown:
        others = [ca.name for ca in c.hierarchy.subordinates if c.hsm_of(ca) == cu.hsm]
        if others:
            yield (("custody", "teardown"), f"hsm '{cu.hsm}' also holds the keys of " + ", ".join(others) +
                   "; teardown would take them offline too", "keep subordinates' keys on another HSM")


def aws_region(c: Ceremony) -> Iterator[Problem]:
    if c.aws is not None and not c.uses_aws() and not (c.custody and c.custody.cloudhsm):
        yield ("aws",), "an 'aws' section, but no CA uses the aws-pca backend", "remove it, or use it"


RULES: list[Callable[[Ceremony], Iterator[Problem]]] = [
    names_unique, issuers_exist, no_cycles, hsms_exist, algorithm_families,
    labels_unique_per_token, subjects_unique, path_lengths, root_validity, validity_inside_issuer,
    backend_fields, aws_region, custody,
]


def check_hierarchy(c: Ceremony) -> list[Problem]:
    problems: list[Problem] = []
    for rule in RULES:
        problems.extend(rule(c))
    return problems
