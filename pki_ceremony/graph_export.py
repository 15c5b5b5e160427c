"""Pictures of a ceremony: the step DAG and the CA hierarchy, as Mermaid and Graphviz DOT.

`to_mermaid` and `to_dot` draw the step DAG of a plan: one box per CA holding its steps, each
step coloured by what the plan would do with it (create, resume, done, replace, drifted,
blocked), a red border on a destructive step that is not done, and each edge labelled with the
input role the downstream step consumes. `hierarchy_mermaid` draws the CAs themselves, issuer
above subordinate, coloured by how far each CA got. `write_graph` writes the files, and an SVG
when Graphviz's `dot` is installed.

Everything here reads only the model, the DAG and a plan: nothing touches a workspace.
`python -m pki_ceremony.graph_export --docs` regenerates docs/hierarchies.md from the example
ceremonies (`--check` exits 1 when the page is stale).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pki_ceremony.engine.plan import Action, Plan, PlannedStep

REPO = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO / "ceremonies"
DOCS_OUTPUT = REPO / "docs" / "hierarchies.md"

# Colours by action: (fill, border, text). Order is the legend's.
ACTION_ORDER = (Action.CREATE, Action.RESUME, Action.REPLACE, Action.DONE, Action.DRIFTED, Action.BLOCKED)
ACTION_COLOURS: dict[Action, tuple[str, str, str]] = {
    Action.CREATE: ("#d4edda", "#2e7d32", "#1b3d1f"),   # green: to be made
    Action.RESUME: ("#d6e9f8", "#1565c0", "#0d2a4d"),   # blue: an interrupted attempt to finish
    Action.REPLACE: ("#ffe0b2", "#e65100", "#4d1f00"),  # orange: to be made anew
    Action.DONE: ("#eeeeee", "#9e9e9e", "#424242"),     # grey: nothing to do
    Action.DRIFTED: ("#fff59d", "#f9a825", "#4d3b00"),  # yellow: finished, inputs changed since
    Action.BLOCKED: ("#e1bee7", "#6a1b9a", "#311040"),  # purple: waits on a drifted step, or on a base ceremony's unfinished step, or is held by an interlock
}
DESTRUCTIVE_BORDER = "#d50000"

# CA status (hierarchy_mermaid): (fill, border, text)
STATUS_ORDER = ("complete", "partial", "not_started", "drifted")
STATUS_COLOURS: dict[str, tuple[str, str, str]] = {
    "complete": ("#d4edda", "#2e7d32", "#1b3d1f"),
    "partial": ("#d6e9f8", "#1565c0", "#0d2a4d"),
    "not_started": ("#ffffff", "#616161", "#212121"),
    "drifted": ("#fff59d", "#f9a825", "#4d3b00"),
}


# --- shared ------------------------------------------------------------------------------------

def _planned(c, plan: Plan) -> dict[str, PlannedStep]:
    """step id -> its planned step, checking that the plan is the plan of this ceremony's DAG."""
    steps = {s.node.id: s for s in plan.steps}
    nodes = set(c.graph.g.nodes)
    if set(steps) != nodes:
        missing, extra = sorted(nodes - set(steps)), sorted(set(steps) - nodes)
        raise ValueError("the plan is not the plan of this ceremony: "
                         + (f"steps without a plan entry: {', '.join(missing)}" if missing else "")
                         + ("; " if missing and extra else "")
                         + (f"plan entries for unknown steps: {', '.join(extra)}" if extra else ""))
    return steps


def _groups(plan: Plan) -> list[tuple[str, list[PlannedStep]]]:
    """CA name -> its steps, in plan (topological, then file) order."""
    groups: dict[str, list[PlannedStep]] = {}
    for s in plan.steps:
        groups.setdefault(s.node.group, []).append(s)
    return list(groups.items())


