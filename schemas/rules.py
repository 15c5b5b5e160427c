"""Rules that span the whole hierarchy, each naming the field it concerns.

`check_hierarchy(ceremony)` returns a list of (field path, message, hint) problems; the
loader turns them into `file:line:col field: message` errors. Each rule is its own function.
"""
from __future__ import annotations

from typing import Callable, Iterator

from .ceremony import Ceremony, RootSpec, SubordinateSpec

Problem = tuple[tuple, str, "str | None"]
CA = RootSpec | SubordinateSpec


def _sub_path(ceremony: Ceremony, ca: CA, *rest) -> tuple:
    if isinstance(ca, RootSpec):
        return ("hierarchy", "root", *rest)
    return ("hierarchy", "subordinates", ceremony.hierarchy.subordinates.index(ca), *rest)


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
        if hsm not in c.hsms:
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
        hsm = c.hsms.get(c.hsm_of(ca))
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


def validity_inside_issuer(c: Ceremony) -> Iterator[Problem]:
    """A child's certificate must end no later than its issuer's; below the primary, strictly sooner."""
    by_name = {x.name: x for x in c.cas()}

    def days(ca: CA) -> float | None:
        seen = set()
        while ca.validity.same_as_issuer and isinstance(ca, SubordinateSpec) and ca.name not in seen:
            seen.add(ca.name)
            ca = by_name.get(ca.issuer)
            if ca is None:
                return None
        return ca.validity.approx_days()

    for ca in c.hierarchy.subordinates:
        issuer = by_name.get(ca.issuer)
        ancestors = _ancestry(c, ca)
        if issuer is None or ancestors is None:
            continue
        depth = len(ancestors)
        mine, theirs = days(ca), days(issuer)
        if ca.validity.same_as_issuer:
            if depth >= 2:
                yield (_sub_path(c, ca, "validity"),
                       f"'{ca.name}' is a second-level subordinate: its validity must be strictly shorter "
                       f"than its issuer '{issuer.name}'s, not the same", "give years, months or days")
            continue
        if mine is None or theirs is None:
            continue
        if mine > theirs:
            yield (_sub_path(c, ca, "validity"),
                   f"{ca.validity.describe()} ends after the issuer '{issuer.name}' ({issuer.validity.describe()})",
                   "a certificate cannot outlive its issuer")
        elif mine == theirs:
            yield (_sub_path(c, ca, "validity"),
                   f"{ca.validity.describe()} is as long as the issuer '{issuer.name}' and would end after it, "
                   "since it is signed later",
                   "use 'same_as_issuer: true' to end exactly with the issuer" if depth < 2 else
                   "a second-level subordinate must have a strictly shorter validity")


RULES: list[Callable[[Ceremony], Iterator[Problem]]] = [
    names_unique, issuers_exist, no_cycles, hsms_exist, algorithm_families,
    labels_unique_per_token, subjects_unique, path_lengths, validity_inside_issuer,
]


def check_hierarchy(c: Ceremony) -> list[Problem]:
    problems: list[Problem] = []
    for rule in RULES:
        problems.extend(rule(c))
    return problems
