"""Plans a second person can review: saved plans applied exactly, JSON forms, refresh, status."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema

from ceremony_support import TOOLS, clean_env, softhsm_module

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


def logged_steps(cd) -> list[str]:
    log = cd.workspace / "ceremony-log.jsonl"
    return [e["step"] for e in map(json.loads, log.read_text().splitlines()) if e["event"] in ("finished", "adopted")]


def test_saved_plan_is_applied_exactly_and_only(local_ceremony):
    cd = local_ceremony
    crashed = cd.apply(env=cd.env(PKI_CEREMONY_TEST_CRASH="primary/certificate:after-intent"))
    assert crashed.returncode == -signal.SIGKILL
    before = logged_steps(cd)
    r = cd.cli("plan", str(cd.file), "--out", "review.plan")
    assert r.returncode == 0 and "Saved the plan to review.plan" in r.stdout
    doc = json.loads((cd.dir / "review.plan").read_text())
    listed = [s["id"] for s in doc["steps"] if s["action"] in ("create", "resume", "replace")]
    assert listed[0] == "primary/certificate" and len(listed) == 14
    applied = cd.cli("apply", "review.plan")
    assert applied.returncode == 0, applied.stderr
    assert logged_steps(cd)[len(before):] == listed
    again = cd.cli("apply", "review.plan")
    assert again.returncode == 3 and "stale" in again.stderr and "the state changed" in again.stderr


def test_saved_plan_is_refused_when_the_ceremony_file_changed(local_ceremony):
    cd = local_ceremony
    assert cd.cli("plan", str(cd.file), "--out", "review.plan").returncode == 0
    cd.file.write_text(cd.file.read_text().replace("validity: {months: 18}", "validity: {months: 12}"))
    r = cd.cli("apply", "review.plan")
    assert r.returncode == 3 and "the ceremony file changed" in r.stderr
    assert not cd.workspace.exists()


def test_plan_and_status_json_validate_against_the_shipped_schemas(local_ceremony):
    cd = local_ceremony
    plan_schema = json.loads((SCHEMAS / "plan.schema.json").read_text())
    status_schema = json.loads((SCHEMAS / "status.schema.json").read_text())
    fresh = json.loads(cd.cli("plan", str(cd.file), "--json").stdout)
    jsonschema.validate(fresh, plan_schema)
    assert fresh["counts"] == {"create": 18} and fresh["state"] is None and fresh["applicable"]
    assert cd.apply().returncode == 0
    done = json.loads(cd.cli("plan", str(cd.file), "--json", "--refresh").stdout)
    jsonschema.validate(done, plan_schema)
    assert done["counts"] == {"done": 18} and done["state"]["serial"] > 1
    assert set(done["refresh"]) == {s["id"] for s in done["steps"]} and not any(done["refresh"].values())
    status = json.loads(cd.cli("status", str(cd.file), "--json").stdout)
    jsonschema.validate(status, status_schema)
    assert [ca["status"] for ca in status["cas"]] == ["complete"] * 5
    with __import__("pytest").raises(jsonschema.ValidationError):
        jsonschema.validate({**status, "format_version": 2}, status_schema)


def test_refresh_reports_a_certificate_removed_from_the_token(local_ceremony):
    cd = local_ceremony
    assert cd.apply().returncode == 0
    conf = cd.workspace / "softhsm" / "softhsm2.conf"
    removed = subprocess.run([sys.executable, str(TOOLS / "delete_object.py"), softhsm_module(), "online",
                              "example-corp-pki-issuing-b", "CERTIFICATE"], input=cd.pins["ONLINE_HSM_PIN"],
                             capture_output=True, text=True, env=clean_env(SOFTHSM2_CONF=str(conf)))
    assert removed.stdout.strip() == "1", removed.stderr
    r = cd.cli("plan", str(cd.file), "--refresh")
    assert r.returncode == 0, r.stderr
    assert "refresh: the certificate of 'example-corp-pki-issuing-b' is not on token 'online'" in r.stdout
    assert "1 differ from the state" in r.stdout


def test_status_tree_before_and_after(local_ceremony):
    cd = local_ceremony
    before = cd.cli("status", str(cd.file)).stdout.splitlines()
    assert before[1].startswith("root: Example Corp Root CA G1 [RSA_4096, hsm:root-hsm] not started")
    assert before[2].startswith("└── primary:") and before[5].startswith("    └── issuing-c:")
    assert cd.apply().returncode == 0
    after = cd.cli("status", str(cd.file)).stdout
    assert after.count(" complete, until ") == 5 and "sha256 " in after
