"""The training loop: history, max_steps, clipping, schedules, best checkpoints, stateful TBPTT,
Ctrl-C, and evaluate."""
import math

import numpy as np
import pytest

from tinygrad_rnn import manual_seed
from tinygrad_rnn.data import lm_batches
from tinygrad_rnn.losses import cross_entropy
from tinygrad_rnn.models import CharLM, detach_state
from tinygrad_rnn.nn import LSTM, Module, Parameter
from tinygrad_rnn.optim import SGD, Adam, StepLR
from tinygrad_rnn.tensor import Tensor
from tinygrad_rnn.train import DivergenceError, History, evaluate, fit


def cyclic_batches(n_batches=4, batch=8, length=6, vocab=3, seed=0):
    """Sequences 0,1,2,0,1,2,... from random offsets: the next token is always determined."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        start = rng.integers(0, vocab, size=(batch, 1))
        seq = (start + np.arange(length + 1)) % vocab
        out.append((seq[:, :-1], seq[:, 1:]))
    return out


def tiny_lm(vocab=3, cell="gru", seed=0):
    manual_seed(seed)
    return CharLM(vocab, embed=4, hidden=8, cell=cell)


def grad_norm(params):
    return math.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p in params if p.grad is not None))


def as_f32(x):
    """A batch as a float32 tensor by tensor ops (a compiled step replays it with new values)."""
    return x.astype(np.float32) if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float32))


class ScalarModel(Module):
    """One parameter w; output w * x; for loops whose losses the test scripts."""

    def __init__(self):
        super().__init__()
        self.w = Parameter(np.ones(1, dtype=np.float32))

    def forward(self, x, state=None):
        return self.w * as_f32(x), state


# ----- history and stopping ---------------------------------------------------------------------
def test_history_has_one_entry_per_epoch_and_counts_steps():
    model = tiny_lm()
    data = cyclic_batches()
    history = fit(model, cross_entropy, Adam(model.parameters(), lr=0.01), data, val_data=data[:1],
                  epochs=3, progress=False, metric=lambda out, y: 0.5)
    assert isinstance(history, History)
    for name in ("train_loss", "val_loss", "val_metric", "epoch_seconds"):
        assert len(getattr(history, name)) == 3, name
    assert history.steps == 3 * len(data)
    assert history.val_metric == [0.5, 0.5, 0.5]
    assert history.best_val_loss == min(history.val_loss)
    assert not history.interrupted
    assert all(s >= 0 for s in history.epoch_seconds)


def test_train_loss_is_the_mean_of_the_batch_losses():
    model = ScalarModel()
    data = [(np.array([1.0]), np.array([v])) for v in (1.0, 2.0, 4.0)]
    # lr=0 keeps w = 1, so the losses are v - 1: 0, 1, 3.
    history = fit(model, lambda out, y: (as_f32(y) - out).sum(),
                  SGD(model.parameters(), lr=0.0), data, progress=False)
    assert history.train_loss == [pytest.approx(4 / 3)]


def test_loss_goes_down_on_an_easy_task():
    model = tiny_lm()
    history = fit(model, cross_entropy, Adam(model.parameters(), lr=0.05), cyclic_batches(),
                  epochs=8, progress=False)
    assert history.train_loss[0] > 0.8  # about ln 3 at the start
    assert history.train_loss[-1] < 0.25 * history.train_loss[0]


def test_max_steps_stops_in_the_middle_of_an_epoch():
    model = tiny_lm()
    seen = []

    def data():
        for batch in cyclic_batches(n_batches=4):
            seen.append(1)
            yield batch
    history = fit(model, cross_entropy, Adam(model.parameters(), lr=0.01), data, epochs=100,
                  max_steps=6, progress=False)
    assert history.steps == 6
    assert len(seen) == 6
    assert len(history.train_loss) == 2  # one full epoch and the partial one


def test_start_step_offsets_the_count_and_the_budget():
    model = tiny_lm()
    history = fit(model, cross_entropy, Adam(model.parameters(), lr=0.01), cyclic_batches(),
                  epochs=100, max_steps=3, start_step=40, progress=False)
    assert history.steps == 43


def test_callable_train_data_is_called_once_per_epoch():
    calls = []

    def data():
        calls.append(1)
        return cyclic_batches(n_batches=2)
    model = tiny_lm()
    fit(model, cross_entropy, Adam(model.parameters(), lr=0.01), data, epochs=3, progress=False)
    assert len(calls) == 3


def test_progress_prints_one_line_per_epoch(capsys):
    model = tiny_lm()
    fit(model, cross_entropy, Adam(model.parameters(), lr=0.01), cyclic_batches(n_batches=2),
        val_data=cyclic_batches(n_batches=1), epochs=2, progress=True)
    err = capsys.readouterr()
    text = err.out + err.err
    assert "epoch 1/2: train loss" in text and "epoch 2/2: train loss" in text
    assert "val loss" in text


def test_progress_under_a_step_budget_shows_no_epoch_total(capsys):
    """With max_steps the run ends on the budget; a huge placeholder epoch count is not shown."""
    model = tiny_lm()
    fit(model, cross_entropy, Adam(model.parameters(), lr=0.01), cyclic_batches(n_batches=2),
        epochs=10**9, max_steps=3, progress=True)
    err = capsys.readouterr()
    text = err.out + err.err
    assert "epoch 1: train loss" in text and "epoch 2" in text
    assert "/1000000000" not in text


# ----- clipping and schedules -------------------------------------------------------------------
def spy_on_step(optimizer, log, params):
    real_step = optimizer.step

    def step():
        log.append(("step", grad_norm(params)))
        real_step()
    optimizer.step = step


@pytest.mark.parametrize("clip", [None, 0.01])
def test_clip_bounds_the_gradient_norm_seen_by_the_optimizer(clip):
    model = tiny_lm()
    params = model.parameters()
    optimizer = SGD(params, lr=0.1)
    log = []
    spy_on_step(optimizer, log, params)
    fit(model, cross_entropy, optimizer, cyclic_batches(), epochs=1, clip=clip, progress=False)
    norms = [n for _, n in log]
    assert len(norms) == 4
    if clip is None:
        assert max(norms) > 0.1  # without clipping the gradients are much larger than 0.01
    else:
        assert max(norms) <= clip * (1 + 1e-5)
        assert min(norms) > 0.9 * clip  # clipped to (about) the bound, not zeroed


def test_scheduler_steps_once_after_every_optimizer_step():
    model = tiny_lm()
    params = model.parameters()
    optimizer = Adam(params, lr=0.01)
    log = []
    spy_on_step(optimizer, log, params)

    class Scheduler:
        def step(self):
            log.append(("scheduler", None))
    fit(model, cross_entropy, optimizer, cyclic_batches(), epochs=2, max_steps=7,
        scheduler=Scheduler(), progress=False)
    assert [kind for kind, _ in log] == ["step", "scheduler"] * 7


def test_real_step_lr_schedule_is_advanced_per_step():
    model = tiny_lm()
    optimizer = SGD(model.parameters(), lr=0.8)
    fit(model, cross_entropy, optimizer, cyclic_batches(), epochs=2, max_steps=5,
        scheduler=StepLR(optimizer, step_size=2, gamma=0.5), progress=False)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.8 * 0.5 ** 2)


# ----- best checkpoint --------------------------------------------------------------------------
def scripted_val_fit(val_losses, **kwargs):
    """fit on ScalarModel where the validation loss of epoch k is val_losses[k]."""
    model = ScalarModel()
    epoch = {"k": -1}

    def loss_fn(out, y):
        if model.training:
            return (out * 0.0).sum()
        return Tensor(np.float32(val_losses[epoch["k"]]))

    def train_data():
        epoch["k"] += 1
        return [(np.array([1.0]), np.array([0.0]))]
    calls = []
    history = fit(model, loss_fn, SGD(model.parameters(), lr=0.1), train_data, epochs=len(val_losses),
                  checkpoint=lambda h: calls.append((len(h.train_loss), h.best_val_loss)),
                  progress=False, **kwargs)
    return history, calls


def test_checkpoint_only_when_the_validation_loss_improves():
    history, calls = scripted_val_fit([3.0, 2.0, 2.5, 1.0, 1.0, 1.5], val_data=[(np.array([1.0]), None)])
    assert history.val_loss == [3.0, 2.0, 2.5, 1.0, 1.0, 1.5]
    # Epochs 1, 2 and 4 improve (a tie is not an improvement); history is current at each call.
    assert calls == [(1, 3.0), (2, 2.0), (4, 1.0)]
    assert history.best_val_loss == 1.0


def test_checkpoint_every_epoch_without_validation_data():
    history, calls = scripted_val_fit([0.0, 0.0, 0.0])
    assert [epoch for epoch, _ in calls] == [1, 2, 3]
    assert history.val_loss == []


# ----- stateful (truncated BPTT) ----------------------------------------------------------------
class StateRecorder(Module):
    """Wraps a model and records the state it receives and the state it returns."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        object.__setattr__(self, "received", [])
        object.__setattr__(self, "returned", [])

    def forward(self, x, state=None):
        self.received.append(state)
        logits, new_state = self.inner(x, state)
        self.returned.append(new_state)
        return logits, new_state


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_stateful_carries_the_final_state_detached(cell):
    ids = np.tile(np.arange(3), 40)
    model = StateRecorder(tiny_lm(cell=cell))
    # eager: the recorder sees every call of the model (a compiled replay would not call it)
    fit(model, cross_entropy, Adam(model.parameters(), lr=0.01), lambda: lm_batches(ids, 2, 5),
        epochs=2, stateful=True, progress=False, compile=False)
    per_epoch = len(list(lm_batches(ids, 2, 5)))
    assert len(model.received) == 2 * per_epoch
    for k, (received, previous) in enumerate(zip(model.received, [None] + model.returned[:-1])):
        if k % per_epoch == 0:
            assert received is None  # each epoch starts from a zero state
            continue
        got = received if isinstance(received, tuple) else (received,)
        before = previous if isinstance(previous, tuple) else (previous,)
        assert len(got) == len(before) == (2 if cell == "lstm" else 1)
        for g, b in zip(got, before):
            assert b.parents  # the returned state is part of the previous batch's graph ...
            assert not g.parents and not g.requires_grad  # ... the next batch gets it cut off
            np.testing.assert_array_equal(g.data, b.data)


