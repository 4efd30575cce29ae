"""tinygrad_rnn.compile: a replayed step leaves exactly what eager execution leaves."""
import sys
import tracemalloc

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn, optim
from tinygrad_rnn.compile import CompileError


def make_model(kind, dtype, **layer_kwargs):
    tg.manual_seed(0)
    layer = getattr(nn, kind)(3, 5, **layer_kwargs).to(dtype)
    width = 5 * (2 if layer_kwargs.get("bidirectional") else 1)
    head = nn.Linear(width, 4).to(dtype)
    params = list(layer.parameters()) + list(head.parameters())
    return layer, head, params, optim.Adam(params, lr=0.05)


def batches(dtype, shapes, seed=1):
    rng = np.random.default_rng(seed)
    out = []
    for T, N in shapes:
        x = rng.standard_normal((T, N, 3)).astype(dtype)
        y = rng.integers(0, 4, (T, N))
        lengths = rng.integers(1, T + 1, N)
        lengths[0] = T
        out.append((x, y, lengths))
    return out


def run(kind, dtype, compiled, shapes, use_lengths, **layer_kwargs):
    """Losses, parameters, gradients and Adam state after a few training steps."""
    layer, head, params, opt = make_model(kind, dtype, **layer_kwargs)

    def train_step(x, y, lengths):
        opt.zero_grad()
        out, _ = layer(x, lengths=lengths if use_lengths else None)
        loss = F.cross_entropy(head(out), y)
        loss.backward()
        optim.clip_grad_norm_(params, 0.5)
        opt.step()
        return loss

    step = tg.compile(train_step) if compiled else train_step
    tg.manual_seed(7)  # the dropout masks
    losses = [float(step(x, y, lengths).item()) for x, y, lengths in batches(dtype, shapes)]
    state = opt.state_dict()["state"]
    moments = [state[i]["exp_avg_sq"].copy() for i in sorted(state)]
    return losses, [p.data.copy() for p in params], [p.grad.copy() for p in params], moments, step


CONFIGS = [
    ("LSTM", {}, False),
    ("LSTM", {"num_layers": 2, "bidirectional": True, "dropout": 0.3}, True),
    ("GRU", {"bidirectional": True}, True),
    ("GRU", {"num_layers": 2, "dropout": 0.5}, False),
    ("RNN", {"num_layers": 2, "nonlinearity": "relu"}, True),
    ("RNN", {"batch_first": False, "bias": False}, False),
]
# Four calls of one shape, then a new shape (traced again), then the first shape again (replayed).
SHAPES = [(6, 2)] * 4 + [(4, 3), (4, 3), (6, 2)]


@pytest.mark.parametrize("kind, kwargs, use_lengths", CONFIGS)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_compiled_training_equals_eager(kind, kwargs, use_lengths, dtype, rtol):
    eager = run(kind, dtype, False, SHAPES, use_lengths, **kwargs)
    compiled = run(kind, dtype, True, SHAPES, use_lengths, **kwargs)
    step = compiled[-1]
    assert step.traces == 2 and step.replays == len(SHAPES) - 2
    np.testing.assert_allclose(compiled[0], eager[0], rtol=rtol)
    for what in (1, 2, 3):  # parameters, their .grad, Adam's second moments
        for got, want in zip(compiled[what], eager[what]):
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


def test_replay_does_not_run_the_python_function_and_returns_plain_tensors():
    calls = []
    w = tg.Tensor(np.ones(3), requires_grad=True)

    @tg.compile
    def step(x):
        calls.append(1)
        loss = (w * x).sum()
        loss.backward()
        return loss, x * 2.0
    for k in range(3):
        w.grad = None
        loss, doubled = step(np.full(3, float(k)))
        assert float(loss) == 3.0 * k
        np.testing.assert_array_equal(doubled.data, np.full(3, 2.0 * k))
        np.testing.assert_array_equal(w.grad, np.full(3, float(k)))
        if k:  # replays return tensors without a graph (the first, eager call its own result)
            assert not loss.requires_grad and loss.grad_fn is None
    assert len(calls) == 1 and step.replays == 2


