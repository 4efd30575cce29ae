"""The linear-in-T layout (viz.to_svg / viz.layout_unrolled), the HTML viewer's page, names that
teach, and importing without the graphviz package."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import viz
from tinygrad_rnn.nn import GRU, LSTM, RNN

SVG = "{http://www.w3.org/2000/svg}"
LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
# Per-step op counts, written from the cell equations in nn/cells.py (as in test_viz.py).
STEP_SIZE = {"rnn": 3, "lstm": 15, "gru": 18}


def unrolled(kind: str, steps: int, grads: bool = False, **kwargs):
    tg.manual_seed(0)
    layer = LAYERS[kind](2, 3, **kwargs)
    x = tg.Tensor(np.random.default_rng(0).standard_normal((steps, 1, 2)).astype(np.float32))
    out, _ = layer(x)
    loss = (out[-1] ** 2).sum()
    if grads:
        viz.retain_grads(loss)
        loss.backward(retain_graph=True)
    return layer, loss


def step_groups(svg_text: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg_text)
    return {g.get("data-scope"): g for g in root.iter(f"{SVG}g") if (g.get("class") or "") == "cluster step"}


def node_ids(element: ET.Element) -> set[str]:
    return {g.get("id") for g in element.iter(f"{SVG}g") if (g.get("class") or "").startswith("node")}


def dot_clusters(source: str) -> dict[str, set[str]]:
    """Cluster label -> ids of the nodes declared directly in it, from to_dot's text."""
    found: dict[str, set[str]] = {}
    stack: list[str] = []
    for line in source.splitlines():
        if line.strip().startswith("subgraph"):
            stack.append("")
        elif line.strip() == "}" and stack:
            stack.pop()
        elif stack and re.match(r"\s*graph \[", line):
            m = re.search(r'label=(?:"([^"]*)"|([^\s\]]+))', line)
            stack[-1] = m.group(1) if m.group(1) is not None else m.group(2)
        elif stack and (m := re.match(r"\s*(n\d+) \[", line)):
            found.setdefault(stack[-1], set()).add(m.group(1))
    return found


@pytest.mark.parametrize("kind, kwargs, lanes", [
    ("lstm", {}, ["lstm/l0/fwd"]),
    ("gru", {}, ["gru/l0/fwd"]),
    ("rnn", {}, ["rnn/l0/fwd"]),
    ("lstm", {"num_layers": 2, "bidirectional": True},
     ["lstm/l0/fwd", "lstm/l0/bwd", "lstm/l1/fwd", "lstm/l1/bwd"]),
])
def test_one_cluster_per_step_with_the_same_nodes_as_to_dot(kind, kwargs, lanes):
    steps = 5
    layer, loss = unrolled(kind, steps, **kwargs)
    svg = viz.to_svg(loss, params=dict(layer.named_parameters())).source
    groups = step_groups(svg)
    assert sorted(groups) == sorted(f"{lane}/t{t}" for lane in lanes for t in range(steps))
    clusters = dot_clusters(viz.to_dot(loss, params=dict(layer.named_parameters())).source)
    for scope, group in groups.items():
        assert group.find(f"{SVG}title").text == scope
        assert node_ids(group) == clusters[scope], scope
        assert len(node_ids(group)) == STEP_SIZE[kind]
    # Every node of to_dot is drawn exactly once, with the same id.
    all_dot = set(re.findall(r"^\s*(n\d+) \[", viz.to_dot(loss).source, re.M))
    assert node_ids(ET.fromstring(svg)) == all_dot


def edges_between_steps(svg: str) -> set[tuple[str, str]]:
    root = ET.fromstring(svg)
    owner = {}
    for scope, group in step_groups(svg).items():
        for n in node_ids(group):
            owner[n] = scope
    pairs = set()
    for path in root.iter(f"{SVG}path"):
        if path.get("class") == "edge":
            a, b = owner.get(path.get("data-src")), owner.get(path.get("data-dst"))
            if a and b and a != b:
                pairs.add((a, b))
    return pairs


@pytest.mark.parametrize("collapse", [False, True])
def test_edges_join_consecutive_steps_of_a_lane_only_in_the_model_direction(collapse):
    steps = 6
    layer, loss = unrolled("lstm", steps, bidirectional=True)
    svg = viz.to_svg(loss, collapse_steps=collapse).source
    if collapse:
        root = ET.fromstring(svg)
        owner = {g.get("id"): s for s, grp in step_groups(svg).items() for g in grp.iter(f"{SVG}g")
                 if (g.get("class") or "").startswith("node")}
        pairs = {(owner[p.get("data-src")], owner[p.get("data-dst")]) for p in root.iter(f"{SVG}path")
                 if p.get("class") == "edge" and p.get("data-src") in owner and p.get("data-dst") in owner}
    else:
        pairs = edges_between_steps(svg)
    expected = {(f"lstm/l0/fwd/t{t}", f"lstm/l0/fwd/t{t + 1}") for t in range(steps - 1)}
    expected |= {(f"lstm/l0/bwd/t{t + 1}", f"lstm/l0/bwd/t{t}") for t in range(steps - 1)}
    assert pairs == expected


def test_size_is_linear_in_the_number_of_steps():
    counts = {}
    for steps in (10, 20, 40):
        _, loss = unrolled("lstm", steps, grads=True)
        root = ET.fromstring(viz.to_svg(loss, show_grads=True).source)
        counts[steps] = (len(node_ids(root)), sum(p.get("class") == "edge" for p in root.iter(f"{SVG}path")))
    for k in (0, 1):
        per_step = (counts[20][k] - counts[10][k]) / 10
        assert counts[40][k] == counts[20][k] + 20 * per_step
    assert counts[20][0] - counts[10][0] == 10 * STEP_SIZE["lstm"]