def test_stateless_passes_no_state():
    model = StateRecorder(tiny_lm())
    fit(model, cross_entropy, Adam(model.parameters(), lr=0.01), cyclic_batches(), epochs=1,
        progress=False, compile=False)
    assert model.received == [None] * 4


def test_detach_state():
    a = Tensor(np.ones(2), requires_grad=True) * 2
    b = Tensor(np.ones(2), requires_grad=True) * 3
    assert detach_state(None) is None
    single = detach_state(a)
    assert not single.parents and not single.requires_grad and single.data is a.data
    pair = detach_state((a, b))
    assert isinstance(pair, tuple) and len(pair) == 2
    assert all(not t.parents and not t.requires_grad for t in pair)


# ----- Ctrl-C -----------------------------------------------------------------------------------
def test_keyboard_interrupt_returns_an_interrupted_history_and_checkpoints():
    batches = cyclic_batches(n_batches=5)

    def data():
        for k, batch in enumerate(batches):
            if k == 2:
                raise KeyboardInterrupt
            yield batch
    model = tiny_lm()
    calls = []
    history = fit(model, cross_entropy, Adam(model.parameters(), lr=0.01), data, epochs=3,
                  checkpoint=lambda h: calls.append(h.steps), progress=False)
    assert history.interrupted
    assert history.steps == 2
    assert calls == [2]


