"""The Tensor API a PyTorch or micrograd user expects: comparisons, argmax, scalars, pow."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, gradcheck


def test_comparisons_are_elementwise_boolean_tensors_without_grad():
    a = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = Tensor([1.0, 0.0, 3.0])
    cases = {"==": (a == b, [True, False, True]), "!=": (a != b, [False, True, False]),
             "<": (a < 2.0, [True, False, False]), "<=": (a <= 2.0, [True, True, False]),
             ">": (a > b, [False, True, False]), ">=": (2.0 >= a, [True, True, False])}
    for op, (result, expected) in cases.items():
        assert isinstance(result, Tensor) and result.dtype == bool, op
        assert not result.requires_grad and result.grad_fn is None, op
        np.testing.assert_array_equal(result.data, expected)
    np.testing.assert_array_equal((Tensor([1, 2]) == 1.0).data, [True, False])


def test_tensors_hash_by_identity_in_sets_and_dicts():
    a, b = Tensor([1.0]), Tensor([1.0])
    assert len({a, b}) == 2
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b"
    with pytest.raises(ValueError, match="ambiguous"):
        bool(Tensor([1.0, 2.0]) == Tensor([1.0, 2.0]))


def test_argmax_and_argmin():
    x = Tensor(np.array([[1.0, 5.0, 5.0], [7.0, -1.0, 2.0]]))
    assert x.argmax().item() == 3
    np.testing.assert_array_equal(x.argmax(axis=1).data, [1, 0])   # the first of tied maxima
    np.testing.assert_array_equal(x.argmin(axis=0).data, [0, 1, 1])
    np.testing.assert_array_equal(x.argmax(axis=-1, keepdims=True).data, [[1], [0]])
    assert x.argmax().dtype == np.int64
    with pytest.raises(ValueError, match="out of range"):
        x.argmax(axis=2)


def test_one_element_tensors_convert_to_python_scalars():
    t = Tensor(np.array([[2.5]]))
    assert t.item() == 2.5 and float(t) == 2.5 and int(t) == 2 and bool(t) is True
    assert isinstance(t.item(), float) and isinstance(int(Tensor([7])), int)
    assert [10, 20, 30][Tensor(np.array(1))] == 20
    for convert in (float, int, bool, lambda t: t.item()):
        with pytest.raises(ValueError, match="one-element|more than one element"):
            convert(Tensor([1.0, 2.0]))


def test_pow_with_a_tensor_exponent_and_reflected_pow():
    rng = np.random.default_rng(0)
    x = Tensor(rng.uniform(0.5, 2.0, (3, 4)), requires_grad=True)
    p = Tensor(rng.uniform(-1.5, 2.5, (4,)), requires_grad=True)
    np.testing.assert_allclose((x ** p).data, x.data ** p.data)
    assert gradcheck(lambda x, p: x ** p, [x, p])
    assert gradcheck(lambda p: 2.0 ** p, [p])
    np.testing.assert_allclose((2.0 ** p).data, 2.0 ** p.data)
    assert gradcheck(lambda x: x ** 2, [x]) and gradcheck(lambda x: x ** 0, [x])
    assert (Tensor(np.float32(2.0)) ** 3).dtype == np.float32


def test_gradients_of_zero_d_tensors_are_zero_d_arrays():
    x = Tensor(np.array(3.0), requires_grad=True)
    (x * x + x).backward()
    assert type(x.grad) is np.ndarray and x.grad.shape == () and x.grad == 7.0
    y = Tensor(np.array(2.0), requires_grad=True)
    (y * y).backward()
    (y * 3.0).backward()       # accumulation keeps it an array
    assert type(y.grad) is np.ndarray and y.grad == 7.0


def test_every_tensor_method_is_defined_in_the_class_body():
    """A reader of tensor.py finds every method: none is installed from elsewhere."""
    import inspect
    import tinygrad_rnn.tensor as module
    source = inspect.getsource(module.Tensor)
    for name in ("__add__", "__eq__", "__lt__", "__rpow__", "sum", "tanh", "argmax", "chunk",
                 "unbind", "detach", "item", "__float__", "T"):
        assert f"def {name}(" in source, name
