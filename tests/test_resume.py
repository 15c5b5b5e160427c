"""`apply` killed with SIGKILL at every step boundary and inside key generation, then run again.

The kill comes from the test hook PKI_CEREMONY_TEST_CRASH=<step>:<phase>, which SIGKILLs the
process at that point (as `kill -9` or a power cut would):
  after-intent   the intent is committed, nothing made yet
  after-run      the step made its key/certificate, the result is not yet committed
  after-result   the result is committed, artifact files not yet written
  during         SIGKILL from a timer while the step runs (used inside key generation)
After the second apply: a valid hierarchy, exactly one private key per CA, no duplicates.
"""
from __future__ import annotations

import signal

import pytest

from ceremony_support import make_ceremony_dir, verify_all_chains

STEPS = [f"{ca}/{s}" for ca in ("root",) for s in ("key", "certificate")] + [
    f"{ca}/{s}" for ca in ("primary", "issuing-a", "issuing-b", "issuing-c")
    for s in ("key", "csr", "certificate", "import")]
CASES = [(step, phase) for step in STEPS for phase in ("after-intent", "after-run", "after-result")]
CASES += [("root/key", "during"), ("primary/key", "during"), ("issuing-c/key", "during")]
LABELS = {"root": ["example-root-g1"],
          "online": sorted(f"example-corp-pki-{n}" for n in ("primary", "issuing-a", "issuing-b", "issuing-c"))}


@pytest.mark.parametrize("step,phase", CASES, ids=[f"{s}:{p}" for s, p in CASES])
def test_killed_then_applied_again_finishes_without_duplicates(tmp_path, step, phase):
    cd = make_ceremony_dir(tmp_path, "local.yaml")
    extra = {"PKI_CEREMONY_TEST_CRASH": f"{step}:{phase}"}
    if phase == "during":
        extra["PKI_CEREMONY_TEST_CRASH_DELAY"] = "0.02"
    first = cd.apply(env=cd.env(**extra))
    # 'during' may lose the race against a fast key generation; every other phase must die.
    if phase != "during":
        assert first.returncode == -signal.SIGKILL, (first.returncode, first.stdout[-500:], first.stderr[-500:])
    second = cd.apply()
    assert second.returncode == 0, second.stdout[-800:] + second.stderr[-800:]
    if phase == "after-run" and step.endswith("/key"):
        assert f"{step}: adopted" in second.stdout  # the key made before the kill, not a second one
    assert verify_all_chains(cd) == {n: "OK" for n in ("issuing-a", "issuing-b", "issuing-c", "primary")}
    tokens = cd.tokens()
    for token, labels in LABELS.items():
        private = sorted(o["label"] for o in tokens[token] if o["class"] == "PRIVATE_KEY")
        public = sorted(o["label"] for o in tokens[token] if o["class"] == "PUBLIC_KEY")
        assert private == labels and public == labels, (token, private, public)
    certs = sorted(o["label"] for o in tokens["online"] if o["class"] == "CERTIFICATE")
    assert certs == LABELS["online"]
    third = cd.apply()
    assert third.returncode == 0 and "Nothing to do" in third.stdout