def test_gradients_accumulate_without_zero_grad_as_in_eager():
    w = tg.Tensor(np.array([2.0]), requires_grad=True)

    @tg.compile
    def step(x):
        (w * x * x).sum().backward()
    for _ in range(3):
        step(np.array([3.0]))
    np.testing.assert_array_equal(w.grad, [27.0])  # 3 x 9


def test_an_input_that_requires_grad_gets_its_gradient_on_replay():
    @tg.compile
    def step(x):
        (x * x).sum().backward()
    for value in (1.0, 2.0, 5.0):
        x = tg.Tensor(np.array([value, -value]), requires_grad=True)
        step(x)
        np.testing.assert_array_equal(x.grad, [2 * value, -2 * value])


def test_zero_d_gradients_are_arrays_on_replay():
    w = tg.Tensor(np.array(1.5), requires_grad=True)

    @tg.compile
    def step(x):
        w.grad = None
        ((w * x) * (w * x)).backward()
    for _ in range(2):
        w.grad = None
        step(np.array(2.0))
        assert type(w.grad) is np.ndarray and w.grad.shape == ()
        assert float(w.grad) == pytest.approx(2 * 1.5 * 4)


def test_dropout_draws_fresh_masks_on_every_replay_like_eager():
    def masks(compiled):
        tg.manual_seed(3)
        x = tg.Tensor(np.ones((4, 50)))

        def f(x):
            with tg.no_grad():
                return F.dropout(x, 0.5)
        g = tg.compile(f) if compiled else f
        return [g(x).data.copy() for _ in range(4)]
    eager, compiled = masks(False), masks(True)
    for a, b in zip(eager, compiled):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(compiled[1], compiled[2])


def test_module_training_flag_is_part_of_the_signature():
    tg.manual_seed(0)
    layer = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)

    @tg.compile
    def infer(x):
        with tg.no_grad():
            return layer(x)[0]
    layer.eval()
    first = infer(x).data
    layer.train()
    infer(x)
    layer.eval()
    np.testing.assert_array_equal(infer(x).data, first)  # eval mode again: no dropout
    assert infer.traces == 2


def test_a_new_grad_mode_or_argument_value_traces_again():
    w = tg.Tensor(np.ones(2), requires_grad=True)

    @tg.compile
    def f(x, scale):
        return (w * x * scale).detach()
    f(np.ones(2), 2.0)
    f(np.ones(2), 2.0)
    f(np.ones(2), 3.0)
    with tg.no_grad():
        f(np.ones(2), 3.0)
    assert f.traces == 3 and f.replays == 1
    np.testing.assert_array_equal(f(np.ones(2), 3.0).data, [3.0, 3.0])


@pytest.mark.parametrize("read", [lambda t: t.item(), lambda t: float(t), lambda t: bool(t > 0),
                                  lambda t: np.asarray(t), lambda t: t.numpy(),
                                  lambda t: tg.Tensor(t)])
def test_reading_a_value_into_python_inside_the_trace_is_an_error(read):
    @tg.compile
    def f(x):
        s = x.sum()
        read(s)
        return s
    with pytest.raises(CompileError, match="frozen at the first call"):
        f(np.ones(3))


def test_check_mode_names_the_first_value_that_numpy_code_froze():
    w = tg.Tensor(np.ones(3), requires_grad=True)

    def f(x):
        doubled = tg.Tensor(x.data * 2.0)   # NumPy on .data: a constant to the trace
        loss = (w * doubled).tanh().sum()
        loss.backward()
        return loss
    checked = tg.compile(f, check=True)
    checked(np.ones(3))
    with pytest.raises(CompileError, match=r"first value that differs .* result of mul"):
        checked(np.full(3, 2.0))