def _edges(c, plan: Plan) -> list[tuple[str, str, str]]:
    """(upstream, downstream, role) in a stable order: by downstream, then upstream, in plan order."""
    index = {s.node.id: i for i, s in enumerate(plan.steps)}
    edges = [(u, v, str(d.get("role", ""))) for u, v, d in c.graph.g.edges(data=True)]
    return sorted(edges, key=lambda e: (index[e[1]], index[e[0]]))


def is_destructive(s: PlannedStep) -> bool:
    """Marked destructive in a picture: as in the plan text, only while there is something to do."""
    return s.destructive and s.action is not Action.DONE


def _action_label(s: PlannedStep) -> str:
    return s.action.value + (", destructive" if is_destructive(s) else "")


class _Ids:
    """Stable, unique identifiers made of letters, digits and underscores, from arbitrary names."""

    def __init__(self, prefix: str):
        self.prefix, self.ids, self.used = prefix, {}, set()

    def __call__(self, name: str) -> str:
        if name not in self.ids:
            base = self.prefix + re.sub(r"[^A-Za-z0-9]", "_", name)
            candidate, n = base, 2
            while candidate in self.used:
                candidate, n = f"{base}_{n}", n + 1
            self.used.add(candidate)
            self.ids[name] = candidate
        return self.ids[name]


# --- Mermaid -----------------------------------------------------------------------------------

_MERMAID_ESCAPES = {c: f"#{ord(c)};" for c in '#"[](){}<>|&;`'}
_MERMAID_ESCAPES['"'] = "#quot;"


def mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label: quotes, brackets and the like as entity codes."""
    return "".join(_MERMAID_ESCAPES.get(ch, ch) for ch in str(text).replace("\r", "").replace("\n", " "))


def _mermaid_label(*lines: str) -> str:
    return '"' + "<br/>".join(mermaid_text(line) for line in lines) + '"'


def _mermaid_classdef(name: str, fill: str, border: str, text: str, extra: str = "") -> str:
    return f"    classDef {name} fill:{fill},stroke:{border},color:{text},stroke-width:1px{extra}"


def to_mermaid(c, plan: Plan) -> str:
    """The step DAG as a Mermaid `flowchart TD`: a subgraph per CA, steps coloured by action."""
    steps = _planned(c, plan)
    step_id, ca_id = _Ids("s_"), _Ids("ca_")
    lines = ["flowchart TD"]
    for group, members in _groups(plan):
        lines.append(f"    subgraph {ca_id(group)}[{_mermaid_label(group)}]")
        for s in members:
            lines.append(f"        {step_id(s.node.id)}[{_mermaid_label(s.node.id, _action_label(s))}]")
        lines.append("    end")
    for u, v, role in _edges(c, plan):
        label = f'|"{mermaid_text(role)}"|' if role else ""
        lines.append(f"    {step_id(u)} -->{label} {step_id(v)}")
    for action in ACTION_ORDER:
        lines.append(_mermaid_classdef(action.value, *ACTION_COLOURS[action],
                                       ",stroke-dasharray:5 3" if action is Action.BLOCKED else ""))
    lines.append(f"    classDef destructive stroke:{DESTRUCTIVE_BORDER},stroke-width:3px")
    for action in ACTION_ORDER:
        ids = [step_id(s.node.id) for s in plan.steps if s.action is action]
        if ids:
            lines.append(f"    class {','.join(ids)} {action.value}")
    destructive = [step_id(sid) for sid, s in steps.items() if is_destructive(s)]
    if destructive:
        lines.append(f"    class {','.join(destructive)} destructive")
    return "\n".join(lines) + "\n"


def ca_status(plan: Plan, ca_name: str) -> tuple[str, str]:
    """(status class, words) of one CA: complete when all its steps are done."""
    mine = [s for s in plan.steps if s.node.group == ca_name]
    done = sum(s.action is Action.DONE for s in mine)
    if mine and done == len(mine):
        return "complete", "complete"
    if any(s.action in (Action.DRIFTED, Action.BLOCKED) for s in mine):
        return "drifted", "drifted"
    if all(s.action is Action.CREATE for s in mine):
        return "not_started", "not started"
    return "partial", f"{done}/{len(mine)} steps done"


def _backend(model, ca) -> str:
    hsm = model.hsm_of(ca)
    return f"hsm {hsm}" if hsm else "AWS Private CA"


def _validity(plan: Plan, ca) -> str:
    mine = [s for s in plan.steps if s.node.group == ca.name]
    last = mine[-1] if mine else None
    outputs = last.record.outputs if last is not None and last.record is not None and last.record.done else None
    not_after = (outputs or {}).get("not_after") if isinstance(outputs, dict) else None
    if last is not None and last.action is Action.DONE and not_after:
        return f"valid until {str(not_after)[:10]}"
    return f"validity {ca.validity.describe()}"


def hierarchy_mermaid(c, plan: Plan) -> str:
    """The CA hierarchy as a Mermaid `flowchart TD`: one node per CA, issuer above subordinate."""
    model = c.model
    ca_id = _Ids("ca_")
    lines = ["flowchart TD"]
    statuses: dict[str, list[str]] = {}
    for ca in model.cas():
        status, words = ca_status(plan, ca.name)
        statuses.setdefault(status, []).append(ca_id(ca.name))
        label = _mermaid_label(ca.name, ca.subject.common_name,
                               f"{ca.key.algorithm.value}, {_backend(model, ca)}",
                               _validity(plan, ca), words)
        lines.append(f"    {ca_id(ca.name)}[{label}]")
    for ca in model.cas():
        if ca.issuer is not None:
            lines.append(f'    {ca_id(ca.issuer)} -->|"issues"| {ca_id(ca.name)}')
    for status in STATUS_ORDER:
        lines.append(_mermaid_classdef(status, *STATUS_COLOURS[status]))
    for status in STATUS_ORDER:
        if statuses.get(status):
            lines.append(f"    class {','.join(statuses[status])} {status}")
    return "\n".join(lines) + "\n"


# --- Graphviz DOT ------------------------------------------------------------------------------

def dot_quote(text: str) -> str:
    """A DOT quoted string: backslashes and quotes escaped, newlines as DOT's centred line break."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")
    return f'"{text}"'


