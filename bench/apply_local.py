"""Wall time of a whole `pki-ceremony apply` of ceremonies/local.yaml on SoftHSM2, and where it goes.

    python3 bench/apply_local.py            # 3 runs
    python3 bench/apply_local.py --runs 10 --file ceremonies/local.yaml

Each run copies the ceremony file into a fresh temporary directory and runs
`python -m pki_ceremony apply <copy> --yes` as a subprocess, with random PINs in the environment
(the variables the file names: ROOT_HSM_PIN, ONLINE_HSM_PIN) and nothing else of ours (no
SOFTHSM2_CONF, no other *_PIN, no PKI_CEREMONY_*). It prints:

  wall        the subprocess's wall time, from fork to exit
  steps       the sum of the `seconds` of the `finished`/`adopted` events in the workspace's
              ceremony-log.jsonl: the time inside each step's work (key generation, signing),
              as the executor measures it
  outside     wall - steps: interpreter start-up and imports, reading and compiling the file,
              planning, creating the SoftHSM tokens, logging in, checkpoints (state
              transactions and artifact files, fsync'd) and the process exit
  per kind    step time by step kind, summed over the run's steps of that kind

then the medians over the runs, a few reference costs (an empty `python -c pass`, and
`validate`, which is start-up + imports + reading and compiling the file), and the cost of a
second, no-op apply on a finished workspace (it must change nothing: the log is compared).

Key generation is random (RSA-4096 takes 0.5 to 2.5 s on SoftHSM), so the runs differ.
Prints figures; asserts nothing, but says so when a run fails.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pin_variables(path: Path) -> list[str]:
    import yaml

    names: set[str] = set()

    def walk(x):
        if isinstance(x, dict):
            if set(x) == {"env"}:
                names.add(x["env"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(yaml.safe_load(path.read_text()))
    return sorted(names) or ["ROOT_HSM_PIN", "ONLINE_HSM_PIN"]


def clean_env(pins: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "SOFTHSM2_CONF", "PKI_CEREMONY_")) and not k.endswith("_PIN")}
    env.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    env.update(pins)
    return env


def step_kinds(path: Path) -> dict[str, str]:
    """step id -> kind, from the compiled ceremony (in this process, not timed)."""
    try:
        from pki_ceremony.engine.compiler import compile_ceremony
        from pki_ceremony.schemas.loader import load_ceremony

        return {n.id: n.kind for n in compile_ceremony(load_ceremony(path).model).order()}
    except Exception as exc:  # noqa: BLE001 - fall back to the step id's last part
        print(f"(could not compile {path} here: {type(exc).__name__}: {exc}; grouping by step id suffix)")
        return {}


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=600)
    return time.perf_counter() - t0, r


def read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--file", default=str(ROOT / "ceremonies" / "local.yaml"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = ap.parse_args()
    src = Path(args.file).resolve()
    kinds = step_kinds(src)
    variables = pin_variables(src)
    cli = [sys.executable, "-m", "pki_ceremony"]
    print(f"{src.name}: {len(kinds) or '?'} steps; python {sys.version.split()[0]}; nproc {os.cpu_count()}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}; PIN variables {', '.join(variables)}")

    walls, outs, noops, per_kind_runs = [], [], [], []
    dirs = []
    for i in range(1, args.runs + 1):
        d = Path(tempfile.mkdtemp(prefix="pki-apply-bench-"))
        dirs.append(d)
        f = d / src.name
        shutil.copy(src, f)
        env = clean_env({v: "7" + secrets.token_hex(8) for v in variables})
        wall, r = timed([*cli, "apply", str(f), "--yes"], d, env)
        log_path = d / f"{f.stem}-workspace" / "ceremony-log.jsonl"
        log = read_log(log_path)
        if r.returncode != 0:
            print(f"run {i}: apply FAILED (exit {r.returncode}) after {wall:.2f}s\n{r.stderr.strip()[-2000:]}")
            continue
        per_kind: dict[str, list[float]] = defaultdict(list)
        for e in log:
            if e.get("event") in ("finished", "adopted"):
                kind = kinds.get(e["step"]) or e["step"].rsplit("/", 1)[-1]
                per_kind[kind].append(float(e.get("seconds", 0.0)))
        steps = sum(sum(v) for v in per_kind.values())
        n_steps = sum(len(v) for v in per_kind.values())
        walls.append(wall)
        outs.append(wall - steps)
        per_kind_runs.append({k: sum(v) for k, v in per_kind.items()})
        print(f"\nrun {i}: wall {wall:.2f}s = steps {steps:.2f}s ({n_steps} steps) + outside {wall - steps:.2f}s "
              f"({(wall - steps) / wall:.0%} of wall)")
        for k, v in sorted(per_kind.items(), key=lambda kv: -sum(kv[1])):
            print(f"   {k:<24} {len(v):>2} x  total {sum(v):6.3f}s  max {max(v):6.3f}s")

        # The second apply on the finished workspace: nothing to do, nothing written.
        before = log_path.read_bytes() if log_path.exists() else b""
        state = d / f"{f.stem}-workspace" / "state.db"
        state_before = state.read_bytes() if state.exists() else b""
        noop, r2 = timed([*cli, "apply", str(f), "--yes"], d, env)
        changed = []
        if (log_path.read_bytes() if log_path.exists() else b"") != before:
            changed.append("ceremony-log.jsonl")
        if (state.read_bytes() if state.exists() else b"") != state_before:
            changed.append("state.db")
        noops.append(noop)
        print(f"   second apply (no-op): {noop:.2f}s, exit {r2.returncode}"
              + (f", CHANGED {', '.join(changed)}" if changed else ", nothing changed")
              + ("" if "Nothing to do" in r2.stdout else "; did not say 'Nothing to do'"))

    # Reference costs, in the last run's directory.
    if dirs:
        d = dirs[-1]
        env = clean_env({})
        empty = statistics.median(timed([sys.executable, "-c", "pass"], d, env)[0] for _ in range(3))
        validate = statistics.median(timed([*cli, "validate", str(d / src.name)], d, env)[0] for _ in range(3))
        print(f"\nreference: python -c pass {empty:.3f}s; pki-ceremony validate {validate:.3f}s "
              f"(start-up, imports, read + compile the file)")
    if walls:
        print(f"\nmedian over {len(walls)} runs: wall {statistics.median(walls):.2f}s, outside the steps "
              f"{statistics.median(outs):.2f}s ({statistics.median(o / w for o, w in zip(outs, walls)):.0%}), "
              f"no-op apply {statistics.median(noops):.2f}s")
        all_kinds = sorted({k for run in per_kind_runs for k in run})
        for k in sorted(all_kinds, key=lambda k: -statistics.median(run.get(k, 0.0) for run in per_kind_runs)):
            vals = [run.get(k, 0.0) for run in per_kind_runs]
            print(f"   {k:<24} median {statistics.median(vals):6.3f}s  (min {min(vals):.3f}, max {max(vals):.3f})")
    if args.keep:
        print("kept: " + " ".join(map(str, dirs)))
    else:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