def test_check_mode_passes_and_keeps_the_eager_state_for_a_static_function():
    layer, head, params, opt = make_model("GRU", np.float64)

    @tg.compile(check=True)
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(head(layer(x)[0]), y)
        loss.backward()
        opt.step()
        return loss
    for x, y, _ in batches(np.float64, [(5, 2)] * 3):
        step(x, y)
    assert step.replays == 2


def test_returning_a_tensor_with_a_live_graph_or_a_number_is_an_error():
    w = tg.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(CompileError, match="still carries its graph"):
        tg.compile(lambda x: w * x)(np.ones(2))
    with pytest.raises(CompileError, match="returned a float"):
        tg.compile(lambda x: 1.5)(np.ones(2))


def test_a_graph_carried_in_from_the_previous_call_is_an_error():
    w = tg.Tensor(np.ones(2), requires_grad=True)
    carried = w * 2.0  # a hidden state that was not detached

    @tg.compile
    def f(x):
        loss = (carried * x).sum()
        loss.backward()
        return loss
    with pytest.raises(CompileError, match="before the compiled function was called"):
        f(np.ones(2))


def test_bad_arguments_are_rejected():
    with pytest.raises(TypeError, match="fn must be callable"):
        tg.compile(3)
    with pytest.raises(ValueError, match="check must be"):
        tg.compile(lambda x: x, check="always")
    with pytest.raises(TypeError, match="argument #0 is a object"):
        tg.compile(lambda x: x)(object())


def test_liveness_frees_what_backward_does_not_need():
    """A replay of an LSTM step holds less memory at its peak than eager execution, which keeps
    every intermediate tensor of the graph until backward reaches it."""
    tg.manual_seed(0)
    layer = nn.LSTM(16, 64)
    x = np.random.default_rng(0).standard_normal((30, 32, 16)).astype(np.float32)

    def step(x):
        layer.zero_grad()
        loss = (layer(x)[0] ** 2).mean()
        loss.backward()
        return loss

    def peak(fn):
        tracemalloc.start()
        fn(x)
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return result
    compiled = tg.compile(step)
    compiled(x)
    compiled(x)
    assert peak(compiled) < 0.8 * peak(step)


def test_generated_code_batches_a_recurrent_weight_gradient_into_one_product():
    layer = nn.RNN(2, 3)
    step = tg.compile(lambda x: (layer(x)[0].sum()).backward())
    x = np.ones((4, 1, 2), dtype=np.float32)
    step(x)
    step(x)
    source = step.source()
    products = [line for line in source.splitlines() if ").T @ " in line]
    assert len(products) == 1   # W_hh's four per-step pieces aᵀg in one product ...
    assert "the stack made for the weight" in source   # ... whose stack the unbind reuses
    assert "tanh in rnn/l0/fwd/t3" in source
    x2 = np.random.default_rng(1).standard_normal((4, 1, 2)).astype(np.float32)
    layer.zero_grad()
    step(x2)
    compiled = layer.weight_hh_l0.grad.copy()
    layer.zero_grad()
    (layer(x2)[0].sum()).backward()
    np.testing.assert_allclose(compiled, layer.weight_hh_l0.grad, rtol=1e-6)


def test_a_10000_step_lstm_compiles_at_the_default_recursion_limit():
    layer = nn.LSTM(1, 2)
    x = np.random.default_rng(0).standard_normal((10_000, 1, 1)).astype(np.float32)

    @tg.compile
    def step(x):
        layer.zero_grad()
        loss = layer(x)[0].sum()
        loss.backward()
        return loss
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        first = step(x)
        grad = layer.weight_hh_l0.grad.copy()
        second = step(x)
    finally:
        sys.setrecursionlimit(limit)
    assert float(second) == pytest.approx(float(first), rel=1e-6)
    np.testing.assert_allclose(layer.weight_hh_l0.grad, grad, rtol=1e-4, atol=1e-6)