def _dot_attrs(**attrs: str) -> str:
    return "[" + ", ".join(f"{k}={dot_quote(v)}" for k, v in attrs.items()) + "]"


def _dot_node_attrs(action: Action, label: str, destructive: bool) -> str:
    fill, border, text = ACTION_COLOURS[action]
    attrs = {"label": label, "fillcolor": fill, "color": border, "fontcolor": text}
    if action is Action.BLOCKED:
        attrs["style"] = "rounded,filled,dashed"
    if destructive:
        attrs.update(color=DESTRUCTIVE_BORDER, penwidth="3")
    return _dot_attrs(**attrs)


def to_dot(c, plan: Plan) -> str:
    """The step DAG as Graphviz DOT: a cluster per CA, fill colour by action, a legend cluster."""
    _planned(c, plan)
    name = c.name
    graph_attrs = _dot_attrs(label=f"{name}: ceremony steps", labelloc="t", fontname="Helvetica", fontsize="14",
                             rankdir="TB", newrank="true", nodesep="0.3", ranksep="0.5")
    lines = [
        f"digraph {dot_quote(name)} {{",
        f"  graph {graph_attrs};",
        f"  node {_dot_attrs(shape='box', style='rounded,filled', fontname='Helvetica', fontsize='10')};",
        f"  edge {_dot_attrs(fontname='Helvetica', fontsize='8', color='#607d8b', fontcolor='#455a64')};",
    ]
    for group, members in _groups(plan):
        lines.append(f"  subgraph {dot_quote('cluster_ca_' + group)} {{")
        cluster = _dot_attrs(label=group, style="rounded", color="#90a4ae", fontname="Helvetica", fontsize="12")
        lines.append(f"    graph {cluster};")
        for s in members:
            lines.append(f"    {dot_quote(s.node.id)} "
                         f"{_dot_node_attrs(s.action, s.node.id + chr(10) + _action_label(s), is_destructive(s))};")
        lines.append("  }")
    for u, v, role in _edges(c, plan):
        lines.append(f"  {dot_quote(u)} -> {dot_quote(v)}" + (f" {_dot_attrs(label=role)}" if role else "") + ";")
    lines.append(f"  subgraph {dot_quote('cluster_legend')} {{")
    legend_attrs = _dot_attrs(label="Legend", style="rounded,dashed", color="#b0bec5", fontname="Helvetica",
                              fontsize="11")
    lines.append(f"    graph {legend_attrs};")
    legend = []
    for action in ACTION_ORDER:
        lid = f"legend:{action.value}"
        legend.append(lid)
        lines.append(f"    {dot_quote(lid)} {_dot_node_attrs(action, action.value, False)};")
    lines.append(f"    {dot_quote('legend:destructive')} "
                 f"{_dot_node_attrs(Action.REPLACE, 'destructive (red border)', True)};")
    legend.append("legend:destructive")
    for a, b in zip(legend, legend[1:]):
        lines.append(f"    {dot_quote(a)} -> {dot_quote(b)} {_dot_attrs(style='invis')};")
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- files -------------------------------------------------------------------------------------

