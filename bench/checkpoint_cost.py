"""How the cost of a checkpoint, a plan and the executor's bookkeeping grows with the ceremony.

Requirement: the cost of one checkpoint does not grow with the number of finished steps
(hierarchies with hundreds of CAs exist), and planning is roughly linear in the number of CAs.
No HSM is needed: the state store is driven directly, and the executor runs with stand-in
plugins that return realistic outputs instantly.

    python3 bench/checkpoint_cost.py                    # all three parts, default sizes
    python3 bench/checkpoint_cost.py --only checkpoint  # or: plan, executor
    python3 bench/checkpoint_cost.py --n 10 100 1000 5000 --m 200 --k 10 100 500 --dir /some/disk

Part 1 (checkpoint): for each N, a state with N finished steps (each ~3 KB of PEM text in its
outputs and a ~1.5 KB artifact) gets M more record_intent + record_result pairs; each pair is
timed (one "checkpoint" = what the executor commits for one step). The Ns are measured in
interleaved rounds, so that a slow moment of the machine hits every N alike. The figure that
matters is the ratio of the median at the largest N to the median at the smallest: ~1 means
constant cost. The cost is dominated by fsync (synchronous=FULL, rollback journal), so the
absolute figures depend on the disk under --dir.

Part 2 (plan): a generated ceremony with K CAs (local backends, one SoftHSM token) is written
as YAML, loaded, compiled, and its state pre-filled as finished for every step (with
fingerprints computed as the executor does, so every step plans as `done`); then make_plan is
timed, with the workspace (reads every artifact file back, as `plan` and `apply` do) and without.
Roughly linear = the time per step stays flat as K grows.

Part 3 (executor): the same generated ceremonies applied from scratch by the real Executor
with stand-in plugins (no HSM, no crypto): time per step, and the median time per step of the
first and the last tenth of the run (if bookkeeping grew with finished steps, the last tenth
would be slower).

Prints figures; asserts nothing except that the set-up is what it claims (all steps `done`).
"""
from __future__ import annotations

import argparse
import base64
import os
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pki_ceremony.engine.compiler import compile_ceremony
from pki_ceremony.engine.contract import StepPlugin, StepResult
from pki_ceremony.engine.executor import Executor
from pki_ceremony.engine.fingerprint import digest, step_fingerprint
from pki_ceremony.engine.plan import Action, make_plan
from pki_ceremony.engine.registry import Registry
from pki_ceremony.engine.state import SqliteStateStore
from pki_ceremony.engine.workspace import Workspace
from pki_ceremony.schemas.loader import load_ceremony


# -- realistic stand-in data ------------------------------------------------------------------
def fake_pem(kind: str, der_bytes: int) -> str:
    b64 = base64.b64encode(secrets.token_bytes(der_bytes)).decode()
    body = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"


def cert_outputs(subject: str, chain_pem: str = "") -> dict:
    """Like the outputs of a certificate step: a certificate (~1.9 KB PEM) and its chain."""
    return {"certificate_pem": fake_pem("CERTIFICATE", 1400), "chain_pem": chain_pem,
            "serial": secrets.token_hex(16), "not_before": "2026-01-01T00:00:00+00:00",
            "not_after": "2031-01-01T00:00:00+00:00", "sha256_fingerprint": secrets.token_hex(32),
            "subject": subject}


def checkpoint_payload(i: int) -> tuple[dict, dict, dict, dict[str, bytes]]:
    """(spec, intent, outputs, artifacts) of one finished step: ~3 KB of PEM, ~1.5 KB artifact."""
    spec = {"subject": {"country": "US", "organization": "Example Corp", "common_name": f"Bench CA {i}"},
            "validity": {"years": 3}, "path_len": 0, "key_algorithm": "EC_secp384r1",
            "signing_algorithm": "SHA384WITHECDSA",
            "issuer_hsm": {"name": "bench-hsm", "provider": "softhsm", "token": "bench", "module": None}}
    intent = {"serial": secrets.token_hex(16), "not_before": "2026-01-01T00:00:00+00:00",
              "not_after": "2029-01-01T00:00:00+00:00"}
    outputs = cert_outputs(f"CN=Bench CA {i},O=Example Corp,C=US",
                           chain_pem=fake_pem("CERTIFICATE", 800))  # ~1.9 KB + ~1.1 KB = ~3 KB
    artifacts = {f"ca-{i:05d}/certificate.pem": fake_pem("CERTIFICATE", 1100).encode()}  # ~1.5 KB
    return spec, intent, outputs, artifacts


