"""acm-pca stand-in: ImportCertificateAuthorityCertificate refuses what AWS refuses.

One test per rule, each breaking only that rule, asserting AWS's error code. moto 5.2.1
accepts most of these inputs; real AWS does not.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import botocore
import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AuthorityInformationAccessOID, ObjectIdentifier


def import_error(pca, kit, arn, certificate, chain=None):
    args = {"CertificateAuthorityArn": arn, "Certificate": certificate}
    if chain is not None:
        args["CertificateChain"] = chain
    with pytest.raises(ClientError) as excinfo:
        pca.import_certificate_authority_certificate(**args)
    return kit.error_code(excinfo), excinfo.value.response["Error"]["Message"]


def test_control_a_proper_chain_is_accepted(pca, kit, root, pending_ca):
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=pending_ca.arn,
                                                 Certificate=kit.pem(kit.sign_csr(root, pending_ca.csr)),
                                                 CertificateChain=root.pem)


def test_certificate_must_be_pem(pca, kit, root, pending_ca):
    der = kit.sign_csr(root, pending_ca.csr).public_bytes(serialization.Encoding.DER)
    code, _ = import_error(pca, kit, pending_ca.arn, der, root.pem)
    assert code == "MalformedCertificateException"


def test_chain_must_be_pem(pca, kit, root, pending_ca):
    der_chain = root.certificate.public_bytes(serialization.Encoding.DER)
    code, _ = import_error(pca, kit, pending_ca.arn, kit.pem(kit.sign_csr(root, pending_ca.csr)), der_chain)
    assert code == "MalformedCertificateException"


def test_certificate_field_holds_exactly_one_certificate(pca, kit, root, pending_ca):
    both = kit.pem(kit.sign_csr(root, pending_ca.csr), root.certificate)
    code, _ = import_error(pca, kit, pending_ca.arn, both, root.pem)
    assert code == "MalformedCertificateException"


def test_certificate_larger_than_32_kb(pca, kit, root, pending_ca):
    padded = kit.pem(kit.sign_csr(root, pending_ca.csr)) + b"\n" * (32 * 1024)
    code, message = import_error(pca, kit, pending_ca.arn, padded, root.pem)
    assert code == "MalformedCertificateException" and "32768" in message


def test_chain_larger_than_2_mb(pca, kit, root, pending_ca):
    chain = root.pem * (2 * 1024 * 1024 // len(root.pem) + 1)
    code, message = import_error(pca, kit, pending_ca.arn, kit.pem(kit.sign_csr(root, pending_ca.csr)), chain)
    assert code == "MalformedCertificateException" and "2097152" in message


def test_key_must_match_the_ca_key(pca, kit, root, pending_ca):
    _, other_csr = kit.leaf_csr("Rehearsal Primary CA", with_san=False)
    code, _ = import_error(pca, kit, pending_ca.arn, kit.pem(kit.sign_csr(root, other_csr.decode())), root.pem)
    assert code == "CertificateMismatchException"


def test_subordinate_needs_a_chain(pca, kit, root, pending_ca):
    code, _ = import_error(pca, kit, pending_ca.arn, kit.pem(kit.sign_csr(root, pending_ca.csr)))
    assert code == "InvalidRequestException"


def test_chain_must_not_contain_the_certificate(pca, kit, root, pending_ca):
    certificate = kit.sign_csr(root, pending_ca.csr)
    code, _ = import_error(pca, kit, pending_ca.arn, kit.pem(certificate), kit.pem(certificate, root.certificate))
    assert code == "InvalidRequestException"


def test_chain_must_be_ordered_issuer_first_root_last(pca, kit, root, pending_ca):
    intermediate = kit.make_intermediate(root, "Rehearsal Intermediate", path_length=2)
    certificate = kit.sign_csr(intermediate, pending_ca.csr)
    code, _ = import_error(pca, kit, pending_ca.arn, kit.pem(certificate),
                           kit.pem(root.certificate, intermediate.certificate))
    assert code == "MalformedCertificateException"
    # the same chain in the right order is accepted
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=pending_ca.arn,
                                                 Certificate=kit.pem(certificate),
                                                 CertificateChain=kit.pem(intermediate.certificate, root.certificate))


def test_each_link_signature_must_verify(pca, kit, root, pending_ca):
    impostor = kit.make_root("Rehearsal Root")  # same name, different key
    code, _ = import_error(pca, kit, pending_ca.arn, kit.pem(kit.sign_csr(root, pending_ca.csr)), impostor.pem)
    assert code == "MalformedCertificateException"


def test_chain_must_end_in_a_self_signed_root(pca, kit, root, pending_ca):
    intermediate = kit.make_intermediate(root, "Rehearsal Intermediate", path_length=2)
    code, message = import_error(pca, kit, pending_ca.arn, kit.pem(kit.sign_csr(intermediate, pending_ca.csr)),
                                 kit.pem(intermediate.certificate))
    assert code == "MalformedCertificateException" and "self-signed root" in message


def test_self_signed_certificate_cannot_go_into_a_subordinate(pca, kit, root, pending_ca):
    code, _ = import_error(pca, kit, pending_ca.arn, root.pem, root.pem)
    assert code == "InvalidRequestException"


def test_root_ca_only_accepts_a_self_signed_certificate(pca, kit, root):
    ca = kit.create_pending_ca(pca, ca_type="ROOT")
    code, _ = import_error(pca, kit, ca.arn, kit.pem(kit.sign_csr(root, ca.csr)))
    assert code == "InvalidRequestException"


def test_basic_constraints_must_be_present(pca, kit, root, pending_ca):
    certificate = kit.sign_csr(root, pending_ca.csr, skip=(x509.BasicConstraints,))
    code, _ = import_error(pca, kit, pending_ca.arn, kit.pem(certificate), root.pem)
    assert code == "MalformedCertificateException"


def test_basic_constraints_must_be_critical(pca, kit, root, pending_ca):
    certificate = kit.sign_csr(root, pending_ca.csr, basic_critical=False)
    code, message = import_error(pca, kit, pending_ca.arn, kit.pem(certificate), root.pem)
    assert code == "MalformedCertificateException" and "critical" in message


def test_basic_constraints_must_say_ca(pca, kit, root, pending_ca):
    certificate = kit.sign_csr(root, pending_ca.csr, is_ca=False)
    code, message = import_error(pca, kit, pending_ca.arn, kit.pem(certificate), root.pem)
    assert code == "MalformedCertificateException" and "CA:FALSE" in message


def test_basic_constraints_rule_applies_to_the_chain_too(pca, kit, root, pending_ca):
    intermediate = kit.make_intermediate(root, "Lax Intermediate", path_length=2)
    lax = kit.make_cert(intermediate.certificate.subject, intermediate.key.public_key(), root, root.key,
                        extensions=kit.ca_extensions(2, key=intermediate.key.public_key(), issuer=root,
                                                     basic_critical=False))
    lax_ca = kit.SoftCA(intermediate.key, lax)
    code, message = import_error(pca, kit, pending_ca.arn, kit.pem(kit.sign_csr(lax_ca, pending_ca.csr)),
                                 kit.pem(lax, root.certificate))
    assert code == "MalformedCertificateException" and "chain certificate 1" in message


CRITICAL_FORBIDDEN = {
    "authority information access": x509.AuthorityInformationAccess([x509.AccessDescription(
        AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier("http://pki.example/root.crt"))]),
    "crl distribution points": x509.CRLDistributionPoints([x509.DistributionPoint(
        [x509.UniformResourceIdentifier("http://pki.example/root.crl")], None, None, None)]),
    "freshest crl": x509.FreshestCRL([x509.DistributionPoint(
        [x509.UniformResourceIdentifier("http://pki.example/delta.crl")], None, None, None)]),
    "policy constraints": x509.PolicyConstraints(require_explicit_policy=0, inhibit_policy_mapping=None),
    "an extension AWS does not know": x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00"),
}


@pytest.mark.parametrize("label", sorted(CRITICAL_FORBIDDEN))
def test_forbidden_extension_marked_critical(pca, kit, root, pending_ca, label):
    extension = CRITICAL_FORBIDDEN[label]
    refused = kit.sign_csr(root, pending_ca.csr, extra=[(extension, True)])
    code, _ = import_error(pca, kit, pending_ca.arn, kit.pem(refused), root.pem)
    assert code == "MalformedCertificateException"
    # the same extension, not critical, is fine
    accepted = kit.sign_csr(root, pending_ca.csr, extra=[(extension, False)])
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=pending_ca.arn,
                                                 Certificate=kit.pem(accepted), CertificateChain=root.pem)


def test_critical_name_constraints_are_allowed_as_aws_documents(pca, kit, root, pending_ca):
    # The API reference lists Name constraints among the extensions that MAY be critical
    # (RFC 5280 even requires it); the check below reads that list from botocore's model.
    model_dir = Path(botocore.__file__).parent / "data" / "acm-pca" / "2017-08-22"
    model = json.loads(gzip.decompress((model_dir / "service-2.json.gz").read_bytes()))
    documentation = re.sub(r"<[^>]+>", " ", model["operations"]["ImportCertificateAuthorityCertificate"]["documentation"])
    allowed, rejected = documentation.split("rejects the following extensions")[0], documentation.split(
        "rejects the following extensions")[1]
    assert "Name constraints" in allowed and "Name constraints" not in rejected
    constraints = x509.NameConstraints(permitted_subtrees=[x509.DNSName("rehearsal.test")], excluded_subtrees=None)
    certificate = kit.sign_csr(root, pending_ca.csr, extra=[(constraints, True)])
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=pending_ca.arn,
                                                 Certificate=kit.pem(certificate), CertificateChain=root.pem)


def test_root_pathlen_0_leaves_no_room_for_a_subordinate(pca, kit, pending_ca):
    tight_root = kit.make_root("Tight Root", path_length=0)
    code, message = import_error(pca, kit, pending_ca.arn, kit.pem(kit.sign_csr(tight_root, pending_ca.csr)),
                                 tight_root.pem)
    assert code == "CertificateMismatchException" and "pathLen 0" in message


def test_pathlen_of_every_ca_in_the_chain_is_respected(pca, kit, pending_ca):
    root_one = kit.make_root("Root PathLen 1", path_length=1)
    intermediate = kit.make_intermediate(root_one, "Intermediate", path_length=None)
    code, _ = import_error(pca, kit, pending_ca.arn, kit.pem(kit.sign_csr(intermediate, pending_ca.csr)),
                           kit.pem(intermediate.certificate, root_one.certificate))
    assert code == "CertificateMismatchException"


def test_import_while_creating_is_in_progress(pca, kit, root):
    arn = pca.create_certificate_authority(CertificateAuthorityConfiguration=kit.EC_SUBJECT_CONFIG,
                                           CertificateAuthorityType="SUBORDINATE")["CertificateAuthorityArn"]
    code, _ = import_error(pca, kit, arn, root.pem, root.pem)
    assert code == "RequestInProgressException"


def test_import_into_a_deleted_ca(pca, kit, root, pending_ca):
    certificate = kit.pem(kit.sign_csr(root, pending_ca.csr))
    pca.delete_certificate_authority(CertificateAuthorityArn=pending_ca.arn)
    code, _ = import_error(pca, kit, pending_ca.arn, certificate, root.pem)
    assert code == "InvalidStateException"
