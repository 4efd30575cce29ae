"""Keras-style Sequential.fit/evaluate/predict on arrays, callbacks, and train.fit with plain models."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn
from tinygrad_rnn.callbacks import EarlyStopping, ModelCheckpoint
from tinygrad_rnn.optim import SGD, Adam
from tinygrad_rnn.train import fit


def _sign_task(n=256, seed=0):
    """Variable-length sequences of numbers; the class says whether their sum is positive."""
    rng = np.random.default_rng(seed)
    X = [rng.standard_normal((int(rng.integers(3, 9)), 1)) for _ in range(n)]
    y = np.array([int(s.sum() > 0) for s in X])
    return X, y


def test_sequential_passes_a_recurrent_layers_output_on():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4), nn.LSTM(4, 5, batch_first=True), nn.Linear(5, 3))
    out = model(np.array([[1, 2, 3], [4, 5, 6]]))
    assert out.shape == (2, 3, 3)
    last = nn.Sequential(nn.Embedding(10, 4), nn.LastOutput(nn.GRU(4, 5, batch_first=True, bidirectional=True)),
                         nn.Linear(10, 3))
    assert last(np.array([[1, 2, 3], [4, 5, 6]])).shape == (2, 3)


def test_fit_learns_variable_length_classification_and_predict_shapes():
    tg.manual_seed(0)
    X, y = _sign_task()
    model = nn.Sequential(nn.LastOutput(nn.LSTM(1, 16, batch_first=True)), nn.Linear(16, 2))
    history = model.fit(X, y, epochs=15, batch_size=32, validation_split=0.25, progress=False)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]
    assert len(history.history["val_loss"]) == 15
    probs = model.predict(X)
    assert probs.shape == (256, 2) and probs.dtype == np.float32
    assert (probs.argmax(-1) == y).mean() > 0.8
    assert model.evaluate(X, y) < 0.6


def test_masked_batches_predict_what_each_sequence_gives_alone():
    """Padding (added by predict for a list of different lengths) never reaches the result."""
    tg.manual_seed(1)
    X, _ = _sign_task(n=6, seed=3)
    model = nn.Sequential(nn.LastOutput(nn.LSTM(1, 4, batch_first=True, bidirectional=True, num_layers=2)),
                          nn.Linear(8, 2)).double()
    together = model.predict(X)
    alone = np.concatenate([model.predict(s[None]) for s in X])
    np.testing.assert_allclose(together, alone, atol=1e-12, rtol=0)
    seq_model = nn.Sequential(nn.GRU(1, 3, batch_first=True), nn.Linear(3, 2)).double()
    out = seq_model.predict(X)
    assert out.shape == (6, max(len(s) for s in X), 2)
    for i, s in enumerate(X):
        np.testing.assert_allclose(out[i, :len(s)], seq_model.predict(s[None])[0], atol=1e-12, rtol=0)


def test_fit_regression_on_arrays_default_loss_mse():
    tg.manual_seed(2)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((128, 3)).astype(np.float32)
    y = X @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32) + 0.3
    model = nn.Sequential(nn.Linear(3, 1))
    history = model.fit(X, y, epochs=40, batch_size=16, optimizer=Adam(model.parameters(), lr=0.05), progress=False)
    assert history.history["loss"][-1] < 0.01
    assert model.predict(X).shape == (128, 1)
    assert model.evaluate(X, y) == pytest.approx(float(np.mean((model.predict(X) - y) ** 2)), rel=1e-5)


def test_validation_split_holds_out_the_last_samples():
    tg.manual_seed(3)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 2)).astype(np.float32)
    y = rng.standard_normal((40, 1)).astype(np.float32)
    model = nn.Sequential(nn.Linear(2, 1))
    history = model.fit(X, y, epochs=1, batch_size=10, validation_split=0.5,
                        optimizer=SGD(model.parameters(), lr=0.0), progress=False)
    assert history.val_loss[0] == pytest.approx(model.evaluate(X[20:], y[20:], batch_size=10), rel=1e-6)
    assert history.val_loss[0] != pytest.approx(model.evaluate(X[:20], y[:20]), rel=1e-3)


def test_early_stopping_and_checkpoint(tmp_path):
    tg.manual_seed(4)
    X = np.ones((8, 2), dtype=np.float32)
    y = np.zeros((8, 1), dtype=np.float32)
    model = nn.Sequential(nn.Linear(2, 1))
    stop = EarlyStopping(patience=2)
    ckpt = ModelCheckpoint(tmp_path / "best.tgz", save_best_only=True)
    history = model.fit(X, y, epochs=10, validation_data=(X, y), optimizer=SGD(model.parameters(), lr=0.0),
                        callbacks=[stop, ckpt], progress=False, plot=tmp_path / "loss.png")
    assert len(history.train_loss) == 3 and stop.stopped_epoch == 2      # 1 best epoch, then 2 without
    assert ckpt.saved == [tmp_path / "best.tgz"] and (tmp_path / "best.tgz").is_file()
    assert (tmp_path / "loss.png").stat().st_size > 1000
    restored = nn.Sequential(nn.Linear(2, 1))
    tg.load(tmp_path / "best.tgz", restored)
    np.testing.assert_array_equal(restored[0].weight.data, model[0].weight.data)
    with pytest.raises(ValueError, match="monitor='val_loss' has no value; available: \\['loss'\\]"):
        model.fit(X, y, epochs=2, callbacks=[EarlyStopping()], progress=False)


def test_restore_best_weights():
    tg.manual_seed(5)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((16, 2)).astype(np.float32)
    y = rng.standard_normal((16, 1)).astype(np.float32)
    model = nn.Sequential(nn.Linear(2, 1))
    stop = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    # a huge learning rate makes the validation loss worse after the first epoch
    history = model.fit(X, y, epochs=6, validation_data=(X, y), optimizer=SGD(model.parameters(), lr=3.0),
                        callbacks=[stop], progress=False, shuffle=False)
    best = int(np.argmin(history.val_loss))
    assert model.evaluate(X, y) == pytest.approx(history.val_loss[best], rel=1e-5)


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda m: m.fit(np.zeros((5, 2)), np.zeros((4, 1))), ValueError,
     "X and y must have the same number of samples, got 5 and 4"),
    (lambda m: m.fit(np.zeros((5, 2)), np.zeros((5, 1)), batch_size=0), ValueError, "batch_size must be an int >= 1, got 0"),
    (lambda m: m.fit(np.zeros((5, 2)), np.zeros((5, 1)), loss="hinge"), ValueError, "loss must be one of"),
    (lambda m: m.fit(np.zeros((5, 2)), np.zeros((5, 1)), validation_split=1.5), ValueError,
     r"validation_split must be a fraction in \[0, 1\), got 1.5"),
    (lambda m: m.fit("text", np.zeros((5, 1))), TypeError, "X must be a NumPy array or a non-empty list"),
    (lambda m: m.predict([np.zeros((2, 2)), np.zeros((3, 3))]), ValueError, r"X\[1\] has feature shape \(3,\)"),
    (lambda m: m.fit(np.zeros((5, 2)), np.zeros((5, 1)), validation_data=(np.zeros((3, 2)), np.zeros((2, 1)))),
     ValueError, "X and validation_data\\[1\\] must have the same number of samples, got 3 and 2"),
])
def test_fit_errors_name_the_argument(call, exc, pattern):
    model = nn.Sequential(nn.Linear(2, 1))
    with pytest.raises(exc, match=pattern):
        call(model)


def test_sequence_layers_must_be_batch_first_for_arrays():
    model = nn.Sequential(nn.LSTM(1, 3), nn.Linear(3, 1))
    with pytest.raises(ValueError, match="sequence layer '0' \\(LSTM\\) has batch_first=False"):
        model.fit(np.zeros((4, 5, 1)), np.zeros((4, 5, 1)), progress=False)


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, x):
        return self.lin(x)


def test_train_fit_takes_a_plain_forward_model_and_explains_wrong_ones():
    tg.manual_seed(6)
    model = Plain()
    data = [(np.ones((4, 2), dtype=np.float32), np.zeros((4, 1), dtype=np.float32))] * 3
    history = fit(model, tg.functional.mse_loss, SGD(model.parameters(), lr=0.1), data, epochs=3, progress=False)
    assert history.train_loss[-1] < history.train_loss[0]

    with pytest.raises(TypeError, match=r"train_data must be an iterable of \(x, y\) batches, got a pair of arrays"):
        fit(model, tg.functional.mse_loss, SGD(model.parameters(), lr=0.1),
            (np.ones((4, 2), dtype=np.float32), np.zeros((4, 1), dtype=np.float32)), progress=False)
    with pytest.raises(TypeError, match=r"every batch of train_data must be a pair \(x, y\), got tuple of length 3"):
        fit(model, tg.functional.mse_loss, SGD(model.parameters(), lr=0.1), [(1, 2, 3)], progress=False)

    class ThreeArgs(Plain):
        def forward(self, x, state, extra):
            return self.lin(x)
    with pytest.raises(TypeError, match=r"requires 3 positional arguments; fit expects model\(x\) -> output, or "
                                        r"model\(x, state\) -> \(output, state\)"):
        fit(ThreeArgs(), tg.functional.mse_loss, SGD(model.parameters(), lr=0.1), data, progress=False)

    class ReturnsList(Plain):
        def forward(self, x):
            return [self.lin(x)]
    with pytest.raises(TypeError, match=r"ReturnsList returned list of length 1; fit expects model\(x\)"):
        fit(ReturnsList(), tg.functional.mse_loss, SGD(model.parameters(), lr=0.1), data, progress=False,
            compile=False)


def test_history_history_is_keras_shaped():
    h = tg.train.History(train_loss=[2.0, 1.0], val_loss=[3.0, 2.5])
    assert h.history == {"loss": [2.0, 1.0], "val_loss": [3.0, 2.5]}
    assert tg.train.History(train_loss=[1.0]).history == {"loss": [1.0]}


def test_variable_length_integer_targets_are_ignored_on_padding():
    tg.manual_seed(7)
    X = [np.array([1, 2, 3]), np.array([4, 5])]
    y = [np.array([2, 3, 4]), np.array([5, 6])]
    model = nn.Sequential(nn.Embedding(8, 4), nn.LSTM(4, 6, batch_first=True), nn.Linear(6, 8))
    history = model.fit(X, y, epochs=80, batch_size=2, optimizer=Adam(model.parameters(), lr=0.05), progress=False)
    assert history.train_loss[-1] < 0.1
    pred = model.predict(X).argmax(-1)
    assert pred[0].tolist() == [2, 3, 4] and pred[1, :2].tolist() == [5, 6]