def write_checkpoint(store: SqliteStateStore, i: int, payload=None) -> None:
    spec, intent, outputs, artifacts = payload or checkpoint_payload(i)
    sid = f"ca-{i:05d}/certificate"
    store.record_intent(sid, "hsm.sign_ca", "f" * 64, spec, intent)
    store.record_result(sid, "hsm.sign_ca", "f" * 64, spec, outputs, digest(outputs), artifacts, {})


def set_synchronous(store: SqliteStateStore, mode: str) -> None:
    # Pre-filling with synchronous=OFF only skips fsync; what is written is the same.
    store.db.execute(f"PRAGMA synchronous={mode}")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def fs_of(path: Path) -> str:
    best, fstype = "", "?"
    try:
        real = str(path.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mnt, typ, *_ = line.split()
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
                best, fstype = mnt, typ
    except OSError:
        pass
    return fstype


# -- part 1: one checkpoint against N finished steps --------------------------------------------
def bench_checkpoint(base: Path, ns: list[int], m: int, rounds: int) -> None:
    print(f"== checkpoint cost (one record_intent + record_result pair), M={m} per N, "
          f"{rounds} interleaved rounds, {base} ({fs_of(base)})")
    stores: dict[int, SqliteStateStore] = {}
    t_fill = {}
    for n in ns:
        d = base / f"checkpoint-{n}"
        d.mkdir()
        t0 = time.perf_counter()
        store = SqliteStateStore(d / "state.db")
        set_synchronous(store, "OFF")
        for i in range(n):
            write_checkpoint(store, i)
        store.close()
        t_fill[n] = time.perf_counter() - t0
        stores[n] = SqliteStateStore(d / "state.db")  # reopened, as the next apply would
        assert stores[n].db.execute("PRAGMA synchronous").fetchone()[0] == 2, "expected synchronous=FULL"
        assert len(stores[n].steps()) == n
    print("   pre-filled in " + ", ".join(f"N={n}: {t_fill[n]:.1f}s" for n in ns))

    times: dict[int, list[float]] = {n: [] for n in ns}
    intent_t: dict[int, list[float]] = {n: [] for n in ns}
    per_round = max(1, m // rounds)
    next_i = {n: n for n in ns}
    payloads = [checkpoint_payload(10**6 + j) for j in range(per_round)]
    for r in range(rounds):
        order = ns if r % 2 == 0 else list(reversed(ns))
        for n in order:
            store = stores[n]
            for j in range(per_round):
                spec, intent, outputs, artifacts = payloads[j]
                i = next_i[n]
                next_i[n] += 1
                sid = f"ca-{i:05d}/certificate"
                arts = {f"ca-{i:05d}/certificate.pem": next(iter(artifacts.values()))}
                t0 = time.perf_counter()
                store.record_intent(sid, "hsm.sign_ca", "f" * 64, spec, intent)
                t1 = time.perf_counter()
                store.record_result(sid, "hsm.sign_ca", "f" * 64, spec, outputs, digest(outputs), arts, {})
                t2 = time.perf_counter()
                times[n].append((t2 - t0) * 1e3)
                intent_t[n].append((t1 - t0) * 1e3)
    print(f"   {'N finished':>10} {'median ms':>10} {'p95 ms':>8} {'intent ms':>10} {'result ms':>10} "
          f"{'state.db':>10}")
    for n in ns:
        stores[n].close()
        size = (base / f"checkpoint-{n}" / "state.db").stat().st_size
        med_i = statistics.median(intent_t[n])
        med_r = statistics.median(t - i for t, i in zip(times[n], intent_t[n]))
        print(f"   {n:>10} {statistics.median(times[n]):>10.2f} {pct(times[n], 95):>8.2f} {med_i:>10.2f} "
              f"{med_r:>10.2f} {size / 1e6:>8.1f}MB")
    lo, hi = ns[0], ns[-1]
    print(f"   ratio median N={hi} / N={lo}: {statistics.median(times[hi]) / statistics.median(times[lo]):.2f}"
          f"   (p95: {pct(times[hi], 95) / pct(times[lo], 95):.2f})")


# -- generated ceremonies -------------------------------------------------------------------------
def ceremony_yaml(k: int) -> str:
    """K CAs: a root, K//25 (at least 1) intermediates, the rest issuing CAs spread under them.
    All keys on one SoftHSM token; unique names, labels and subjects."""
    n_int = max(1, (k - 1) // 25)
    n_iss = k - 1 - n_int
    algos = ["EC_prime256v1", "EC_secp384r1", "RSA_2048", "RSA_3072"]
    out = ["apiVersion: pki-ceremony/v1", "kind: Ceremony",
           "metadata: {name: bench-" + str(k) + ", description: generated by bench/checkpoint_cost.py}",
           "hsms:", "  bench-hsm: {provider: softhsm, token: bench, pin: {env: BENCH_HSM_PIN}}",
           "hierarchy:", "  root:", "    hsm: bench-hsm", "    key: {algorithm: RSA_4096, label: bench-root}",
           "    subject: {country: US, organization: Bench Corp, common_name: Bench Root CA}",
           "    validity: {years: 20}", "  subordinates:"]
    for i in range(n_int):
        out += [f"    - name: int-{i}", "      issuer: root", "      backend: {type: local, hsm: bench-hsm}",
                f"      key: {{algorithm: RSA_3072, label: bench-int-{i}}}",
                f"      subject: {{country: US, organization: Bench Corp, common_name: Bench Intermediate {i}}}",
                "      validity: {years: 10}", "      path_len: 1"]
    for i in range(n_iss):
        out += [f"    - name: iss-{i}", f"      issuer: int-{i % n_int}",
                "      backend: {type: local, hsm: bench-hsm}",
                f"      key: {{algorithm: {algos[i % len(algos)]}, label: bench-iss-{i}}}",
                f"      subject: {{country: US, organization: Bench Corp, organizational_unit: Unit {i % 7}, "
                f"common_name: Bench Issuing CA {i}}}",
                f"      validity: {{months: {12 + i % 24}}}", "      path_len: 0"]
    return "\n".join(out) + "\n"


def fake_result(node, inputs: dict) -> StepResult:
    """Outputs shaped like the built-in plugins' (sizes included), made instantly."""
    kind, spec = node.kind, node.spec
    if kind.endswith("keypair"):
        return StepResult({"hsm": spec["hsm"]["name"], "token": spec["hsm"]["token"],
                           "key_id": secrets.token_hex(16), "label": spec["label"],
                           "algorithm": spec["algorithm"], "public_key_pem": fake_pem("PUBLIC KEY", 420),
                           "attributes": {"SENSITIVE": True, "EXTRACTABLE": False, "TOKEN": True}})
    if kind.endswith("csr"):
        pem = fake_pem("CERTIFICATE REQUEST", 700)
        return StepResult({"csr_pem": pem}, {"csr.pem": pem.encode()})
    if kind.endswith("import_certificate") or kind.endswith("import"):
        cert = inputs.get("certificate", {})
        issuer = inputs.get("issuer_certificate", {})
        chain = issuer.get("certificate_pem", "") + issuer.get("chain_pem", "")
        return StepResult({**cert, "chain_pem": chain}, {"chain.pem": chain.encode()})
    out = cert_outputs(str(spec.get("subject", {}).get("common_name", node.id)))
    return StepResult(out, {"certificate.pem": out["certificate_pem"].encode()})


def make_registry(kinds) -> Registry:
    reg = Registry()
    for kind in sorted(set(kinds)):
        reg.register(type("Fake_" + kind.replace(".", "_"), (StepPlugin,), {
            "kind": kind, "run": lambda self, call, ctx, _k=kind: ctx(call)}))
    return reg


def load_generated(base: Path, k: int):
    path = base / f"bench-{k}.yaml"
    path.write_text(ceremony_yaml(k))
    t0 = time.perf_counter()
    loaded = load_ceremony(path)
    t1 = time.perf_counter()
    graph = compile_ceremony(loaded.model)
    t2 = time.perf_counter()
    assert len(loaded.model.cas()) == k
    return loaded, graph, t1 - t0, t2 - t1


def prefill_done(graph, store: SqliteStateStore, ws: Workspace) -> None:
    """Every step finished, fingerprinted from its upstreams' output digests as the executor does."""
    set_synchronous(store, "OFF")
    outputs: dict[str, dict] = {}
    digests: dict[str, str] = {}
    for node in graph.order():
        ups = {graph.g.edges[u, node.id]["role"]: u for u in graph.upstream(node.id)}
        res = fake_result(node, {role: outputs[u] for role, u in ups.items()})
        fp = step_fingerprint(node.kind, node.spec, {role: digests[u] for role, u in ups.items()})
        arts = {f"{node.group}/{name}": c for name, c in res.artifacts.items()}
        outputs[node.id], digests[node.id] = res.outputs, digest(res.outputs)
        store.record_intent(node.id, node.kind, fp, node.spec, {"serial": secrets.token_hex(16)})
        store.record_result(node.id, node.kind, fp, node.spec, res.outputs, digests[node.id], arts, {})
        for rel, content in arts.items():  # plain writes: the plan only reads them back
            p = ws.artifacts_dir / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content)
    set_synchronous(store, "FULL")


# -- part 2: planning --------------------------------------------------------------------------------
def bench_plan(base: Path, ks: list[int], reps: int) -> None:
    print(f"== plan of a finished ceremony with K CAs (median of {reps})")
    print(f"   {'K CAs':>6} {'steps':>6} {'load ms':>8} {'compile ms':>10} {'plan ms':>8} {'us/step':>8} "
          f"{'plan+ws ms':>10} {'us/step':>8}")
    per_step = {}
    for k in ks:
        d = base / f"plan-{k}"
        d.mkdir()
        loaded, graph, t_load, t_compile = load_generated(d, k)
        ws = Workspace(d / "ws")
        ws.create()
        store = SqliteStateStore(ws.state_path)
        prefill_done(graph, store, ws)
        store.close()
        store = SqliteStateStore(ws.state_path, create=False)
        plan = make_plan(graph, store, workspace=ws)
        counts = plan.counts
        assert counts == {Action.DONE: len(graph)} and not plan.has_work, counts
        bare, full = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            make_plan(graph, store)
            t1 = time.perf_counter()
            make_plan(graph, store, workspace=ws)
            t2 = time.perf_counter()
            bare.append(t1 - t0)
            full.append(t2 - t1)
        store.close()
        steps = len(graph)
        mb, mf = statistics.median(bare), statistics.median(full)
        per_step[k] = (mb / steps, mf / steps, t_load / k, t_compile / k)
        print(f"   {k:>6} {steps:>6} {t_load * 1e3:>8.1f} {t_compile * 1e3:>10.1f} {mb * 1e3:>8.1f} "
              f"{mb / steps * 1e6:>8.0f} {mf * 1e3:>10.1f} {mf / steps * 1e6:>8.0f}")
    lo, hi = ks[0], ks[-1]
    names = ("plan", "plan+workspace", "load", "compile")
    print(f"   ratio of time per step (or per CA) K={hi} / K={lo}: " + ", ".join(
        f"{name} {per_step[hi][i] / per_step[lo][i]:.2f}" for i, name in enumerate(names)))
    print("   (~1 = linear; the small K carries fixed costs, so a ratio somewhat below 1 is normal)")


# -- part 3: the executor's own bookkeeping ------------------------------------------------------------
def bench_executor(base: Path, ks: list[int]) -> None:
    print("== executor applying a generated ceremony from scratch, stand-in plugins (no HSM, no crypto)")
    print("   wall includes 2 fsync'd transactions + artifact files fsync'd with their directory per step;")
    print("   CPU (process time, all threads) leaves the disk out and shows the bookkeeping itself")
    print(f"   {'K CAs':>6} {'steps':>6} {'apply s':>8} {'ms/step':>8} {'CPU ms/step':>11} "
          f"{'CPU first 10%':>13} {'CPU last 10%':>12} {'order() ms':>10}")
    for k in ks:
        d = base / f"exec-{k}"
        d.mkdir()
        loaded, graph, _, _ = load_generated(d, k)
        ws = Workspace(d / "ws")
        ws.create()
        store = SqliteStateStore(ws.state_path)
        plan = make_plan(graph, store, workspace=ws)
        stamps: list[float] = []

        class Clock:
            def step_started(self, *a): pass
            def step_failed(self, node, err): raise SystemExit(f"{node.id}: {err}")
            def step_finished(self, *a): stamps.append(time.process_time())

        nodes = {n.id: n for n in graph.order()}
        ctx = lambda call: fake_result(nodes[call.step_id], call.inputs)  # noqa: E731
        ex = Executor(graph, store, ws, make_registry(n.kind for n in graph.order()), ctx, observer=Clock())
        t0, c0 = time.perf_counter(), time.process_time()
        report = ex.apply(plan)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        store.close()
        assert len(report.ran) == len(graph)
        gaps = [(b - a) * 1e3 for a, b in zip([c0] + stamps, stamps)]
        tenth = max(1, len(gaps) // 10)
        first, last = statistics.mean(gaps[:tenth]), statistics.mean(gaps[-tenth:])
        o0 = time.perf_counter()
        for _ in range(3):
            graph.order()
        order_ms = (time.perf_counter() - o0) / 3 * 1e3
        n = len(graph)
        print(f"   {k:>6} {n:>6} {wall:>8.2f} {wall / n * 1e3:>8.2f} {cpu / n * 1e3:>11.2f} "
              f"{first:>13.2f} {last:>12.2f} {order_ms:>10.2f}")
    print("   (order() = one CeremonyGraph.order() over the whole graph; CPU first/last 10% are means)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10, 100, 1000, 5000], help="finished steps (part 1)")
    ap.add_argument("--m", type=int, default=200, help="checkpoints timed per N (part 1)")
    ap.add_argument("--rounds", type=int, default=10, help="interleaved rounds the M are split into (part 1)")
    ap.add_argument("--k", type=int, nargs="+", default=[10, 100, 500], help="CAs (parts 2 and 3)")
    ap.add_argument("--reps", type=int, default=5, help="make_plan repetitions (part 2)")
    ap.add_argument("--only", choices=["checkpoint", "plan", "executor"], action="append")
    ap.add_argument("--dir", help="where to put the temporary states (default: the system temp dir)")
    args = ap.parse_args()
    parts = args.only or ["checkpoint", "plan", "executor"]
    base = Path(tempfile.mkdtemp(prefix="pki-bench-", dir=args.dir))
    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, nproc {os.cpu_count()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    try:
        if "checkpoint" in parts:
            bench_checkpoint(base, sorted(args.n), args.m, args.rounds)
        if "plan" in parts:
            bench_plan(base, sorted(args.k), args.reps)
        if "executor" in parts:
            bench_executor(base, sorted(args.k))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