def test_the_interrupt_checkpoint_call_is_marked_so_callers_can_keep_the_best_apart():
    batches = cyclic_batches(n_batches=3)
    served = []

    def data():
        for batch in batches:
            if len(served) == 4:  # in the second epoch, after one step
                raise KeyboardInterrupt
            served.append(batch)
            yield batch
    model = tiny_lm()
    calls = []
    fit(model, cross_entropy, Adam(model.parameters(), lr=0.01), data, val_data=batches, epochs=3,
        checkpoint=lambda h: calls.append((h.steps, h.interrupted)), progress=False)
    assert calls == [(3, False), (4, True)]  # the improvement after epoch 1, then the interrupt


# ----- evaluate ---------------------------------------------------------------------------------
def test_evaluate_mean_loss_metric_mode_and_no_graph():
    model = tiny_lm()
    data = cyclic_batches(n_batches=3)
    outputs = []

    def loss_fn(out, y):
        outputs.append(out)
        return cross_entropy(out, y)
    loss, metric = evaluate(model, loss_fn, data, metric=lambda out, y: float(np.asarray(y).mean()))
    expected = np.mean([float(cross_entropy(model(x, None)[0], y).item()) for x, y in data])
    assert loss == pytest.approx(expected, rel=1e-6)
    assert metric == pytest.approx(np.mean([np.asarray(y).mean() for _, y in data]))
    assert model.training  # restored
    assert all(not o.requires_grad and not o.parents for o in outputs)
    model.eval()
    evaluate(model, cross_entropy, data)
    assert not model.training
    assert math.isnan(evaluate(model, cross_entropy, data)[1])  # no metric given


