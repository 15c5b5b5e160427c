"""The pictures of a ceremony (pki_ceremony.graph_export): Mermaid and DOT of the step DAG and the hierarchy.

Every step and every edge of the DAG is drawn, Graphviz really renders the DOT, the colours follow
the plan (a fresh workspace against one where local.yaml was applied), labels are escaped, and
docs/hierarchies.md is what the generator renders.
"""
from __future__ import annotations

import copy
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ceremony_support import EXAMPLES, ROOT, make_ceremony_dir
from pki_ceremony import app, graph_export
from pki_ceremony.engine.plan import Action

LOCAL = EXAMPLES / "local.yaml"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))
HIERARCHY_FILES = [p for p in EXAMPLE_FILES if "kind: RootCeremony" not in p.read_text()]


def fresh(path: Path, tmp_path: Path):
    c = app.open_ceremony(path, workspace=tmp_path / "no-workspace")
    p = app.plan(c)
    assert not c.workspace.exists()
    return c, p


def require_dot() -> str:
    dot = shutil.which("dot")
    if dot is None:
        pytest.fail("Graphviz's 'dot' is not on PATH: apt-get install graphviz")
    return dot


def dot_svg(source: str) -> str:
    r = subprocess.run([require_dot(), "-Tsvg"], input=source, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"dot -Tsvg refused the DOT: {r.stderr}\n{source}"
    assert "<svg" in r.stdout
    return r.stdout


# --- parsing what we wrote, to check it independently of how ids are made ---------------------------------------

def mermaid_parts(text: str) -> dict:
    """Nodes (id -> label lines), subgraphs (id -> title), node -> subgraph, edges, classes of each node."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    nodes, subgraphs, parent, edges, classes = {}, {}, {}, [], {}
    current = None
    for line in lines[1:]:
        if m := re.fullmatch(r"    subgraph (\w+)\[\"([^\"]*)\"\]", line):
            assert current is None, "nested subgraph"
            current = m.group(1)
            subgraphs[current] = m.group(2)
        elif line == "    end":
            assert current is not None, "'end' without a subgraph"
            current = None
        elif m := re.fullmatch(r"\s+(\w+)\[\"([^\"]*)\"\]", line):
            nodes[m.group(1)] = m.group(2).split("<br/>")
            if current:
                parent[m.group(1)] = current
        elif m := re.fullmatch(r"    (\w+) -->\|\"([^\"]*)\"\| (\w+)", line):
            edges.append((m.group(1), m.group(3), m.group(2)))
        elif m := re.fullmatch(r"    classDef (\w+) (.+)", line):
            pass
        elif m := re.fullmatch(r"    class ([\w,]+) (\w+)", line):
            for n in m.group(1).split(","):
                classes.setdefault(n, []).append(m.group(2))
        else:
            raise AssertionError(f"unexpected Mermaid line: {line!r}")
    assert current is None, "subgraph never closed"
    for ident in [*nodes, *subgraphs]:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", ident) and ident.lower() != "end", ident
    assert len(set(nodes) | set(subgraphs)) == len(nodes) + len(subgraphs), "an id is used twice"
    return {"nodes": nodes, "subgraphs": subgraphs, "parent": parent, "edges": edges, "classes": classes}


def dot_attrs(text: str | None) -> dict[str, str]:
    return {k: v.replace('\\"', '"') for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', text or "")}


def dot_parts(text: str) -> dict:
    nodes, edges, clusters, current = {}, [], {}, None
    for line in text.splitlines():
        if m := re.fullmatch(r'  subgraph "(cluster_[^"]+)" \{', line):
            current = m.group(1)
            clusters[current] = []
        elif line == "  }":
            current = None
        elif m := re.fullmatch(r'\s+"([^"]+)" -> "([^"]+)"(?: \[(.*)\])?;', line):
            edges.append((m.group(1), m.group(2), dot_attrs(m.group(3))))
        elif m := re.fullmatch(r'\s+"([^"]+)" \[(.*)\];', line):
            nodes[m.group(1)] = dot_attrs(m.group(2))
            if current:
                clusters[current].append(m.group(1))
    return {"nodes": nodes, "edges": edges, "clusters": clusters}


def graph_edges(c) -> set[tuple[str, str, str]]:
    return {(u, v, d["role"]) for u, v, d in c.graph.g.edges(data=True)}


def mermaid_steps(parts: dict) -> dict[str, str]:
    """step id -> Mermaid node id, from the labels' first lines."""
    return {label[0]: nid for nid, label in parts["nodes"].items()}


# --- every step and every edge ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_mermaid_has_every_step_and_every_edge(path, tmp_path):
    c, p = fresh(path, tmp_path)
    parts = mermaid_parts(graph_export.to_mermaid(c, p))
    ids = mermaid_steps(parts)
    assert set(ids) == set(c.graph.g.nodes)
    for s in p.steps:
        want = s.action.value + (", destructive" if s.destructive else "")
        assert parts["nodes"][ids[s.node.id]] == [s.node.id, want]
        assert parts["subgraphs"][parts["parent"][ids[s.node.id]]] == s.node.group, "a step outside its CA's box"
    assert set(parts["subgraphs"].values()) == {n.group for n in c.graph.order()}
    back = {nid: sid for sid, nid in ids.items()}
    drawn = [(back[u], back[v], role) for u, v, role in parts["edges"]]
    assert len(drawn) == len(set(drawn)) == c.graph.g.number_of_edges()
    assert set(drawn) == graph_edges(c)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_dot_has_every_step_and_every_edge_and_renders(path, tmp_path):
    c, p = fresh(path, tmp_path)
    source = graph_export.to_dot(c, p)
    parts = dot_parts(source)
    steps = {n: a for n, a in parts["nodes"].items() if not n.startswith("legend:")}
    assert set(steps) == set(c.graph.g.nodes)
    for s in p.steps:
        assert steps[s.node.id]["label"] == f"{s.node.id}\\n{s.action.value}" + (", destructive" if s.destructive else "")
        assert s.node.id in parts["clusters"][f"cluster_ca_{s.node.group}"]
    legend = parts["clusters"]["cluster_legend"]
    assert {f"legend:{a.value}" for a in Action} <= set(legend)
    drawn = [(u, v, a["label"]) for u, v, a in parts["edges"] if a.get("style") != "invis"]
    assert len(drawn) == len(set(drawn)) == c.graph.g.number_of_edges()
    assert set(drawn) == graph_edges(c)
    texts = {html.unescape(t) for t in re.findall(r">([^<>]*)</text>", dot_svg(source))}
    assert set(c.graph.g.nodes) <= texts


def test_write_graph_writes_mermaid_dot_and_svg(tmp_path):
    require_dot()
    c, p = fresh(LOCAL, tmp_path)
    written = graph_export.write_graph(c, p, tmp_path / "out" / "deep", "local")
    assert [w.name for w in written] == ["local.mmd", "local.dot", "local.svg"]
    assert written[0].read_text() == graph_export.to_mermaid(c, p)
    assert written[1].read_text() == graph_export.to_dot(c, p)
    assert written[2].read_text().lstrip().startswith(("<?xml", "<svg")) and "root/key" in written[2].read_text()


def test_write_graph_without_graphviz_writes_no_svg(tmp_path, monkeypatch):
    c, p = fresh(LOCAL, tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    written = graph_export.write_graph(c, p, tmp_path, "g")
    assert [w.name for w in written] == ["g.mmd", "g.dot"]
    assert not (tmp_path / "g.svg").exists()


def test_a_plan_of_another_ceremony_is_refused(tmp_path):
    c, _ = fresh(LOCAL, tmp_path)
    _, other = fresh(EXAMPLES / "hybrid-cloudhsm-pca.yaml", tmp_path)
    with pytest.raises(ValueError, match="not the plan of this ceremony"):
        graph_export.to_mermaid(c, other)


# --- colours follow the plan ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def applied(tmp_path_factory):
    """local.yaml applied for real (SoftHSM2 tokens in the workspace), by the CLI, with random PINs."""
    cd = make_ceremony_dir(tmp_path_factory.mktemp("applied"), "local.yaml")
    assert set(cd.pins) == {"ROOT_HSM_PIN", "ONLINE_HSM_PIN"}
    r = cd.apply()
    assert r.returncode == 0, r.stdout + r.stderr
    return app.open_ceremony(cd.file, cd.workspace)


def step_classes(c, p) -> dict[str, list[str]]:
    parts = mermaid_parts(graph_export.to_mermaid(c, p))
    return {sid: parts["classes"].get(nid, []) for sid, nid in mermaid_steps(parts).items()}


def test_colours_change_with_the_action(applied, tmp_path):
    fresh_c, fresh_p = fresh(LOCAL, tmp_path)
    done_p = app.plan(applied)
    assert {s.action for s in fresh_p.steps} == {Action.CREATE}
    assert {s.action for s in done_p.steps} == {Action.DONE}

    assert set(map(tuple, step_classes(fresh_c, fresh_p).values())) == {("create",)}
    assert set(map(tuple, step_classes(applied, done_p).values())) == {("done",)}

    fill = {a: graph_export.ACTION_COLOURS[a][0] for a in Action}
    assert fill[Action.CREATE] != fill[Action.DONE]
    for plan, c, action in ((fresh_p, fresh_c, Action.CREATE), (done_p, applied, Action.DONE)):
        nodes = dot_parts(graph_export.to_dot(c, plan))["nodes"]
        for sid in c.graph.g.nodes:
            assert nodes[sid]["fillcolor"] == fill[action], sid
            assert nodes[sid]["label"].endswith(action.value)

    # The hierarchy: every CA complete once applied, none started before.
    h_fresh = graph_export.hierarchy_mermaid(fresh_c, fresh_p)
    h_done = graph_export.hierarchy_mermaid(applied, done_p)
    names = [ca.name for ca in applied.model.cas()]
    assert re.search(r"^    class ([\w,]+) not_started$", h_fresh, re.M).group(1).count(",") == len(names) - 1
    assert re.search(r"^    class ([\w,]+) complete$", h_done, re.M).group(1).count(",") == len(names) - 1
    assert "not_started" not in h_done.split("classDef")[0] and "valid until 20" in h_done


def test_replaced_steps_are_orange_with_a_red_border(applied):
    p = app.plan(applied, replace=("issuing-b/key",))
    classes = step_classes(applied, p)
    replaced = {sid for sid in applied.graph.g.nodes if sid.startswith("issuing-b/")}
    for sid, cls in classes.items():
        assert cls == (["replace", "destructive"] if sid in replaced else ["done"]), sid
    nodes = dot_parts(graph_export.to_dot(applied, p))["nodes"]
    for sid in replaced:
        assert nodes[sid]["fillcolor"] == graph_export.ACTION_COLOURS[Action.REPLACE][0]
        assert nodes[sid]["color"] == graph_export.DESTRUCTIVE_BORDER and nodes[sid]["penwidth"] == "3"
    assert "penwidth" not in nodes["issuing-a/key"]
    dot_svg(graph_export.to_dot(applied, p))
    h = graph_export.hierarchy_mermaid(applied, p)
    assert re.search(r"^    class ca_issuing_b partial$", h, re.M)


def test_every_action_has_its_own_class_and_fill(tmp_path):
    c, p = fresh(LOCAL, tmp_path)
    p = copy.copy(p)
    p.steps = [copy.copy(s) for s in p.steps]
    actions = list(Action)
    for i, s in enumerate(p.steps):
        s.action = actions[i % len(actions)]
        s.destructive = i % 4 == 0
    classes = step_classes(c, p)
    nodes = dot_parts(graph_export.to_dot(c, p))["nodes"]
    mermaid = graph_export.to_mermaid(c, p)
    for a in Action:
        assert f"    classDef {a.value} " in mermaid
    assert len({graph_export.ACTION_COLOURS[a][0] for a in Action}) == len(Action)
    for s in p.steps:
        marked = s.destructive and s.action is not Action.DONE
        assert classes[s.node.id] == [s.action.value] + (["destructive"] if marked else []), s.node.id
        assert nodes[s.node.id]["fillcolor"] == graph_export.ACTION_COLOURS[s.action][0]
        assert (nodes[s.node.id]["color"] == graph_export.DESTRUCTIVE_BORDER) == marked
    dot_svg(graph_export.to_dot(c, p))


# --- the hierarchy, and labels that need escaping ---------------------------------------------------------------

@pytest.mark.parametrize("path", HIERARCHY_FILES, ids=[p.name for p in HIERARCHY_FILES])
def test_hierarchy_has_every_ca_with_its_facts(path, tmp_path):
    c, p = fresh(path, tmp_path)
    parts = mermaid_parts(graph_export.hierarchy_mermaid(c, p))
    by_name = {label[0]: (nid, label) for nid, label in parts["nodes"].items()}
    model = c.model
    assert set(by_name) == {ca.name for ca in model.cas()}
    for ca in model.cas():
        label = by_name[ca.name][1]
        backend = f"hsm {model.hsm_of(ca)}" if model.hsm_of(ca) else "AWS Private CA"
        assert label[2] == f"{ca.key.algorithm.value}, {backend}"
        assert label[3] == f"validity {ca.validity.describe()}" and label[4] == "not started"
    edges = {(u, v) for u, v, _ in parts["edges"]}
    ident = {name: nid for name, (nid, _) in by_name.items()}
    assert edges == {(ident[ca.issuer], ident[ca.name]) for ca in model.hierarchy.subordinates}
    if model.uses_aws():
        assert any("AWS Private CA" in "".join(label) for _, label in by_name.values())


def test_labels_are_escaped(tmp_path):
    doc = yaml.safe_load(LOCAL.read_text())
    doc["hierarchy"]["root"]["subject"]["common_name"] = 'Ex "Corp" [T] (G1) <b>x</b> | & #1; {y} end'
    weird = tmp_path / "weird.yaml"
    weird.write_text(yaml.safe_dump(doc))
    c, p = fresh(weird, tmp_path)
    h = graph_export.hierarchy_mermaid(c, p)
    parts = mermaid_parts(h)  # would fail on an unescaped quote or bracket
    label = parts["nodes"]["ca_root"][1]
    assert not re.search(r'["\[\](){}<>|]', label)
    assert "#quot;Corp#quot;" in label and "#91;T#93;" in label
    assert graph_export.mermaid_text('a"b[c]') == "a#quot;b#91;c#93;"
    quoted = graph_export.dot_quote('a "b" \\ c\nd')
    assert quoted == '"a \\"b\\" \\\\ c\\nd"'
    dot_svg(f"digraph {{ {quoted} [label={quoted}]; {quoted} -> \"x\"; }}")


# --- docs/hierarchies.md ----------------------------------------------------------------------------------------

def test_docs_page_is_in_sync():
    page = ROOT / "docs" / "hierarchies.md"
    assert page.exists(), "docs/hierarchies.md is missing: run python -m pki_ceremony.graph_export --docs"
    assert graph_export.docs_page() == page.read_text(encoding="utf-8"), (
        "docs/hierarchies.md is out of date: run python -m pki_ceremony.graph_export --docs")
    r = subprocess.run([sys.executable, "-m", "pki_ceremony.graph_export", "--check"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_docs_page_shows_each_example(tmp_path):
    text = (ROOT / "docs" / "hierarchies.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```mermaid\n(.*?)^```$", text, flags=re.S | re.M)
    assert len(blocks) == 2 * len(EXAMPLE_FILES)
    for path in EXAMPLE_FILES:
        c, p = fresh(path, tmp_path)
        assert f"## {path.name}" in text
        assert graph_export.hierarchy_mermaid(c, p) in [b for b in blocks]
        assert graph_export.to_mermaid(c, p) in [b for b in blocks]
    assert str(tmp_path) not in text and "/tmp" not in text  # no temporary workspace path leaks in


def test_docs_check_fails_on_a_stale_page(tmp_path):
    stale = tmp_path / "hierarchies.md"
    stale.write_text("# stale\n")
    r = subprocess.run([sys.executable, "-m", "pki_ceremony.graph_export", "--check", "--output", str(stale)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "out of date" in r.stdout
    assert stale.read_text() == "# stale\n"
    r = subprocess.run([sys.executable, "-m", "pki_ceremony.graph_export", "--docs", "--output", str(stale)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and stale.read_text() == graph_export.docs_page()
