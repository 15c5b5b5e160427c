"""The Private CA import rules (steps/pca_import_rules.py), one broken certificate per rule.

Every case starts from the same good hierarchy, made here with software EC P-256 keys:

    root (self-signed, pathLen None)  ->  primary (pathLen 1)  ->  subordinate (pathLen 0, from a CSR)

and changes exactly one thing. `check_pca_import(cert_pem, chain_pem, csr_pem, ca_type)` must refuse
it with `ImportRefused`, and the message must start with the prefix of the rule that refused it.
The good hierarchy itself (and a few legal variations) must pass, so every refusal test can fail.
A second table checks that each broken case is refused *only* by its own rule (the other rules
pass it), so a case cannot pass "by accident" through an unrelated defect in its fixture.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from pki_ceremony.steps import pca_import_rules as rules
from pki_ceremony.steps.cert_checks import ImportRefused
from pki_ceremony.steps.pca_import_rules import check_pca_import

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
ROOT_END = datetime(2045, 1, 1, tzinfo=timezone.utc)
PRIMARY_END = datetime(2040, 1, 1, tzinfo=timezone.utc)
SUB_END = datetime(2035, 1, 1, tzinfo=timezone.utc)

MAX_CERT_BYTES, MAX_CHAIN_BYTES = 32 * 1024, 2 * 1024 * 1024  # AWS's limits (botocore's documentation)
DEFAULT = object()  # "use the good value" for keyword arguments where None means something


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Test PKI"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


ROOT_NAME, PRIMARY_NAME, SUB_NAME = _name("Test Root CA"), _name("Test Primary CA"), _name("Test Subordinate CA")


def pem(obj) -> str:
    return obj.public_bytes(serialization.Encoding.PEM).decode()


def ski(key) -> bytes:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest


def ca_cert(*, subject: x509.Name, issuer: x509.Name, public_key, signer, issuer_ski: bytes,
            path_len: int | None = None, bc=DEFAULT, bc_critical: bool = True,
            extra: tuple[tuple[x509.ExtensionType, bool], ...] = (),
            not_before: datetime = T0, not_after: datetime = SUB_END, serial: int | None = None) -> x509.Certificate:
    """A CA certificate in the tool's profile (x509_profile.ca_extensions), with the given changes.

    bc: DEFAULT -> BasicConstraints(CA:TRUE, path_len); None -> no basicConstraints at all;
    otherwise the BasicConstraints value to use. extra: (extension, critical) pairs added after.
    """
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
         .serial_number(serial or x509.random_serial_number()).not_valid_before(not_before)
         .not_valid_after(not_after))
    if bc is DEFAULT:
        bc = x509.BasicConstraints(ca=True, path_length=path_len)
    if bc is not None:
        b = b.add_extension(bc, critical=bc_critical)
    b = (b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier(issuer_ski, None, None), critical=False))
    for ext, critical in extra:
        b = b.add_extension(ext, critical=critical)
    return b.sign(signer, hashes.SHA256())


@dataclass(frozen=True)
class Keys:
    root: ec.EllipticCurvePrivateKey
    primary: ec.EllipticCurvePrivateKey
    sub: ec.EllipticCurvePrivateKey
    other: ec.EllipticCurvePrivateKey  # an impostor: signs what it should not, or is the wrong CA key


@dataclass
class Import:
    cert_pem: str
    chain_pem: str
    csr_pem: str
    ca_type: str = "SUBORDINATE"

    def check(self) -> None:
        check_pca_import(self.cert_pem, self.chain_pem, self.csr_pem, self.ca_type)


class PKI:
    """Builds the good hierarchy and its one-change variations."""

    def __init__(self, keys: Keys):
        self.k = keys
        self.good_root = self.root()
        self.good_primary = self.primary()
        self.csr = (x509.CertificateSigningRequestBuilder().subject_name(SUB_NAME)
                    .sign(keys.sub, hashes.SHA256()))

    def root(self, *, path_len: int | None = None, extra=(), key=None) -> x509.Certificate:
        key = key or self.k.root
        return ca_cert(subject=ROOT_NAME, issuer=ROOT_NAME, public_key=key.public_key(), signer=key,
                       issuer_ski=ski(key), path_len=path_len, extra=extra, not_after=ROOT_END)

    def primary(self, *, path_len: int | None = 1, bc=DEFAULT, extra=(), signer=None,
                not_after: datetime = PRIMARY_END) -> x509.Certificate:
        return ca_cert(subject=PRIMARY_NAME, issuer=ROOT_NAME, public_key=self.k.primary.public_key(),
                       signer=signer or self.k.root, issuer_ski=ski(self.k.root), path_len=path_len, bc=bc,
                       extra=extra, not_after=not_after)

    def sub(self, *, path_len: int | None = 0, bc=DEFAULT, bc_critical: bool = True, extra=(),
            signer=None, issuer: x509.Name = PRIMARY_NAME, not_after: datetime = SUB_END) -> x509.Certificate:
        signer = signer or self.k.primary
        return ca_cert(subject=SUB_NAME, issuer=issuer, public_key=self.k.sub.public_key(), signer=signer,
                       issuer_ski=ski(signer), path_len=path_len, bc=bc, bc_critical=bc_critical, extra=extra,
                       not_after=not_after)

    def chain(self, *certs: x509.Certificate) -> str:
        """Chain PEM, issuer first, root last (defaults to the good primary + root)."""
        return "".join(pem(c) for c in (certs or (self.good_primary, self.good_root)))

    def good(self, **sub_changes) -> Import:
        return Import(pem(self.sub(**sub_changes)), self.chain(), pem(self.csr))

    def under(self, primary: x509.Certificate, root: x509.Certificate | None = None, **sub_changes) -> Import:
        """The good subordinate (with sub_changes), chained under another primary (and root)."""
        return Import(pem(self.sub(**sub_changes)), self.chain(primary, root or self.good_root), pem(self.csr))


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(*(ec.generate_private_key(ec.SECP256R1()) for _ in range(4)))


@pytest.fixture(scope="module")
def pki(keys) -> PKI:
    return PKI(keys)


# --- extension values -------------------------------------------------------------------------------------------

def _uri(u: str) -> x509.UniformResourceIdentifier:
    return x509.UniformResourceIdentifier(u)


AIA = x509.AuthorityInformationAccess([x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                                                              _uri("http://pki.example.test/primary.crt"))])
CRL_DP = x509.CRLDistributionPoints([x509.DistributionPoint([_uri("http://pki.example.test/primary.crl")],
                                                            None, None, None)])
FRESHEST_CRL = x509.FreshestCRL([x509.DistributionPoint([_uri("http://pki.example.test/delta.crl")],
                                                        None, None, None)])
POLICY_CONSTRAINTS = x509.PolicyConstraints(require_explicit_policy=0, inhibit_policy_mapping=None)
NAME_CONSTRAINTS = x509.NameConstraints(permitted_subtrees=[x509.DNSName("example.test")], excluded_subtrees=None)
UNKNOWN_OID = ObjectIdentifier("1.3.6.1.4.1.55555.7.1")
UNKNOWN_EXT = x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00")  # DER NULL
FORBIDDEN = {"AIA": AIA, "CRL DP": CRL_DP, "Freshest CRL": FRESHEST_CRL, "Policy Constraints": POLICY_CONSTRAINTS}


def _san(n: int) -> x509.SubjectAlternativeName:
    return x509.SubjectAlternativeName([x509.DNSName(f"host-{i:05d}.example.test") for i in range(n)])


# --- broken inputs ----------------------------------------------------------------------------------------------

def _der_base64(p: PKI) -> Import:
    i = p.good()
    der = x509.load_pem_x509_certificate(i.cert_pem.encode()).public_bytes(serialization.Encoding.DER)
    i.cert_pem = base64.encodebytes(der).decode()  # the certificate's DER in base64, no PEM armour
    return i


def _garbage_inside_armour(p: PKI) -> Import:
    i = p.good()
    i.cert_pem = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    return i


def _plain_garbage(p: PKI) -> Import:
    i = p.good()
    i.cert_pem = "this is not a certificate\n"
    return i


def _chain_not_pem(p: PKI) -> Import:
    i = p.good()
    i.chain_pem = "".join(base64.encodebytes(c.public_bytes(serialization.Encoding.DER)).decode()
                          for c in (p.good_primary, p.good_root))
    return i


def _huge_certificate(p: PKI) -> Import:
    i = p.good(extra=((_san(2000), False),))
    assert len(i.cert_pem.encode()) > MAX_CERT_BYTES  # over 32 KB, yet one valid certificate
    return i


def _huge_chain(p: PKI) -> Import:
    # primary, then the root over and over: each link is issuer-of and signed-by the next (the root signs itself)
    copies = MAX_CHAIN_BYTES // len(pem(p.good_root)) + 2
    i = p.good()
    i.chain_pem = pem(p.good_primary) + pem(p.good_root) * copies
    assert len(i.chain_pem.encode()) > MAX_CHAIN_BYTES
    return i


def _two_certificates(p: PKI) -> Import:
    i = p.good()
    i.cert_pem += pem(p.good_primary)
    return i


def _key_not_csr(p: PKI) -> Import:
    i = p.good()
    i.csr_pem = pem(x509.CertificateSigningRequestBuilder().subject_name(SUB_NAME).sign(p.k.other, hashes.SHA256()))
    return i


def _self_signed_into_subordinate(p: PKI) -> Import:
    return p.good(signer=p.k.sub, issuer=SUB_NAME)


def _not_self_signed_into_root(p: PKI) -> Import:
    i = p.good()
    i.ca_type = "ROOT"
    return i


def _missing_chain(p: PKI) -> Import:
    i = p.good()
    i.chain_pem = ""
    return i


def _chain_has_certificate(p: PKI) -> Import:
    i = p.good()
    i.chain_pem = i.cert_pem + i.chain_pem
    return i


def _chain_root_first(p: PKI) -> Import:
    i = p.good()
    i.chain_pem = p.chain(p.good_root, p.good_primary)
    return i


def _primary_resigned_by_impostor(p: PKI) -> Import:
    # same subject, same public key, same issuer name (the root's), but signed by another key
    return p.under(p.primary(signer=p.k.other))


def _sub_signed_by_impostor(p: PKI) -> Import:
    return p.good(signer=p.k.other)


def _chain_without_root(p: PKI) -> Import:
    i = p.good()
    i.chain_pem = p.chain(p.good_primary)
    return i


def _forbidden_critical_on_sub(name: str) -> Callable[[PKI], Import]:
    return lambda p: p.good(extra=((FORBIDDEN[name], True),))


def _forbidden_critical_on_primary(name: str) -> Callable[[PKI], Import]:
    return lambda p: p.under(p.primary(extra=((FORBIDDEN[name], True),)))


@dataclass(frozen=True)
class Broken:
    id: str
    make: Callable[[PKI], Import]
    prefix: str
    # the rule that must refuse it; the other rules must pass it (None: pem_and_size, which also parses)
    rule: Callable | None
    # other rules this case also breaks, unavoidably (they run after its own rule, so never shadow it)
    also_breaks: tuple[Callable, ...] = ()


BROKEN = [
    # pem / size
    Broken("pem-der-base64-no-header", _der_base64, "pem:", None),
    Broken("pem-garbage-inside-armour", _garbage_inside_armour, "pem:", None),
    Broken("pem-plain-garbage", _plain_garbage, "pem:", None),
    Broken("pem-chain-der-base64", _chain_not_pem, "pem:", None),
    Broken("pem-two-certificates", _two_certificates, "pem:", None),
    Broken("size-certificate-over-32KB", _huge_certificate, "size:", None),
    Broken("size-chain-over-2MB", _huge_chain, "size:", None),
    # key
    Broken("key-not-the-csr-key", _key_not_csr, "key:", rules.key_matches_csr),
    # self-signed
    Broken("self-signed-into-subordinate", _self_signed_into_subordinate, "self-signed:", rules.self_signed_rules,
           # its issuer is itself now, not the primary at the head of the chain
           also_breaks=(rules.chain_order_and_signatures,)),
    Broken("not-self-signed-into-root", _not_self_signed_into_root, "self-signed:", rules.self_signed_rules),
    # chain
    Broken("chain-missing", _missing_chain, "chain:", rules.chain_present),
    Broken("chain-contains-the-certificate", _chain_has_certificate, "chain:", rules.chain_present,
           # the certificate then appears as its own issuer, with pathLen 0 one level above itself
           also_breaks=(rules.chain_order_and_signatures, rules.path_lengths)),
    Broken("chain-order-root-first", _chain_root_first, "chain order:", rules.chain_order_and_signatures,
           also_breaks=(rules.path_lengths,)),  # the primary (pathLen 1) is now read as 2 levels above
    Broken("chain-not-ending-in-root", _chain_without_root, "chain order:", rules.chain_order_and_signatures),
    Broken("chain-signature-primary-resigned", _primary_resigned_by_impostor, "chain signature:",
           rules.chain_order_and_signatures),
    Broken("chain-signature-sub-signed-by-impostor", _sub_signed_by_impostor, "chain signature:",
           rules.chain_order_and_signatures),
    # basicConstraints
    Broken("bc-missing", lambda p: p.good(bc=None), "basicConstraints:", rules.basic_constraints,
           also_breaks=(rules.path_lengths,)),  # path_lengths reads basicConstraints (it runs after)
    Broken("bc-not-critical", lambda p: p.good(bc_critical=False), "basicConstraints:", rules.basic_constraints),
    Broken("bc-ca-false", lambda p: p.good(bc=x509.BasicConstraints(ca=False, path_length=None)),
           "basicConstraints:", rules.basic_constraints),
    Broken("bc-chain-ca-false", lambda p: p.under(p.primary(bc=x509.BasicConstraints(ca=False, path_length=None))),
           "basicConstraints:", rules.basic_constraints),
    Broken("bc-chain-missing", lambda p: p.under(p.primary(bc=None)), "basicConstraints:", rules.basic_constraints,
           also_breaks=(rules.path_lengths,)),
    # pathLen
    Broken("pathlen-root-0-depth-2", lambda p: p.under(p.good_primary, p.root(path_len=0)), "pathLen:",
           rules.path_lengths),
    Broken("pathlen-root-1-depth-2", lambda p: p.under(p.good_primary, p.root(path_len=1)), "pathLen:",
           rules.path_lengths),
    Broken("pathlen-sub-larger-than-issuer-allows", lambda p: p.good(path_len=1), "pathLen:", rules.path_lengths),
    Broken("pathlen-issuer-0", lambda p: p.under(p.primary(path_len=0)), "pathLen:", rules.path_lengths),
    # critical extensions
    *[Broken(f"critical-{n.replace(' ', '-')}-on-certificate", _forbidden_critical_on_sub(n), "critical extension:",
             rules.critical_extensions) for n in FORBIDDEN],
    *[Broken(f"critical-{n.replace(' ', '-')}-on-chain", _forbidden_critical_on_primary(n), "critical extension:",
             rules.critical_extensions) for n in FORBIDDEN],
    Broken("critical-unknown-oid-on-certificate", lambda p: p.good(extra=((UNKNOWN_EXT, True),)),
           "critical extension:", rules.critical_extensions),
    Broken("critical-unknown-oid-on-root", lambda p: p.under(p.good_primary, p.root(extra=((UNKNOWN_EXT, True),))),
           "critical extension:", rules.critical_extensions),
    # validity
    Broken("validity-ends-after-issuer", lambda p: p.good(not_after=PRIMARY_END + timedelta(seconds=1)),
           "validity:", rules.validity_inside_issuer),
]


@pytest.mark.parametrize("case", BROKEN, ids=[b.id for b in BROKEN])
def test_broken_certificate_is_refused_by_its_rule(pki, case: Broken):
    i = case.make(pki)
    with pytest.raises(ImportRefused) as exc:
        i.check()
    assert str(exc.value).startswith(case.prefix), f"refused for another reason: {exc.value}"


def _rules_other_than(case: Broken) -> list[Callable]:
    skip = {case.rule, *case.also_breaks}
    return [r for r in rules.RULES if r is rules.pem_and_size or r not in skip]


ISOLATED = [b for b in BROKEN if b.rule is not None]


@pytest.mark.parametrize("case", ISOLATED, ids=[b.id for b in ISOLATED])
def test_broken_certificate_breaks_only_its_rule(pki, case: Broken):
    """Every other rule passes the broken case: it differs from the good one in one way only."""
    i = case.make(pki)
    parsed = rules.Import(i.cert_pem, i.chain_pem, i.csr_pem, i.ca_type)
    for rule in _rules_other_than(case):
        rule(parsed)
    with pytest.raises(ImportRefused):
        case.rule(parsed)


def test_size_limits_are_awss(pki):
    assert (rules.MAX_CERT_BYTES, rules.MAX_CHAIN_BYTES) == (MAX_CERT_BYTES, MAX_CHAIN_BYTES)
    i = pki.good(extra=((_san(300), False),))  # a few KB under the limit: accepted
    assert len(i.cert_pem.encode()) < MAX_CERT_BYTES
    i.check()


def test_size_cases_only_break_the_size_limits(pki, monkeypatch):
    """With the limits lifted, the over-32 KB certificate and the over-2 MB chain are otherwise acceptable."""
    monkeypatch.setattr(rules, "MAX_CERT_BYTES", 10 * 1024 * 1024)
    monkeypatch.setattr(rules, "MAX_CHAIN_BYTES", 10 * 1024 * 1024)
    _huge_certificate(pki).check()
    _huge_chain(pki).check()


def test_critical_extension_refusal_names_the_extension(pki):
    for name, text in [("AIA", "Authority information access"), ("CRL DP", "CRL distribution points"),
                       ("Freshest CRL", "Freshest CRL"), ("Policy Constraints", "Policy constraints")]:
        with pytest.raises(ImportRefused, match=f"^critical extension: {text} must not be critical"):
            _forbidden_critical_on_sub(name)(pki).check()
    with pytest.raises(ImportRefused, match=UNKNOWN_OID.dotted_string.replace(".", r"\.")):
        pki.good(extra=((UNKNOWN_EXT, True),)).check()


# --- accepted inputs --------------------------------------------------------------------------------------------

def _root_import(p: PKI) -> Import:
    csr = x509.CertificateSigningRequestBuilder().subject_name(ROOT_NAME).sign(p.k.root, hashes.SHA256())
    return Import(pem(p.good_root), "", pem(csr), "ROOT")


GOOD = [
    pytest.param(lambda p: p.good(), id="good-subordinate"),
    pytest.param(lambda p: p.good(extra=((NAME_CONSTRAINTS, True),)), id="critical-name-constraints"),
    pytest.param(lambda p: p.under(p.primary(extra=((NAME_CONSTRAINTS, True),))),
                 id="critical-name-constraints-on-chain"),
    pytest.param(lambda p: p.good(extra=((AIA, False), (CRL_DP, False))), id="non-critical-aia-and-crl-dp"),
    pytest.param(lambda p: p.good(extra=((FRESHEST_CRL, False), (POLICY_CONSTRAINTS, False))),
                 id="non-critical-freshest-crl-and-policy-constraints"),
    pytest.param(lambda p: p.under(p.primary(extra=((AIA, False), (CRL_DP, False)))),
                 id="non-critical-aia-and-crl-dp-on-chain"),
    pytest.param(lambda p: p.good(extra=((UNKNOWN_EXT, False),)), id="non-critical-unknown-oid"),
    pytest.param(lambda p: p.good(extra=((_san(10), True),)), id="critical-san-is-allowed"),
    pytest.param(lambda p: p.under(p.good_primary, p.root(path_len=2)), id="pathlen-root-2-depth-2"),
    pytest.param(lambda p: p.good(path_len=None), id="pathlen-sub-none-under-primary-1"),
    pytest.param(lambda p: p.good(not_after=PRIMARY_END), id="validity-ends-with-issuer"),
    pytest.param(_root_import, id="root-self-signed-empty-chain"),
]


@pytest.mark.parametrize("make", GOOD)
def test_acceptable_certificate_passes(pki, make):
    make(pki).check()


# --- self-signed means the signature verifies, not only that the names match ---------------------------------
def test_self_issued_but_not_self_signed_root_import_is_refused(pki):
    # issuer == subject == the CA's name and the CSR's key, but signed by another key
    forged = ca_cert(subject=SUB_NAME, issuer=SUB_NAME, public_key=pki.k.sub.public_key(), signer=pki.k.other,
                     issuer_ski=ski(pki.k.sub), not_after=SUB_END)
    with pytest.raises(ImportRefused, match="^self-signed:"):
        check_pca_import(pem(forged), "", pem(pki.csr), "ROOT")


def test_chain_ending_in_a_root_whose_self_signature_fails_is_refused(pki):
    fake_root = ca_cert(subject=ROOT_NAME, issuer=ROOT_NAME, public_key=pki.k.root.public_key(), signer=pki.k.other,
                        issuer_ski=ski(pki.k.root), not_after=ROOT_END)
    with pytest.raises(ImportRefused, match="^chain order: the last certificate of the chain must be the self-signed"):
        pki.under(pki.good_primary, fake_root).check()


def test_whitespace_chain_is_an_empty_chain_and_a_bad_csr_is_refused(pki):
    root_csr = x509.CertificateSigningRequestBuilder().subject_name(ROOT_NAME).sign(pki.k.root, hashes.SHA256())
    check_pca_import(pem(pki.good_root), "\n", pem(root_csr), "ROOT")
    with pytest.raises(ImportRefused, match="^csr:"):
        check_pca_import(pem(pki.good_root), "", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", "ROOT")