def test_evaluate_without_batches_is_an_error():
    with pytest.raises(ValueError, match="no batches"):
        evaluate(tiny_lm(), cross_entropy, [])


# ----- argument errors --------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(epochs=0), "epochs"), (dict(max_steps=0), "max_steps"), (dict(max_steps=-3), "max_steps"),
    (dict(clip=0.0), "clip"), (dict(clip=-1.0), "clip"), (dict(clip=float("nan")), "clip"),
])
def test_bad_arguments(kwargs, match):
    model = tiny_lm()
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match=match):
        fit(model, cross_entropy, Adam(model.parameters(), lr=0.01), cyclic_batches(), progress=False,
            **kwargs)
    assert all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))


def test_a_generator_exhausted_after_one_epoch_is_an_error_not_zero_losses():
    model = tiny_lm()
    once = (batch for batch in cyclic_batches(n_batches=2))
    with pytest.raises(ValueError, match="no batches in epoch 2"):
        fit(model, cross_entropy, Adam(model.parameters(), lr=0.01), once, epochs=3, progress=False)
    with pytest.raises(ValueError, match="no batches in epoch 1"):
        fit(model, cross_entropy, Adam(model.parameters(), lr=0.01), [], progress=False)


def test_a_resumed_fit_saves_only_below_the_best_loss_it_is_given():
    """best_val_loss seeds the comparison: validation above it is not an improvement."""
    saved = []
    model = tiny_lm()
    fit(model, cross_entropy, Adam(model.parameters(), lr=0.01), cyclic_batches(n_batches=2),
        val_data=cyclic_batches(n_batches=1), epochs=2, progress=False, best_val_loss=1e-9,
        checkpoint=lambda h: saved.append(h.steps))
    assert saved == []
    history = fit(model, cross_entropy, Adam(model.parameters(), lr=0.01), cyclic_batches(n_batches=2),
                  val_data=cyclic_batches(n_batches=1), epochs=1, progress=False, best_val_loss=1e9,
                  checkpoint=lambda h: saved.append(h.steps))
    assert saved == [2] and history.best_val_loss == history.val_loss[0] < 1e9
    with pytest.raises(ValueError, match="best_val_loss"):
        fit(model, cross_entropy, Adam(model.parameters()), cyclic_batches(), best_val_loss=float("nan"))



