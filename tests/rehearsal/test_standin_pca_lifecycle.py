"""acm-pca stand-in: the ceremony's happy path, statuses, idempotency, issuance rules."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

PATHLEN0 = "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1"
PATHLEN1 = "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen1/V1"
ROOT_TEMPLATE = "arn:aws:acm-pca:::template/RootCACertificate/V1"


def issue_and_wait(pca, kit, ca_arn, csr_pem, *, template=None, validity=None, algorithm="SHA256WITHECDSA", **kw):
    args = dict(CertificateAuthorityArn=ca_arn, Csr=csr_pem, SigningAlgorithm=algorithm,
                Validity=validity or {"Type": "DAYS", "Value": 365}, **kw)
    if template:
        args["TemplateArn"] = template
    arn = pca.issue_certificate(**args)["CertificateArn"]
    pca.get_waiter("certificate_issued").wait(CertificateAuthorityArn=ca_arn, CertificateArn=arn,
                                              WaiterConfig=kit.FAST_WAIT)
    return arn, pca.get_certificate(CertificateAuthorityArn=ca_arn, CertificateArn=arn)


def test_happy_path_subordinate_ceremony(pca, standin, kit, root, tmp_path):
    standin.reset_calls()
    arn = pca.create_certificate_authority(
        CertificateAuthorityConfiguration=kit.EC_SUBJECT_CONFIG, CertificateAuthorityType="SUBORDINATE",
        RevocationConfiguration={"CrlConfiguration": {"Enabled": False}},
        Tags=[{"Key": "ceremony", "Value": "rehearsal"}], IdempotencyToken="happy-" + uuid.uuid4().hex[:8],
    )["CertificateAuthorityArn"]
    assert arn.startswith("arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/")
    pca.get_waiter("certificate_authority_csr_created").wait(CertificateAuthorityArn=arn, WaiterConfig=kit.FAST_WAIT)
    # the waiter really waited: the first poll was refused with RequestInProgressException
    assert standin.calls()["acm-pca"]["GetCertificateAuthorityCsr"] == 2
    described = pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]
    assert described["Status"] == "PENDING_CERTIFICATE"
    assert described["Type"] == "SUBORDINATE"
    assert described["CertificateAuthorityConfiguration"]["KeyAlgorithm"] == "EC_prime256v1"

    csr_pem = pca.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"]
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=Rehearsal Primary CA,O=Rehearsal,C=US"
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256)
    assert isinstance(csr.public_key(), ec.EllipticCurvePublicKey)

    primary = kit.sign_csr(root, csr_pem, path_length=1, days=1825)
    certificate_pem, chain_pem = kit.pem(primary), root.pem
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=arn, Certificate=certificate_pem,
                                                 CertificateChain=chain_pem)
    described = pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]
    assert described["Status"] == "ACTIVE"
    assert described["NotAfter"] == primary.not_valid_after_utc
    assert described["NotBefore"] == primary.not_valid_before_utc
    assert described["Serial"] == format(primary.serial_number, "x")

    got = pca.get_certificate_authority_certificate(CertificateAuthorityArn=arn)
    assert got["Certificate"].encode() == certificate_pem
    assert got["CertificateChain"].encode() == chain_pem

    _, sub_key_csr = kit.leaf_csr("Rehearsal Issuing CA", with_san=False)
    issued_arn, issued = issue_and_wait(pca, kit, arn, sub_key_csr, template=PATHLEN0,
                                        validity={"Type": "YEARS", "Value": 10})
    assert issued_arn.startswith(arn + "/certificate/")
    assert standin.calls()["acm-pca"]["GetCertificate"] == 3  # refused once, ready once, fetched once
    certificate = x509.load_pem_x509_certificate(issued["Certificate"].encode())
    chain = x509.load_pem_x509_certificates(issued["CertificateChain"].encode())
    assert [c.subject for c in chain] == [primary.subject, root.certificate.subject]

    basic = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert (usage.value.digital_signature, usage.value.key_cert_sign, usage.value.crl_sign) == (True, True, True)
    assert not usage.value.key_encipherment
    ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(x509.load_pem_x509_csr(sub_key_csr).public_key())
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    primary_ski = primary.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == primary_ski.digest
    assert certificate.issuer == primary.subject
    assert certificate.serial_number > 0 and certificate.serial_number.bit_length() >= 64
    assert isinstance(certificate.signature_hash_algorithm, hashes.SHA256)
    # 10 years requested, capped at the primary's NotAfter (5 years)
    assert certificate.not_valid_after_utc == primary.not_valid_after_utc

    (tmp_path / "root.pem").write_bytes(root.pem)
    (tmp_path / "primary.pem").write_bytes(certificate_pem)
    (tmp_path / "issued.pem").write_text(issued["Certificate"])
    result = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-CAfile", "root.pem", "-untrusted", "primary.pem", "issued.pem"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "issued.pem: OK" in result.stdout


def test_end_entity_default_template(pca, kit, active_ca):
    _, csr = kit.leaf_csr("www.rehearsal.test")
    _, issued = issue_and_wait(pca, kit, active_ca.arn, csr, validity={"Type": "DAYS", "Value": 30})
    certificate = x509.load_pem_x509_certificate(issued["Certificate"].encode())
    basic = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.rehearsal.test"]
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime == dt.timedelta(days=30, minutes=60)  # NotBefore is backdated one hour


@pytest.mark.parametrize("validity, expected", [
    ({"Type": "END_DATE", "Value": 20300102030405}, dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)),
    ({"Type": "END_DATE", "Value": 300102030405}, dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)),
    ({"Type": "ABSOLUTE", "Value": 1893456000}, dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)),
])
def test_validity_types_are_honoured(pca, kit, active_ca, validity, expected):
    _, csr = kit.leaf_csr()
    _, issued = issue_and_wait(pca, kit, active_ca.arn, csr, validity=validity)
    assert x509.load_pem_x509_certificate(issued["Certificate"].encode()).not_valid_after_utc == expected


def test_not_after_is_capped_at_the_issuer(pca, kit, active_ca):
    ca_not_after = pca.describe_certificate_authority(CertificateAuthorityArn=active_ca.arn)[
        "CertificateAuthority"]["NotAfter"]
    _, csr = kit.leaf_csr()
    _, issued = issue_and_wait(pca, kit, active_ca.arn, csr, validity={"Type": "YEARS", "Value": 50})
    assert x509.load_pem_x509_certificate(issued["Certificate"].encode()).not_valid_after_utc == ca_not_after


def test_reject_mode_refuses_not_after_beyond_issuer(kit, root):
    process = kit.StandInProcess("--not-after-beyond-issuer", "reject", "--pending-polls", "0")
    try:
        client, _ = process.clients()
        ca = kit.create_pending_ca(client)
        client.import_certificate_authority_certificate(
            CertificateAuthorityArn=ca.arn, Certificate=kit.pem(kit.sign_csr(root, ca.csr)), CertificateChain=root.pem)
        _, csr = kit.leaf_csr()
        with pytest.raises(ClientError) as excinfo:
            client.issue_certificate(CertificateAuthorityArn=ca.arn, Csr=csr, SigningAlgorithm="SHA256WITHECDSA",
                                     Validity={"Type": "YEARS", "Value": 50})
        assert kit.error_code(excinfo) == "InvalidArgsException"
        assert "exceeds the certificate authority validity" in str(excinfo.value)
    finally:
        process.terminate()


def test_pathlen_template_beyond_the_issuers_room_is_refused(pca, kit, active_ca):
    # active_ca has pathLen 1: PathLen0 fits, PathLen1 would make a chain deeper than allowed
    _, csr = kit.leaf_csr("Too Deep CA", with_san=False)
    with pytest.raises(ClientError) as excinfo:
        pca.issue_certificate(CertificateAuthorityArn=active_ca.arn, Csr=csr, SigningAlgorithm="SHA256WITHECDSA",
                              Validity={"Type": "DAYS", "Value": 30}, TemplateArn=PATHLEN1)
    assert kit.error_code(excinfo) == "InvalidArgsException"
    assert "path length" in str(excinfo.value)


def test_pathlen0_ca_cannot_issue_a_ca_certificate(pca, kit, root, pending_ca):
    pca.import_certificate_authority_certificate(
        CertificateAuthorityArn=pending_ca.arn, Certificate=kit.pem(kit.sign_csr(root, pending_ca.csr, path_length=0)),
        CertificateChain=root.pem)
    _, csr = kit.leaf_csr("Below PathLen0", with_san=False)
    with pytest.raises(ClientError) as excinfo:
        pca.issue_certificate(CertificateAuthorityArn=pending_ca.arn, Csr=csr, SigningAlgorithm="SHA256WITHECDSA",
                              Validity={"Type": "DAYS", "Value": 30}, TemplateArn=PATHLEN0)
    assert kit.error_code(excinfo) == "InvalidArgsException"
    # an end-entity certificate is still fine
    issue_and_wait(pca, kit, pending_ca.arn, kit.leaf_csr()[1])


def test_issuing_before_the_ca_has_its_certificate_fails(pca, kit, pending_ca):
    _, csr = kit.leaf_csr()
    with pytest.raises(ClientError) as excinfo:
        pca.issue_certificate(CertificateAuthorityArn=pending_ca.arn, Csr=csr, SigningAlgorithm="SHA256WITHECDSA",
                              Validity={"Type": "DAYS", "Value": 30})
    assert kit.error_code(excinfo) == "InvalidStateException"
    assert "not in a valid state" in str(excinfo.value)


def test_signing_algorithm_must_match_the_ca_key_family(pca, kit, active_ca):
    _, csr = kit.leaf_csr()
    with pytest.raises(ClientError) as excinfo:
        pca.issue_certificate(CertificateAuthorityArn=active_ca.arn, Csr=csr, SigningAlgorithm="SHA256WITHRSA",
                              Validity={"Type": "DAYS", "Value": 30})
    assert kit.error_code(excinfo) == "InvalidArgsException"


def test_malformed_csr_is_refused(pca, kit, active_ca):
    with pytest.raises(ClientError) as excinfo:
        pca.issue_certificate(CertificateAuthorityArn=active_ca.arn, Csr=b"not a csr",
                              SigningAlgorithm="SHA256WITHECDSA", Validity={"Type": "DAYS", "Value": 30})
    assert kit.error_code(excinfo) == "MalformedCSRException"


def test_unsupported_template_is_refused(pca, kit, active_ca):
    with pytest.raises(ClientError) as excinfo:
        pca.issue_certificate(CertificateAuthorityArn=active_ca.arn, Csr=kit.leaf_csr()[1],
                              SigningAlgorithm="SHA256WITHECDSA", Validity={"Type": "DAYS", "Value": 30},
                              TemplateArn="arn:aws:acm-pca:::template/NoSuchTemplate/V1")
    assert kit.error_code(excinfo) == "InvalidArgsException"


@pytest.mark.parametrize("key_algorithm, signing_algorithm, key_type, size", [
    ("RSA_2048", "SHA256WITHRSA", rsa.RSAPublicKey, 2048),
    ("RSA_3072", "SHA384WITHRSA", rsa.RSAPublicKey, 3072),
    ("RSA_4096", "SHA512WITHRSA", rsa.RSAPublicKey, 4096),
    ("EC_prime256v1", "SHA256WITHECDSA", ec.EllipticCurvePublicKey, 256),
    ("EC_secp384r1", "SHA384WITHECDSA", ec.EllipticCurvePublicKey, 384),
    ("EC_secp521r1", "SHA512WITHECDSA", ec.EllipticCurvePublicKey, 521),
])
def test_key_algorithm_is_honoured(pca, kit, key_algorithm, signing_algorithm, key_type, size):
    configuration = {"KeyAlgorithm": key_algorithm, "SigningAlgorithm": signing_algorithm,
                     "Subject": {"CommonName": f"{key_algorithm} CA"}}
    ca = kit.create_pending_ca(pca, configuration)
    csr = x509.load_pem_x509_csr(ca.csr.encode())
    assert isinstance(csr.public_key(), key_type)
    assert csr.public_key().key_size == size
    assert csr.signature_hash_algorithm.name == signing_algorithm[:6].lower()
    assert csr.is_signature_valid


@pytest.mark.parametrize("key_algorithm, signing_algorithm", [
    ("RSA_2048", "SHA256WITHECDSA"),
    ("EC_prime256v1", "SHA256WITHRSA"),
    ("ML_DSA_65", "ML_DSA_65"),
])
def test_mismatched_or_unsupported_algorithms_are_refused(pca, kit, key_algorithm, signing_algorithm):
    with pytest.raises(ClientError) as excinfo:
        pca.create_certificate_authority(
            CertificateAuthorityConfiguration={"KeyAlgorithm": key_algorithm, "SigningAlgorithm": signing_algorithm,
                                               "Subject": {"CommonName": "x"}},
            CertificateAuthorityType="ROOT")
    assert kit.error_code(excinfo) == "InvalidArgsException"


def test_root_ca_inside_private_ca(pca, kit, tmp_path):
    configuration = {"KeyAlgorithm": "RSA_2048", "SigningAlgorithm": "SHA256WITHRSA",
                     "Subject": {"Organization": "Rehearsal", "CommonName": "In-PCA Root"}}
    ca = kit.create_pending_ca(pca, configuration, ca_type="ROOT")
    _, issued = issue_and_wait(pca, kit, ca.arn, ca.csr.encode(), template=ROOT_TEMPLATE,
                               validity={"Type": "YEARS", "Value": 10}, algorithm="SHA256WITHRSA")
    assert "CertificateChain" not in issued
    certificate = x509.load_pem_x509_certificate(issued["Certificate"].encode())
    assert certificate.issuer == certificate.subject
    certificate.verify_directly_issued_by(certificate)
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=ca.arn,
                                                 Certificate=issued["Certificate"].encode())
    assert pca.describe_certificate_authority(CertificateAuthorityArn=ca.arn)["CertificateAuthority"][
        "Status"] == "ACTIVE"
    assert "CertificateChain" not in pca.get_certificate_authority_certificate(CertificateAuthorityArn=ca.arn)
    _, leaf = issue_and_wait(pca, kit, ca.arn, kit.leaf_csr()[1], algorithm="SHA256WITHRSA")
    assert leaf["CertificateChain"].strip() == issued["Certificate"].strip()


# ---- idempotency -------------------------------------------------------------------------


def test_create_idempotency_token_within_and_after_the_window(pca, standin, kit):
    token = "idem-" + uuid.uuid4().hex[:20]
    args = dict(CertificateAuthorityConfiguration=kit.EC_SUBJECT_CONFIG, CertificateAuthorityType="SUBORDINATE",
                IdempotencyToken=token)
    first = pca.create_certificate_authority(**args)["CertificateAuthorityArn"]
    standin.advance_clock(4 * 60)
    assert pca.create_certificate_authority(**args)["CertificateAuthorityArn"] == first
    standin.advance_clock(61)  # 5 minutes and 1 second after the first call
    assert pca.create_certificate_authority(**args)["CertificateAuthorityArn"] != first


def test_issue_idempotency_token_within_and_after_the_window(pca, standin, kit, active_ca):
    args = dict(CertificateAuthorityArn=active_ca.arn, Csr=kit.leaf_csr()[1], SigningAlgorithm="SHA256WITHECDSA",
                Validity={"Type": "DAYS", "Value": 30}, IdempotencyToken="issue-" + uuid.uuid4().hex[:10])
    first = pca.issue_certificate(**args)["CertificateArn"]
    assert pca.issue_certificate(**args)["CertificateArn"] == first
    standin.advance_clock(301)
    assert pca.issue_certificate(**args)["CertificateArn"] != first


def test_idempotency_token_longer_than_36_characters_is_refused(pca, kit):
    with pytest.raises(ClientError) as excinfo:
        pca.create_certificate_authority(CertificateAuthorityConfiguration=kit.EC_SUBJECT_CONFIG,
                                         CertificateAuthorityType="ROOT", IdempotencyToken="x" * 37)
    assert kit.error_code(excinfo) == "ValidationException"


# ---- statuses: update, delete, restore ---------------------------------------------------


def status_of(pca, arn):
    return pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]["Status"]


def test_update_only_switches_active_and_disabled(pca, kit, pending_ca, active_ca):
    with pytest.raises(ClientError) as excinfo:
        pca.update_certificate_authority(CertificateAuthorityArn=pending_ca.arn, Status="DISABLED")
    assert kit.error_code(excinfo) == "InvalidStateException"

    with pytest.raises(ClientError) as excinfo:
        pca.update_certificate_authority(CertificateAuthorityArn=active_ca.arn, Status="DELETED")
    assert kit.error_code(excinfo) == "InvalidArgsException"

    pca.update_certificate_authority(CertificateAuthorityArn=active_ca.arn, Status="DISABLED")
    assert status_of(pca, active_ca.arn) == "DISABLED"
    with pytest.raises(ClientError) as excinfo:
        pca.issue_certificate(CertificateAuthorityArn=active_ca.arn, Csr=kit.leaf_csr()[1],
                              SigningAlgorithm="SHA256WITHECDSA", Validity={"Type": "DAYS", "Value": 30})
    assert kit.error_code(excinfo) == "InvalidStateException"
    pca.update_certificate_authority(CertificateAuthorityArn=active_ca.arn, Status="ACTIVE")
    assert status_of(pca, active_ca.arn) == "ACTIVE"


def test_delete_requires_disable_then_restore(pca, kit, active_ca):
    with pytest.raises(ClientError) as excinfo:
        pca.delete_certificate_authority(CertificateAuthorityArn=active_ca.arn)
    assert kit.error_code(excinfo) == "InvalidStateException"

    with pytest.raises(ClientError) as excinfo:
        pca.delete_certificate_authority(CertificateAuthorityArn=active_ca.arn, PermanentDeletionTimeInDays=31)
    assert kit.error_code(excinfo) == "ValidationException"

    pca.update_certificate_authority(CertificateAuthorityArn=active_ca.arn, Status="DISABLED")
    pca.delete_certificate_authority(CertificateAuthorityArn=active_ca.arn, PermanentDeletionTimeInDays=7)
    described = pca.describe_certificate_authority(CertificateAuthorityArn=active_ca.arn)["CertificateAuthority"]
    assert described["Status"] == "DELETED"
    remaining = described["RestorableUntil"] - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=6, hours=23) < remaining < dt.timedelta(days=7, hours=1)
    # AWS lists deleted CAs during their restore window
    listed = {ca["Arn"]: ca["Status"] for page in pca.get_paginator("list_certificate_authorities").paginate()
              for ca in page["CertificateAuthorities"]}
    assert listed[active_ca.arn] == "DELETED"

    with pytest.raises(ClientError) as excinfo:
        pca.import_certificate_authority_certificate(CertificateAuthorityArn=active_ca.arn, Certificate=b"x")
    assert kit.error_code(excinfo) == "InvalidStateException"

    pca.restore_certificate_authority(CertificateAuthorityArn=active_ca.arn)
    assert status_of(pca, active_ca.arn) == "DISABLED"
    with pytest.raises(ClientError) as excinfo:
        pca.restore_certificate_authority(CertificateAuthorityArn=active_ca.arn)
    assert kit.error_code(excinfo) == "InvalidStateException"


def test_pending_ca_can_be_deleted(pca, pending_ca):
    pca.delete_certificate_authority(CertificateAuthorityArn=pending_ca.arn)
    assert status_of(pca, pending_ca.arn) == "DELETED"


def test_deleted_ca_disappears_after_its_restore_window(private_standin, kit):
    client, _ = private_standin.clients()
    ca = kit.create_pending_ca(client)
    client.delete_certificate_authority(CertificateAuthorityArn=ca.arn, PermanentDeletionTimeInDays=7)
    private_standin.advance_clock(7 * 86400 + 60)
    with pytest.raises(ClientError) as excinfo:
        client.describe_certificate_authority(CertificateAuthorityArn=ca.arn)
    assert kit.error_code(excinfo) == "ResourceNotFoundException"
    assert client.list_certificate_authorities()["CertificateAuthorities"] == []


def test_expired_ca_reads_as_expired_and_cannot_issue(private_standin, kit, root):
    client, _ = private_standin.clients()
    ca = kit.create_pending_ca(client)
    client.import_certificate_authority_certificate(
        CertificateAuthorityArn=ca.arn, Certificate=kit.pem(kit.sign_csr(root, ca.csr, days=30)),
        CertificateChain=root.pem)
    private_standin.advance_clock(31 * 86400)
    assert status_of(client, ca.arn) == "EXPIRED"
    with pytest.raises(ClientError) as excinfo:
        client.issue_certificate(CertificateAuthorityArn=ca.arn, Csr=kit.leaf_csr()[1],
                                 SigningAlgorithm="SHA256WITHECDSA", Validity={"Type": "DAYS", "Value": 1})
    assert kit.error_code(excinfo) == "InvalidStateException"
    client.delete_certificate_authority(CertificateAuthorityArn=ca.arn)  # EXPIRED may be deleted
    assert status_of(client, ca.arn) == "DELETED"


# ---- lookup, listing, tags -----------------------------------------------------------------


def test_unknown_and_malformed_arns(pca, kit):
    with pytest.raises(ClientError) as excinfo:
        pca.describe_certificate_authority(
            CertificateAuthorityArn=f"arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/{uuid.uuid4()}")
    assert kit.error_code(excinfo) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        pca.describe_certificate_authority(CertificateAuthorityArn="arn:aws:s3:::bucket")
    assert kit.error_code(excinfo) == "InvalidArnException"


def test_list_is_paginated(private_standin, kit):
    client, _ = private_standin.clients()
    arns = [client.create_certificate_authority(CertificateAuthorityConfiguration=kit.EC_SUBJECT_CONFIG,
                                                CertificateAuthorityType="SUBORDINATE")["CertificateAuthorityArn"]
            for _ in range(3)]
    first = client.list_certificate_authorities(MaxResults=2)
    assert len(first["CertificateAuthorities"]) == 2 and "NextToken" in first
    second = client.list_certificate_authorities(MaxResults=2, NextToken=first["NextToken"])
    assert len(second["CertificateAuthorities"]) == 1 and "NextToken" not in second
    assert [c["Arn"] for c in first["CertificateAuthorities"] + second["CertificateAuthorities"]] == arns
    with pytest.raises(ClientError) as excinfo:
        client.list_certificate_authorities(NextToken="garbage")
    assert kit.error_code(excinfo) == "InvalidNextTokenException"
    west, _ = private_standin.clients("eu-west-1")
    assert west.list_certificate_authorities()["CertificateAuthorities"] == []


def test_tags(pca, kit, pending_ca):
    pca.tag_certificate_authority(CertificateAuthorityArn=pending_ca.arn,
                                  Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    pca.tag_certificate_authority(CertificateAuthorityArn=pending_ca.arn, Tags=[{"Key": "a", "Value": "3"}])
    assert pca.list_tags(CertificateAuthorityArn=pending_ca.arn)["Tags"] == [
        {"Key": "a", "Value": "3"}, {"Key": "b", "Value": "2"}]
    pca.untag_certificate_authority(CertificateAuthorityArn=pending_ca.arn, Tags=[{"Key": "b", "Value": "other"}])
    assert len(pca.list_tags(CertificateAuthorityArn=pending_ca.arn)["Tags"]) == 2
    pca.untag_certificate_authority(CertificateAuthorityArn=pending_ca.arn, Tags=[{"Key": "b"}])
    assert pca.list_tags(CertificateAuthorityArn=pending_ca.arn)["Tags"] == [{"Key": "a", "Value": "3"}]


def test_a_second_read_only_pass_makes_no_mutating_call(pca, standin, active_ca):
    standin.reset_calls()
    pca.describe_certificate_authority(CertificateAuthorityArn=active_ca.arn)
    pca.get_certificate_authority_certificate(CertificateAuthorityArn=active_ca.arn)
    pca.list_tags(CertificateAuthorityArn=active_ca.arn)
    assert standin.mutating() == 0
    pca.tag_certificate_authority(CertificateAuthorityArn=active_ca.arn, Tags=[{"Key": "k", "Value": "v"}])
    assert standin.mutating() == 1
    assert standin.calls()["acm-pca"] == {"DescribeCertificateAuthority": 1, "GetCertificateAuthorityCertificate": 1,
                                          "ListTags": 1, "TagCertificateAuthority": 1}


def test_revocation_configuration_reaches_issued_certificates(pca, kit, root):
    ca = kit.create_pending_ca(pca, RevocationConfiguration={
        "CrlConfiguration": {"Enabled": True, "ExpirationInDays": 7, "S3BucketName": "rehearsal-crl"},
        "OcspConfiguration": {"Enabled": True, "OcspCustomCname": "ocsp.rehearsal.test"}})
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=ca.arn,
                                                 Certificate=kit.pem(kit.sign_csr(root, ca.csr)),
                                                 CertificateChain=root.pem)
    stored = pca.describe_certificate_authority(CertificateAuthorityArn=ca.arn)["CertificateAuthority"][
        "RevocationConfiguration"]
    assert stored["CrlConfiguration"]["S3BucketName"] == "rehearsal-crl"
    _, issued = issue_and_wait(pca, kit, ca.arn, kit.leaf_csr()[1])
    certificate = x509.load_pem_x509_certificate(issued["Certificate"].encode())
    cdp = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    assert not cdp.critical
    [uri] = cdp.value[0].full_name
    ca_id = ca.arn.rsplit("/", 1)[1]
    assert uri.value == f"http://rehearsal-crl.s3.us-east-1.amazonaws.com/crl/{ca_id}.crl"
    aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    assert not aia.critical and aia.value[0].access_location.value == "http://ocsp.rehearsal.test"
