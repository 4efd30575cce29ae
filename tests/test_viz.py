"""Graph dumps (tinygrad_rnn.viz): clusters per time step, op multisets per step, styles, naming,
determinism, big graphs, rendering with the real Graphviz, gradient labels and gradient flow."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import viz
from tinygrad_rnn.nn import GRU, LSTM, RNN

# Per-step op multisets written down from the cell equations in the docstring of
# tinygrad_rnn/nn/cells.py (each step's slice gx_t of the hoisted input projection comes from one
# unbind outside the steps; chunk is one op whose outputs are counted one per gate block):
#   RNN:  h' = tanh(gx + h W_hhᵀ)                                  -> addmm, tanh
#   LSTM: gates = gx + h W_hhᵀ; i, f, g, o = chunk(gates)
#         c' = σ(f)c + σ(i)tanh(g); h' = σ(o)tanh(c')               -> addmm, add, chunk×4,
#                                                                     sigmoid×3, tanh×2, mul×3
#   GRU:  gh = h W_hhᵀ + b_hh; chunk gx and gh into 3 each; r, z = σ(x + h);
#         n = tanh(xn + r hn); h' = n + z (h - n)                   -> addmm, add×4, chunk×6,
#                                                                     sigmoid×2, mul×2, tanh, sub
# (addmm(c, a, b) = c + a @ b is one op, as in PyTorch.)
STEP_OPS = {
    "rnn": {"addmm": 1, "tanh": 1},
    "lstm": {"addmm": 1, "add": 1, "chunk": 4, "sigmoid": 3, "tanh": 2, "mul": 3},
    "gru": {"addmm": 1, "add": 4, "chunk": 6, "sigmoid": 2, "mul": 2, "tanh": 1, "sub": 1},
}
LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}

NODE = re.compile(r"^\t+([ns]\d+) \[(.*)\]$", re.M)
EDGE = re.compile(r"^\t+(\w+) -> (\w+)(?: \[(.*)\])?$", re.M)
ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s\]]+)')
CLUSTER_LABEL = re.compile(r"^\t+graph \[.*?\blabel=(\"[^\"]*\"|\S+)", re.M)


def attrs(text: str | None) -> dict[str, str]:
    return {k: v.strip('"') for k, v in ATTR.findall(text or "")}


def nodes(source: str) -> dict[str, dict[str, str]]:
    return {node_id: attrs(rest) for node_id, rest in NODE.findall(source)}


def edges(source: str) -> list[tuple[str, str, dict[str, str]]]:
    return [(a, b, attrs(rest)) for a, b, rest in EDGE.findall(source)]


def cluster_labels(source: str) -> list[str]:
    return [label.strip('"') for label in CLUSTER_LABEL.findall(source)]


def layer_output(kind: str, steps: int, input_size: int = 2, hidden: int = 3, batch: int = 1,
                 seed: int = 0, **kwargs):
    tg.manual_seed(seed)
    layer = LAYERS[kind](input_size, hidden, **kwargs)
    x = np.random.default_rng(seed).standard_normal((steps, batch, input_size)).astype(np.float32)
    output, state = layer(tg.Tensor(x))
    return layer, output, state


def node_of(source: str, label_head: str) -> str:
    """The id of the one node whose label starts with ``label_head``."""
    found = [n for n, a in nodes(source).items() if a.get("label", "").split("\\n")[0] == label_head]
    assert len(found) == 1, (label_head, found)
    return found[0]


# ----- clusters and op multisets per time step --------------------------------------------------
@pytest.mark.parametrize("kind, kwargs, layers, directions", [
    ("lstm", {}, 1, ("fwd",)),
    ("lstm", {"bidirectional": True}, 1, ("fwd", "bwd")),
    ("lstm", {"num_layers": 2}, 2, ("fwd",)),
    ("lstm", {"num_layers": 2, "bidirectional": True}, 2, ("fwd", "bwd")),
    ("gru", {"bidirectional": True}, 1, ("fwd", "bwd")),
    ("rnn", {"num_layers": 2}, 2, ("fwd",)),
])
def test_one_cluster_per_step_layer_and_direction(kind, kwargs, layers, directions):
    steps = 4
    _, output, state = layer_output(kind, steps, **kwargs)
    roots = (output, state)
    expected = {f"{kind}/l{k}/{d}": steps for k in range(layers) for d in directions}
    assert viz.graph_stats(*roots)["steps"] == expected

    labels = cluster_labels(viz.to_dot(*roots).source)
    step_labels = [lab for lab in labels if re.search(r"/t\d+$", lab)]
    assert sorted(step_labels) == sorted(f"{p}/t{t}" for p in expected for t in range(steps))
    for path in expected:  # the enclosing scopes are clusters too
        assert path in labels and path.rsplit("/", 1)[0] in labels


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_every_step_has_the_documented_op_multiset(kind):
    steps = 5
    _, output, _ = layer_output(kind, steps, bidirectional=True)
    scopes = viz.graph_stats(output)["scopes"]
    step_scopes = {path: ops for path, ops in scopes.items() if re.search(r"/t\d+$", path)}
    assert len(step_scopes) == 2 * steps
    for path, ops in step_scopes.items():
        assert ops == STEP_OPS[kind], path

    # The collapsed drawing states the same counts in its step labels, plus the step's slice of
    # the input projection (made by the one unbind outside the steps, used only by this step).
    step_nodes = [a["label"] for n, a in nodes(viz.to_dot(output, collapse_steps=True).source).items()
                  if n.startswith("s")]
    assert len(step_nodes) == 2 * steps
    for label in step_nodes:
        counts = dict((op, int(n)) for op, n in re.findall(r"(\w+)×(\d+)", label))
        assert counts == {**STEP_OPS[kind], "unbind": 1}, label


def test_relu_rnn_steps_use_relu():
    _, output, _ = layer_output("rnn", 3, nonlinearity="relu")
    for path, ops in viz.graph_stats(output)["scopes"].items():
        if re.search(r"/t\d+$", path):
            assert ops == {"addmm": 1, "relu": 1}


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_node_count_is_affine_in_the_number_of_steps(kind):
    counts = {}
    for steps in (1, 2, 10, 100):
        _, output, state = layer_output(kind, steps)
        stats = viz.graph_stats(output, state)
        counts[steps] = stats["nodes"]
        if steps == 10:  # the drawing has one node per tensor
            assert len(nodes(viz.to_dot(output, state).source)) == stats["nodes"]
    per_step = counts[2] - counts[1]
    base = counts[1] - per_step
    assert per_step == sum(STEP_OPS[kind].values()) + 1  # its slice gx_t; a step creates no leaves
    assert counts[10] == base + 10 * per_step
    assert counts[100] == base + 100 * per_step


# ----- edges, names and styles --------------------------------------------------------------------
def test_square_draws_two_edges_in_argument_order():
    x = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w = tg.Tensor(np.array([3.0, 4.0]), requires_grad=True)
    x.name, w.name = "x", "w"
    z = w - x * x
    source = viz.to_dot(z).source
    ids = {head: node_of(source, head) for head in ("x", "w", "mul", "sub")}
    assert sorted((a, b, e.get("label")) for a, b, e in edges(source)) == sorted([
        (ids["x"], ids["mul"], "0"), (ids["x"], ids["mul"], "1"),
        (ids["w"], ids["sub"], "0"), (ids["mul"], ids["sub"], "1"),
    ])
    # Ids follow the topological order: every edge goes from a lower to a higher number.
    assert all(int(a[1:]) < int(b[1:]) for a, b, _ in edges(source))


def test_parameters_are_named_from_params_or_from_name():
    layer, output, _ = layer_output("lstm", 2)
    params = dict(layer.named_parameters())
    source = viz.to_dot(output, params={f"lstm.{k}": v for k, v in params.items()}).source
    heads = [a["label"].split("\\n")[0] for a in nodes(source).values()]
    for name in params:
        assert heads.count(f"lstm.{name}") == 1
    # Without params, Module attributes set .name.
    heads = [a["label"].split("\\n")[0] for a in nodes(viz.to_dot(output).source).values()]
    assert sorted(h for h in heads if h.startswith(("weight", "bias"))) == sorted(params)

    a = tg.Tensor(np.ones(3), requires_grad=True)
    a.name = "alpha"
    twin = tg.Tensor(np.ones(3), requires_grad=True)  # equal data, different tensor
    b = tg.Tensor(np.ones(3), requires_grad=True)
    out = (a * b + twin).sum()
    heads = [v["label"].split("\\n")[0] for v in nodes(viz.to_dot(out, params={"beta": b}).source).values()]
    assert heads.count("alpha") == 1 and heads.count("beta") == 1 and heads.count("param") == 1


def test_the_four_kinds_of_node_have_distinct_styles_and_a_legend():
    w = tg.Tensor(np.ones((2, 2)), requires_grad=True)
    x = tg.Tensor(np.ones((3, 2)))
    out = (x @ w).tanh()
    source = viz.to_dot(out, params={"w": w}).source
    found = nodes(source)
    style = {n: (a["shape"], a["fillcolor"]) for n, a in found.items()}
    by_head = {a["label"].split("\\n")[0]: n for n, a in found.items()}
    kinds = {"parameter": style[by_head["w"]], "input": style[by_head["const"]],
             "intermediate": style[by_head["matmul"]], "output": style[by_head["tanh"]]}
    assert len(set(kinds.values())) == 4
    legend = {m.group(1): attrs(m.group(2)) for m in re.finditer(r"^\t+legend_(\w+) \[(.*)\]$", source, re.M)}
    for kind, look in kinds.items():
        assert (legend[kind]["shape"], legend[kind]["fillcolor"]) == look
    assert "(3, 2) float64" in found[by_head["const"]]["label"]


def test_constants_are_drawn_and_shapes_can_be_hidden():
    x = tg.Tensor(np.ones(3), requires_grad=True)
    out = (x * 2.0).sum()
    with_shapes, without = viz.to_dot(out).source, viz.to_dot(out, show_shapes=False).source
    assert len(nodes(with_shapes)) == 4  # x, the constant 2.0, mul, sum
    assert "float64" in with_shapes and "float64" not in without
    assert "rankdir=TB" in viz.to_dot(out, rankdir="TB").source


# ----- big graphs, determinism ------------------------------------------------------------------
def test_a_2000_step_graph_dumps_and_collapses_to_one_node_per_step():
    steps = 2000
    _, output, _ = layer_output("rnn", steps, input_size=1, hidden=2)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # Python's default: a recursive walk of 2000 steps would fail
    try:
        full = viz.to_dot(output).source
        stats = viz.graph_stats(output)
    finally:
        sys.setrecursionlimit(limit)
    assert stats["depth"] > steps
    assert len(nodes(full)) == stats["nodes"] > 3 * steps
    collapsed = viz.to_dot(output, collapse_steps=True).source
    drawn = nodes(collapsed)
    assert sum(n.startswith("s") for n in drawn) == steps
    assert len(drawn) <= steps + 20
    pairs = [(a, b) for a, b, _ in edges(collapsed)]
    assert len(pairs) == len(set(pairs))  # deduplicated
    assert all(a != b for a, b in pairs)
    with pytest.raises(ValueError, match="collapse_steps=True"):
        viz.to_dot(output, max_nodes=1000)
    assert len(nodes(viz.to_dot(output, collapse_steps=True, max_nodes=steps + 20).source)) == len(drawn)


def test_collapsing_keeps_roots_and_merges_parallel_edges():
    x = tg.Tensor(np.array([0.5, -1.0]), requires_grad=True)
    x.name = "x"
    with tg.scope("t0"):
        a = x.tanh() * x.sigmoid()
        a2 = a * 2.0
    with tg.scope("t1"):
        b = (a * a2).tanh()
    source = viz.to_dot(b, collapse_steps=True).source
    found = nodes(source)
    steps = {a_["label"].split(":")[0]: n for n, a_ in found.items() if n.startswith("s")}
    assert list(steps) == ["t0", "t1"]
    assert found[steps["t0"]]["label"] == "t0: tanh×1 sigmoid×1 mul×2 const×1"
    assert found[steps["t1"]]["label"] == "t1: mul×1"  # the root stays a node of its own
    b_id, x_id = node_of(source, "tanh"), node_of(source, "x")
    assert found[b_id]["shape"] == viz.STYLES["output"]["shape"]
    pairs = {(a_, b_): e.get("label") for a_, b_, e in edges(source)}
    assert pairs == {(x_id, steps["t0"]): "×2", (steps["t0"], steps["t1"]): "×2",
                     (steps["t1"], b_id): None}


def test_graph_stats_of_a_small_graph_and_a_deep_chain():
    x = tg.Tensor(np.ones(2), requires_grad=True)
    y = tg.Tensor(np.ones(2), requires_grad=True)
    z = x * y + x
    stats = viz.graph_stats(z)
    assert (stats["nodes"], stats["edges"], stats["depth"], stats["parameters"], stats["inputs"]) == (4, 4, 2, 2, 0)
    assert stats["ops"] == {"mul": 1, "add": 1} and stats["scopes"] == {"": {"mul": 1, "add": 1}}

    h = tg.Tensor(np.ones(2), requires_grad=True)
    for _ in range(3000):
        h = h.tanh()
    stats = viz.graph_stats(h)
    assert (stats["nodes"], stats["depth"]) == (3001, 3000)


def test_two_runs_give_byte_identical_dot(tmp_path):
    script = textwrap.dedent("""
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
        print(viz.to_dot(loss, params=params, show_grads=True).source)
        print(viz.to_dot(loss, h, c, collapse_steps=True, show_grads=True).source)
    """)
    runs = []
    for hash_seed in ("1", "2"):  # string hashing differs: set iteration order would show
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, env=env,
                                timeout=120, cwd=tmp_path)
        assert result.returncode == 0, result.stderr.decode()
        runs.append(result.stdout)
    assert b"lstm/l1/bwd/t3" in runs[0] and b"|grad|" in runs[0]
    assert runs[0] == runs[1]


# ----- rendering ---------------------------------------------------------------------------------
def require_dot() -> None:
    if shutil.which("dot") is not None:
        return
    if os.environ.get("TINYGRAD_RNN_ALLOW_NO_DOT") == "1":
        pytest.skip("Graphviz `dot` is not installed and TINYGRAD_RNN_ALLOW_NO_DOT=1 allows skipping")
    pytest.fail("Graphviz `dot` is not installed: install it (apt-get install graphviz) or set "
                "TINYGRAD_RNN_ALLOW_NO_DOT=1 to skip the rendering tests")


def test_render_svg_with_graphviz_has_a_titled_cluster_per_step(tmp_path):
    require_dot()
    _, output, _ = layer_output("lstm", 3)
    path = viz.render(viz.to_dot(output), tmp_path / "graph" / "lstm.svg")
    assert path == tmp_path / "graph" / "lstm.svg"
    assert (tmp_path / "graph" / "lstm.dot").read_text(encoding="utf-8") == viz.to_dot(output).source
    svg = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    titles = set()
    for group in svg.iter(f"{ns}g"):
        if group.get("class") == "cluster":
            titles.update(text.text for text in group.iter(f"{ns}text"))
    assert {"lstm", "lstm/l0", "lstm/l0/fwd", "lstm/l0/fwd/t0", "lstm/l0/fwd/t1",
            "lstm/l0/fwd/t2", "legend"} <= titles
    # Roots are accepted too, and the suffix is added when missing.
    assert viz.render(output, tmp_path / "plain", format="png").read_bytes()[:4] == b"\x89PNG"


def test_render_without_graphviz_writes_the_dot_and_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    _, output, _ = layer_output("gru", 2)
    with pytest.raises(viz.GraphvizNotFound) as info:
        viz.render(output, tmp_path / "gru.svg")
    assert isinstance(info.value, RuntimeError)
    message = str(info.value)
    assert "apt-get install graphviz" in message and "brew install graphviz" in message
    assert str(tmp_path / "gru.dot") in message
    assert (tmp_path / "gru.dot").read_text(encoding="utf-8") == viz.to_dot(output).source
    assert not (tmp_path / "gru.svg").exists()


def test_bad_arguments_are_rejected_with_clear_errors(tmp_path):
    x = tg.Tensor(np.ones(2), requires_grad=True)
    y = x.tanh()
    with pytest.raises(ValueError, match="rankdir"):
        viz.to_dot(y, rankdir="sideways")
    with pytest.raises(TypeError, match="roots must be Tensors"):
        viz.to_dot(y, "nope")
    with pytest.raises(ValueError, match="at least one root"):
        viz.to_dot()
    with pytest.raises(TypeError, match="params"):
        viz.to_dot(y, params=[1, 2])
    with pytest.raises(ValueError, match="max_nodes"):
        viz.to_dot(y, max_nodes=0)
    with pytest.raises(ValueError, match="format"):
        viz.render(y, tmp_path / "g", format="s v g")
    with pytest.raises(ValueError, match="no tensor in the graph has a gradient"):
        viz.to_dot(y, show_grads=True)
    y.sum().backward()  # frees the graph
    with pytest.raises(ValueError, match="retain_graph=True"):
        viz.to_dot(y)


# ----- gradients in the drawing --------------------------------------------------------------------
def hue(colour: str) -> float:
    return float(colour.split()[0])


def test_show_grads_labels_norms_and_colours_edges_by_the_gradient_they_carry():
    big = tg.Tensor(np.array([1.0, -2.0]), requires_grad=True)
    small = tg.Tensor(np.array([3.0, 0.5]), requires_grad=True)
    dead = tg.Tensor(np.array([1.0, 1.0]), requires_grad=True)
    loss = (big * 1000.0).sum() + (small * 0.001).sum() + (dead * 0.0).sum()
    assert viz.retain_grads(loss) == 8
    loss.backward(retain_graph=True)
    source = viz.to_dot(loss, params={"big": big, "small": small, "dead": dead}, show_grads=True).source
    found = nodes(source)
    for name, tensor in (("big", big), ("small", small)):
        label = found[node_of(source, name)]["label"]
        assert f"|grad| {np.linalg.norm(tensor.grad):.2e}" in label
    out_edges = {a: e for a, b, e in edges(source)}
    big_edge, small_edge = out_edges[node_of(source, "big")], out_edges[node_of(source, "small")]
    assert hue(big_edge["color"]) < 0.05 < 0.6 < hue(small_edge["color"])  # red vs blue
    assert float(big_edge["penwidth"]) > float(small_edge["penwidth"])
    assert out_edges[node_of(source, "dead")].get("style") == "dashed"
    for a, b, e in edges(source):  # every edge from a tensor that requires grad is coloured
        if not a.startswith("legend") and not found[a]["label"].startswith("const"):
            assert "color" in e, (a, b)


def test_show_grads_on_an_unrolled_lstm_shows_every_intermediate_norm():
    layer, output, _ = layer_output("lstm", 3)
    loss = output[-1].sum()
    count = viz.retain_grads(loss)
    assert count == sum(viz.graph_stats(loss)["ops"].values())
    loss.backward(retain_graph=True)
    source = viz.to_dot(loss, params=dict(layer.named_parameters()), show_grads=True).source
    labels = [a["label"] for a in nodes(source).values()]
    assert sum("|grad|" in lab for lab in labels) == count + 4  # every op result and parameter
    # Collapsed: each step states its largest gradient; the recurrent weight's use at t0
    # multiplies the zero initial state, so no gradient flows along that edge (grey, dashed).
    collapsed = viz.to_dot(loss, params=dict(layer.named_parameters()), show_grads=True,
                           collapse_steps=True).source
    steps = {a["label"].split(":")[0]: n for n, a in nodes(collapsed).items() if n.startswith("s")}
    assert sorted(steps) == ["t0", "t1", "t2"]
    assert all("max |grad|" in nodes(collapsed)[n]["label"] for n in steps.values())
    w_hh = node_of(collapsed, "weight_hh_l0")
    (w_hh_t,) = [b for a, b, _ in edges(collapsed) if a == w_hh]
    into = {b: e for a, b, e in edges(collapsed) if a == w_hh_t}
    assert into[steps["t0"]].get("style") == "dashed"
    assert "style" not in into[steps["t1"]] and "style" not in into[steps["t2"]]


# ----- gradient flow through time ---------------------------------------------------------------
def manual_rnn_grad_norms(x: np.ndarray, w_ih, w_hh, b) -> np.ndarray:
    """||dL/dh_t|| for L = sum(h_{T-1}) of h_t = tanh(x_t W_ihᵀ + h_{t-1} W_hhᵀ + b), by hand."""
    steps, batch = x.shape[0], x.shape[1]
    h = np.zeros((batch, w_hh.shape[0]))
    hs = []
    for t in range(steps):
        h = np.tanh(x[t] @ w_ih.T + h @ w_hh.T + b)
        hs.append(h)
    grad = np.ones_like(hs[-1])
    norms = [np.linalg.norm(grad)]
    for t in range(steps - 1, 0, -1):
        grad = (grad * (1.0 - hs[t] ** 2)) @ w_hh
        norms.append(np.linalg.norm(grad))
    return np.array(norms[::-1])


def test_gradient_flow_matches_hand_written_bptt_and_vanishes_with_small_weights():
    steps, hidden = 20, 6
    tg.manual_seed(1)
    rnn = RNN(3, hidden).double()
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((hidden, hidden)))
    rnn.weight_hh_l0.data = 0.5 * q  # spectral norm 0.5: each step back at least halves the gradient
    x = rng.standard_normal((steps, 4, 3))
    norms = viz.gradient_flow(rnn, x)
    assert norms.shape == (steps,)
    expected = manual_rnn_grad_norms(x, rnn.weight_ih_l0.data, rnn.weight_hh_l0.data,
                                     rnn.bias_ih_l0.data + rnn.bias_hh_l0.data)
    np.testing.assert_allclose(norms, expected, rtol=1e-10)
    assert np.all(norms[:-1] <= 0.5 * norms[1:] * (1 + 1e-9))
    assert norms[0] < 1e-5 * norms[-1]


def test_gradient_flow_for_lstm_gru_batch_first_and_bidirectional():
    x = np.random.default_rng(2).standard_normal((2, 7, 3)).astype(np.float32)  # (N, T, I)
    tg.manual_seed(2)
    for layer in (LSTM(3, 4, batch_first=True), GRU(3, 4, batch_first=True, num_layers=2)):
        norms = viz.gradient_flow(layer, x)
        assert norms.shape == (7,) and np.all(np.isfinite(norms)) and norms[-1] > 0
    # Bidirectional: with the loss on the last step, the reverse direction's states before it
    # get no gradient, so the norms equal the forward direction's alone except at t = T-1.
    bi = LSTM(3, 4, batch_first=True, bidirectional=True)
    norms = viz.gradient_flow(bi, x)
    fwd_only = viz.gradient_flow(bi, x, loss_fn=lambda out: out[:, -1, :4].sum())
    np.testing.assert_allclose(norms[:-1], fwd_only[:-1], rtol=1e-5)
    assert norms[-1] > fwd_only[-1]


def test_gradient_flow_needs_a_recurrent_layer():
    def linear_like(x):
        return (tg.Tensor(np.ones((2, 2)), requires_grad=True) @ tg.Tensor(x)).tanh()

    with pytest.raises(TypeError, match="must be a recurrent layer"):
        viz.gradient_flow(linear_like, np.ones((2, 2)))
    with pytest.raises(TypeError, match="callable"):
        viz.gradient_flow(3, np.ones((2, 2)))
    states = [tg.Tensor(np.ones(2), requires_grad=True).tanh()]
    with pytest.raises(ValueError, match="retain_grad"):
        viz.step_grad_norms(states)


def test_plot_gradient_flow_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install tinygrad_rnn\[plot\]"):
        viz.plot_gradient_flow({"rnn": np.ones(3)}, tmp_path / "flow.png")
    with pytest.raises(ValueError, match="non-empty"):
        viz.plot_gradient_flow({}, tmp_path / "flow.png")


def test_plot_gradient_flow_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="the optional 'plot' extra (matplotlib) is not installed")
    path = viz.plot_gradient_flow({"RNN": np.array([1e-4, 1e-2, 1.0]), "LSTM": np.array([0.0, 0.5, 1.0])},
                                  tmp_path / "flow.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_gradient_flow_takes_the_states_from_the_layer_not_from_scope_names():
    """A user cell whose output is made in a nested scope (so no op sits directly in .../t<k>)
    and a model that runs in a scope of its own: the layer hands its states over as data."""
    from tinygrad_rnn import nn as nn_
    from tinygrad_rnn.tensor import scope

    class ScopedCell(nn_.Module):
        state_size, output_size = (3,), 3

        def __init__(self):
            super().__init__()
            self.lin = nn_.Linear(2 + 3, 3)

        def initial_state(self, batch, dtype=None):
            return (tg.zeros(batch, 3, dtype=dtype or np.float32),)

        def step(self, x, state):
            with scope("inner"):
                h = self.lin(tg.functional.cat([x, state[0]], axis=-1)).tanh()
            return h, (h,)

    class Model(nn_.Module):
        def __init__(self):
            super().__init__()
            self.rec = nn_.Recurrent(ScopedCell())

        def forward(self, x):
            with scope("model"):
                return self.rec(x)[0]
    tg.manual_seed(0)
    model = Model()
    x = np.random.default_rng(0).standard_normal((6, 2, 2)).astype(np.float32)
    norms = viz.gradient_flow(model, x)
    assert norms.shape == (6,) and norms[-1] > 0 and np.all(norms[:-1] > 0)
    assert model.rec.recorded_states is None and not model.rec.record_states
    with pytest.raises(TypeError, match="must be a recurrent layer"):
        viz.gradient_flow(lambda x: x, x)