def render_svg(dot_source: str, dot_program: str = "dot") -> bytes:
    """`dot -Tsvg` of a DOT source; raises RuntimeError with Graphviz's message when it fails."""
    r = subprocess.run([dot_program, "-Tsvg"], input=dot_source.encode("utf-8"), capture_output=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"dot -Tsvg failed ({r.returncode}): {r.stderr.decode('utf-8', 'replace').strip()}")
    return r.stdout


def write_graph(c, plan: Plan, out_dir: Path, stem: str) -> list[Path]:
    """Write <stem>.mmd and <stem>.dot (the step DAG), and <stem>.svg when `dot` is on PATH."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    mmd, dot = out_dir / f"{stem}.mmd", out_dir / f"{stem}.dot"
    mmd.write_text(to_mermaid(c, plan), encoding="utf-8")
    written.append(mmd)
    dot_source = to_dot(c, plan)
    dot.write_text(dot_source, encoding="utf-8")
    written.append(dot)
    program = shutil.which("dot")
    if program:
        svg = out_dir / f"{stem}.svg"
        svg.write_bytes(render_svg(dot_source, program))
        written.append(svg)
    return written


# --- docs/hierarchies.md -----------------------------------------------------------------------

def _fresh_plan(path: Path):
    """The ceremony at `path` and its plan against a workspace that does not exist (nothing applied)."""
    from pki_ceremony import app

    with tempfile.TemporaryDirectory() as tmp:
        c = app.open_ceremony(path, workspace=Path(tmp) / "workspace")
        p = app.plan(c)
        if c.workspace.exists():  # app.plan reads only; a created workspace would be a bug elsewhere
            raise RuntimeError(f"planning created the workspace {c.workspace.root}")
    return c, p


def _summary(c) -> str:
    model = c.model
    root = model.hierarchy.root
    backends: dict[str, list[str]] = {}
    for ca in model.hierarchy.subordinates:
        hsm_name = model.hsm_of(ca)
        backends.setdefault(f"hsm `{hsm_name}`" if hsm_name else "AWS Private CA", []).append(f"`{ca.name}`")
    hsm = model.hsms[root.hsm]
    where = ("a SoftHSM2 token kept in the workspace" if hsm.provider == "softhsm"
             else f"the PKCS#11 module `{hsm.module}`")
    parts = [f"`{model.metadata.name}`" + (f": {model.metadata.description}" if model.metadata.description else ".")]
    parts.append(f"{len(model.cas())} CAs in {len(c.graph)} steps. The root CA `{root.name}` keeps its "
                 f"{root.key.algorithm.value} key on hsm `{root.hsm}` ({where}).")
    for backend, names in backends.items():
        parts.append(f"{'Subordinate' if len(names) == 1 else 'Subordinates'} on {backend}: {', '.join(names)}.")
    return " ".join(parts)


def docs_page(examples_dir: Path = EXAMPLES_DIR) -> str:
    """docs/hierarchies.md: each example ceremony's hierarchy and step DAG, as a fresh plan sees them."""
    files = sorted(Path(examples_dir).glob("*.yaml"), key=lambda p: (p.name != "local.yaml", p.name))  # quick one first
    if not files:
        raise FileNotFoundError(f"no example ceremonies (*.yaml) in {examples_dir}")
    out = [
        "# Example hierarchies",
        "",
        "<!-- Generated by `python -m pki_ceremony.graph_export --docs` from ceremonies/*.yaml; do not edit. -->",
        "",
        "Each example ceremony in [`ceremonies/`](../ceremonies) drawn twice: its CA hierarchy (issuer above "
        "subordinate, with key algorithm, backend and validity) and its step DAG (one box per CA, an arrow from "
        "a step to each step that consumes its output, labelled with the input role). Both are drawn from a "
        "fresh plan, before anything was applied, so every step is `create` and every CA `not started`.",
        "",
        "Step colours, by what `apply` would do with the step:",
        "",
        "| action | colour | meaning |",
        "| --- | --- | --- |",
        "| `create` | green | not started |",
        "| `resume` | blue | an interrupted attempt recorded its intent: adopt what it made, or finish it |",
        "| `replace` | orange | asked for with `--replace`, or below a replaced step: made anew |",
        "| `done` | grey | finished, and its inputs have not changed |",
        "| `drifted` | yellow | finished, but its inputs changed since |",
        "| `blocked` | purple, dashed border | waits on a drifted step, or on a base ceremony's unfinished step, or is held by an interlock |",
        "",
        "A red border marks a destructive step that has something to do. CAs are green when all their steps "
        "are done, blue when some are (or are to be made anew), yellow when one drifted, and white when none "
        "started.",
        "",
        "This page is generated from the ceremony files: after changing one, run "
        "`python -m pki_ceremony.graph_export --docs`.",
    ]
    for path in files:
        c, p = _fresh_plan(path)
        rel = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name
        out += [
            "",
            f"## {path.name}",
            "",
            f"[`{rel}`](../{rel}) — {_summary(c)}",
            "",
            "### CA hierarchy",
            "",
            "```mermaid",
            hierarchy_mermaid(c, p).rstrip("\n"),
            "```",
            "",
            "### Step DAG",
            "",
            "```mermaid",
            to_mermaid(c, p).rstrip("\n"),
            "```",
        ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pki_ceremony.graph_export",
                                 description="Regenerate docs/hierarchies.md from the example ceremonies.")
    ap.add_argument("--docs", action="store_true", help="write docs/hierarchies.md")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if the page is stale")
    ap.add_argument("--output", type=Path, default=DOCS_OUTPUT, help="the page (default: docs/hierarchies.md)")
    args = ap.parse_args(argv)
    if not (args.docs or args.check):
        ap.print_usage(sys.stderr)
        print("give --docs (write the page) or --check (compare it)", file=sys.stderr)
        return 2
    text = docs_page()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current == text:
            return 0
        print(f"out of date: {args.output} (run python -m pki_ceremony.graph_export --docs)")
        return 1
    if current == text:
        print(f"up to date: {args.output}")
        return 0
    if not args.output.parent.is_dir():
        print(f"no directory {args.output.parent}: run this from a source checkout, or pass --output PATH",
              file=sys.stderr)
        return 2
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