def test_viz_lists_the_captured_schedule_and_what_the_passes_made():
    from tinygrad_rnn import viz
    layer = nn.LSTM(2, 3)
    step = tg.compile(lambda x: (layer(x)[0].sum()).backward())
    with pytest.raises(ValueError, match="nothing captured yet"):
        viz.schedule_text(step)
    step(np.ones((3, 1, 2), dtype=np.float32))
    text = viz.schedule_text(step, limit=None)
    assert text.count(" chunk        ") == 3 and "addmm        (1, 12), (1, 3), (3, 12) -> (1, 12)  lstm/l0/fwd/t2" in text
    assert "backward     from (): " in text
    assert "(3 fused chunk activations), 1 weight products over 3 per-step pieces" in text
    with pytest.raises(TypeError, match="expected a function made by tinygrad_rnn.compile"):
        viz.schedule_text(lambda x: x)


def test_a_scheduler_and_clipping_inside_the_step_replay_like_eager():
    """Effects recorded by the trace (optimizer step, scheduler step, clipping of a generator of
    parameters) run again on every replay, with the optimizer's current learning rate."""
    def run(compiled):
        tg.manual_seed(0)
        layer = nn.GRU(3, 4).to(np.float64)
        opt = optim.SGD(layer.parameters(), lr=0.5, momentum=0.9)
        sched = optim.StepLR(opt, step_size=2, gamma=0.1)

        def step(x):
            opt.zero_grad()
            loss = (layer(x)[0] ** 2).mean()
            loss.backward()
            optim.clip_grad_norm_(layer.parameters(), 0.1)   # a generator: replayed as a list
            opt.step()
            sched.step()
            return loss
        f = tg.compile(step) if compiled else step
        xs = np.random.default_rng(2).standard_normal((5, 4, 2, 3))
        losses = [float(f(x)) for x in xs]
        return losses, [p.data.copy() for p in layer.parameters()], opt.param_groups[0]["lr"]
    eager, compiled = run(False), run(True)
    np.testing.assert_allclose(compiled[0], eager[0], rtol=1e-12)
    for a, b in zip(compiled[1], eager[1]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert compiled[2] == eager[2] == pytest.approx(0.5 * 0.1 ** 2)


def test_an_error_inside_the_trace_leaves_no_tracer_behind_and_nested_calls_inline():
    from tinygrad_rnn import engine
    w = tg.Tensor(np.ones(2), requires_grad=True)

    @tg.compile
    def broken(x):
        raise KeyError("inside")
    with pytest.raises(KeyError, match="inside"):
        broken(np.ones(2))
    assert engine.get_tracer() is None and broken.traces == 0

    inner = tg.compile(lambda x: w * x)

    @tg.compile
    def outer(x):
        loss = inner(x).sum()          # runs as part of outer's trace
        loss.backward()
        return loss
    for value in (1.0, 2.0, 3.0):
        w.grad = None
        outer(np.full(2, value))
        np.testing.assert_array_equal(w.grad, [value, value])
    assert outer.replays == 2 and inner.traces == 0


def test_the_library_ops_are_recognised_by_the_module_they_live_in():
    # exact_gradient and remove_dead_code trust library ops only; a module path that no longer
    # matched (e.g. after a move) would silently treat every op as a user op.
    from tinygrad_rnn.autograd import ops as library_ops
    from tinygrad_rnn.compile.passes import is_library_forward
    from tinygrad_rnn.engine import op

    forwards = [getattr(library_ops, name).forward for name in library_ops.__all__
                if hasattr(getattr(library_ops, name), "forward")]
    assert len(forwards) > 30
    assert all(is_library_forward(f, ops_only=True) for f in forwards)

    @op()
    def user_double(x):
        """y = 2x"""
        return 2 * x, lambda g: (2 * g,)
    assert not is_library_forward(user_double.forward)
    assert not is_library_forward(lambda x: x)