def test_collapsed_steps_are_one_box_each_with_op_counts():
    _, loss = unrolled("gru", 30)
    svg = viz.to_svg(loss, collapse_steps=True).source
    groups = step_groups(svg)
    assert len(groups) == 30
    for scope, group in groups.items():
        (box,) = [g for g in group.iter(f"{SVG}g") if (g.get("class") or "") == "node step"]
        text = box.find(f"{SVG}title").text
        assert text.startswith(scope.rpartition("/")[2]) and "chunk×6" in text and "unbind×1" in text and "sigmoid×2" in text


def test_names_that_teach_gates_states_and_parameters():
    layer, loss = unrolled("lstm", 3)
    svg = viz.to_svg(loss, params={f"lstm.{k}": v for k, v in layer.named_parameters()}).source
    titles = [t.text.split("\n")[0] for t in ET.fromstring(svg).iter(f"{SVG}title")]
    for t in range(3):
        for gate in "ifgo":
            assert titles.count(f"{gate} = chunk") == 3
        assert f"h_{t} = mul" in titles and f"c_{t} = add" in titles
    for name, _ in layer.named_parameters():
        assert f"lstm.{name}" in titles
    layer, loss = unrolled("gru", 2)
    labels = viz.to_dot(loss).source
    for gate in "rzn":
        assert labels.count(f'"gx_{gate} = chunk') == 2 and labels.count(f'"gh_{gate} = chunk') == 2
    assert '"h_1 = add' in labels
    layer, loss = unrolled("rnn", 2)
    assert '"h_0 = tanh' in viz.to_dot(loss).source


def test_gradient_colours_and_grey_dashed_zero_edges():
    _, loss = unrolled("lstm", 3, grads=True)
    root = ET.fromstring(viz.to_svg(loss, show_grads=True).source)
    edges = [p for p in root.iter(f"{SVG}path") if p.get("class") == "edge"]
    colours = {p.get("stroke") for p in edges}
    assert len(colours) > 5
    assert any(p.get("stroke-dasharray") for p in edges)  # W_hh at t0 multiplies h = 0
    assert any("|grad|" in (t.text or "") for t in root.iter(f"{SVG}text"))


def test_two_processes_write_identical_svg_and_html(tmp_path):
    script = textwrap.dedent("""
        import sys
        import numpy as np
        import tinygrad_rnn as tg
        from tinygrad_rnn import viz
        from tinygrad_rnn.nn import LSTM
        tg.manual_seed(3)
        lstm = LSTM(2, 3, num_layers=2, bidirectional=True)
        x = tg.Tensor(np.random.default_rng(3).standard_normal((4, 2, 2)).astype(np.float32))
        out, (h, c) = lstm(x)
        loss = (out * out).sum() + h.sum()
        viz.retain_grads(loss)
        loss.backward(retain_graph=True)
        params = dict(lstm.named_parameters())
        sys.stdout.write(viz.to_svg(loss, params=params, show_grads=True).source)
        sys.stdout.write(viz.to_svg(loss, h, c, collapse_steps=True).source)
        sys.stdout.write(viz.to_html(loss, params=params).source)
    """)
    runs = []
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, env=env,
                                timeout=120, cwd=tmp_path)
        assert result.returncode == 0, result.stderr.decode()
        runs.append(result.stdout)
    assert b"lstm/l1/bwd/t3" in runs[0] and b"<!DOCTYPE html>" in runs[0]
    assert runs[0] == runs[1]


def test_html_page_is_self_contained_and_has_the_viewer_parts(tmp_path):
    layer, loss = unrolled("lstm", 4, grads=True)
    page = viz.to_html(loss, params=dict(layer.named_parameters()), title="t <&>")
    source = page.source
    assert "http://" not in source.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in source and "<script src" not in source and "<link" not in source
    assert "<title>t &lt;&amp;&gt;</title>" in source
    assert source.count('class="summary"') == 4 and 'class="strip-chart"' in source
    path = page.save(tmp_path / "viewer")
    assert path.name == "viewer.html" and path.read_text(encoding="utf-8") == source
    assert page._repr_html_().startswith("<iframe srcdoc=") and "<script>" not in page._repr_html_()
    # Without gradients: no strip chart, a hint instead.
    _, plain = unrolled("lstm", 2)
    assert "retain_grads" in viz.to_html(plain).source
    with pytest.raises(TypeError, match="title"):
        viz.to_html(plain, title=3)


def test_render_refuses_graphs_too_large_for_dot_and_names_the_scalable_layout(tmp_path):
    _, loss = unrolled("lstm", 60)
    collapsed = viz.to_dot(loss, collapse_steps=True)
    with pytest.raises(viz.GraphTooLargeForDot, match="to_svg") as info:
        viz.render(collapsed, tmp_path / "big.svg")
    assert isinstance(info.value, ValueError) and "60 collapsed steps" in str(info.value)
    assert (tmp_path / "big.dot").exists() and not (tmp_path / "big.svg").exists()
    _, loss = unrolled("lstm", 70)
    with pytest.raises(viz.GraphTooLargeForDot, match="nodes"):
        viz.render(viz.to_dot(loss), tmp_path / "full.svg")


def test_import_without_the_graphviz_package(tmp_path):
    script = textwrap.dedent("""
        import sys
        sys.modules["graphviz"] = None  # as if it were not installed
        import numpy as np
        import tinygrad_rnn as tg
        from tinygrad_rnn import viz
        x = tg.Tensor(np.ones(2), requires_grad=True)
        y = (x * x).sum()
        assert viz.graph_stats(y)["nodes"] == 3
        assert "<svg" in viz.to_svg(y).source
        try:
            viz.to_dot(y)
        except ImportError as error:
            print(error)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pip install graphviz" in result.stdout