# ----- divergence -------------------------------------------------------------------------------
def float_batches(n_batches=3, nan_at=None, seed=0):
    """(T=4, N=2, 2) float sequences for an LSTM layer; batch ``nan_at`` holds one NaN."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_batches):
        x = rng.standard_normal((4, 2, 2)).astype(np.float32)
        if k == nan_at:
            x[1, 0, 1] = np.nan
        out.append((x, None))
    return out


def sum_of_squares(output, y):
    return (output * output).sum()


def test_a_nan_input_stops_fit_before_the_step_and_leaves_every_parameter_finite():
    manual_seed(0)
    model = LSTM(2, 3)
    optimizer = Adam(model.parameters(), lr=0.01)
    data = [(Tensor(x), y) for x, y in float_batches(n_batches=4, nan_at=2)]
    seen = []
    with pytest.raises(DivergenceError, match=r"diverged at step 13: the loss is nan.*learning rate") as caught:
        fit(model, sum_of_squares, optimizer, data, progress=False, start_step=10,
            checkpoint=lambda h: seen.append(h.steps))
    error = caught.value
    assert error.step == 13 and math.isnan(error.loss) and error.grad_norm is None
    assert error.history.steps == 12  # two good steps were taken, the diverging one was not
    assert seen == []  # no checkpoint of the diverged state
    assert all(np.all(np.isfinite(p.data)) for p in model.parameters())
    assert all(np.all(np.isfinite(b)) for buf in optimizer.state.values() for b in buf.values()
               if isinstance(b, np.ndarray))
    # The parameters are those two clean Adam steps give (the third never ran).
    manual_seed(0)
    reference = LSTM(2, 3)
    fit(reference, sum_of_squares, Adam(reference.parameters(), lr=0.01), data[:2], progress=False)
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


class SqrtModel(Module):
    """output = sqrt(w * x): finite at x = 0, where the gradient of w is inf * 0 = NaN."""

    def __init__(self):
        super().__init__()
        self.w = Parameter(np.ones(1, dtype=np.float32))

    def forward(self, x, state=None):
        return (self.w * as_f32(x)) ** 0.5, state


@pytest.mark.parametrize("clip", [None, 1.0])
def test_a_non_finite_gradient_norm_stops_fit_with_the_parameters_untouched(clip):
    model = SqrtModel()
    data = [(np.array([4.0]), None), (np.array([0.0]), None), (np.array([4.0]), None)]
    optimizer = SGD(model.parameters(), lr=0.1)
    with np.errstate(divide="ignore", invalid="ignore"), \
            pytest.raises(DivergenceError, match="step 2: the gradient norm is nan"):
        fit(model, lambda out, y: out.sum(), optimizer, data, clip=clip, progress=False)
    # One SGD step on sqrt(w * 4) at w = 1 (gradient 1): w = 0.9; the infinite gradient was not applied.
    assert model.w.data.tolist() == [pytest.approx(0.9)]


def test_max_loss_stops_fit_at_the_first_batch_above_it():
    model = ScalarModel()
    data = [(np.array([v]), None) for v in (1.0, 2.0, 50.0, 3.0)]
    with pytest.raises(DivergenceError, match=r"step 3: the loss 50 exceeds max_loss 10") as caught:
        fit(model, lambda out, y: out.sum(), SGD(model.parameters(), lr=0.0), data, max_loss=10.0,
            progress=False)
    assert caught.value.loss == 50.0 and caught.value.max_loss == 10.0
    history = fit(model, lambda out, y: out.sum(), SGD(model.parameters(), lr=0.0), data[:2], max_loss=10.0,
                  progress=False)
    assert history.steps == 2


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "10", True])
def test_max_loss_must_be_a_positive_number(bad):
    model = ScalarModel()
    with pytest.raises(ValueError, match="max_loss"):
        fit(model, lambda out, y: out.sum(), SGD(model.parameters(), lr=0.0), [(np.array([1.0]), None)],
            max_loss=bad, progress=False)


def test_fit_trains_eagerly_with_a_warning_when_the_step_reads_tensor_values():
    """A model whose Python code reads its input's values cannot be replayed: fit says so and
    trains eagerly, with the same losses as compile=False."""
    class Reading(ScalarModel):
        def forward(self, x, state=None):
            return self.w * Tensor(np.asarray(x, dtype=np.float32)), state   # np.asarray on a tensor

    data = [(np.array([1.0]), np.array([v])) for v in (1.0, 2.0, 4.0)]
    losses = {}
    for compile_ in (True, False):
        model = Reading()
        if compile_:
            with pytest.warns(UserWarning, match="training eagerly, the step cannot be compiled"):
                history = fit(model, lambda out, y: (as_f32(y) - out).sum(),
                              SGD(model.parameters(), lr=0.1), data, progress=False)
        else:
            history = fit(model, lambda out, y: (as_f32(y) - out).sum(),
                          SGD(model.parameters(), lr=0.1), data, progress=False, compile=False)
        losses[compile_] = (history.train_loss, model.w.data.copy())
    assert losses[True][0] == losses[False][0]
    np.testing.assert_array_equal(losses[True][1], losses[False][1])
