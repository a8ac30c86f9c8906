"""polyak.optim.SGD against torch.optim.SGD, its NumPy twin, and its argument checks."""

import itertools

import numpy as np
import pytest

import polyak
from polyak.optim import SGD

RNG = np.random.default_rng(4)
SHAPES = [(3, 4), (70_000,), (5,), ()]


def torch_combinations():
    """Every combination of momentum, dampening, nesterov, weight_decay and maximize torch accepts."""
    for momentum, dampening, nesterov, weight_decay, maximize in itertools.product(
        [0.0, 0.9], [0.0, 0.3], [False, True], [0.0, 0.01], [False, True]
    ):
        if nesterov and (momentum <= 0 or dampening != 0):
            continue
        yield dict(momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay, maximize=maximize)


def relative_error(actual, expected):
    """Largest |actual − expected| relative to the array's RMS (values cross zero)."""
    scale = np.sqrt(np.mean(expected.astype(float) ** 2)) + 1e-300
    return float(np.max(np.abs(actual.astype(float) - expected.astype(float)))) / scale


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("settings", list(torch_combinations()), ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_equals_torch(dtype, settings):
    torch = pytest.importorskip("torch")
    params = [RNG.normal(size=shape).astype(dtype) for shape in SHAPES]
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    ours = SGD(params, lr=0.1, **settings)
    theirs = torch.optim.SGD(tensors, lr=0.1, **settings)
    for step in range(64):
        if step == 32:  # a learning-rate change midway
            ours.lr = 0.02
            for group in theirs.param_groups:
                group["lr"] = 0.02
        grads = [RNG.normal(size=shape).astype(dtype) for shape in SHAPES]
        for tensor, grad in zip(tensors, grads):
            tensor.grad = torch.tensor(grad)
        ours.step(grads)
        theirs.step()
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    for param, tensor in zip(params, tensors):
        assert relative_error(param, tensor.detach().numpy()) <= tolerance
    if settings["momentum"]:
        for buffer, tensor in zip(ours.state_dict()["momentum_buffers"], tensors):
            expected = theirs.state[tensor]["momentum_buffer"].numpy()
            assert relative_error(buffer, expected) <= tolerance


def test_mxnet_has_no_nesterov_form():
    with pytest.raises(ValueError, match="no nesterov form"):
        SGD([np.zeros(3)], lr=0.1, momentum=0.9, nesterov=True, convention="mxnet")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_kernel_equals_its_twin_on_large_arrays_and_threads(dtype):
    # one call, each array with its own row of constants (as parameter groups and a buffer's
    # first step have): the kernel against polyak.reference.sgd_step, on 1 and 2 threads
    from polyak._config import kernels
    from polyak._optim_layout import chunk_table

    module = kernels("_sgd")
    rows = [dict(sign=-1.0, decay=0.01, decoupled=0.001, beta=0.9, a=0.7, k=0.05, e=0.0, momentum=True, first=True),
            dict(sign=1.0, decay=0.0, decoupled=0.0, beta=0.8, a=0.6, k=0.04, e=0.05, momentum=True, first=False),
            dict(sign=1.0, decay=0.02, decoupled=0.0, beta=0.0, a=1.0, k=0.03, e=0.0, momentum=False, first=False),
            dict(sign=-1.0, decay=0.0, decoupled=0.0, beta=0.5, a=1.0, k=0.1, e=0.0, momentum=True, first=False)]
    table = np.array([[float(row[name]) for name in module.COLUMN_NAMES] for row in rows])
    sizes = [200_001, 3, 70_000, 40_000]
    params, grads, buffers = ([RNG.normal(size=n).astype(dtype) for n in sizes] for _ in range(3))
    chunks = chunk_table(params, rows=range(len(rows)))
    results = []
    for threads in (1, 2):
        p, b = [x.copy() for x in params], [x.copy() for x in buffers]
        module.sgd_step(np.empty(0, dtype), p, grads, b, chunks.array, chunks.start, chunks.length, chunks.row,
                        table, threads)
        results.append((p, b))
    tolerance = dict(rtol=1e-13, atol=1e-15) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for i, row in enumerate(rows):
        np.testing.assert_array_equal(results[0][0][i], results[1][0][i])  # thread count: bit for bit
        p, b = params[i].copy(), buffers[i].copy()
        polyak.reference.sgd_step(p, grads[i], b, **row)
        np.testing.assert_allclose(results[0][0][i], p, **tolerance)
        np.testing.assert_allclose(results[0][1][i], b, **tolerance)  # untouched without momentum


def test_state_dict_round_trips_exactly():
    params = [RNG.normal(size=s) for s in SHAPES]
    ours = SGD(params, lr=0.1, momentum=0.9, dampening=0.1)
    for _ in range(3):
        ours.step([RNG.normal(size=s) for s in SHAPES])
    state = ours.state_dict()
    clone_params = [p.copy() for p in params]
    clone = SGD(clone_params, lr=1.0, momentum=0.5)
    clone.load_state_dict(state)
    assert clone.state_dict()["hyperparameters"] == state["hyperparameters"] and clone.steps == 3
    grads = [RNG.normal(size=s) for s in SHAPES]
    ours.step(grads)
    clone.step(grads)
    for a, b in zip(params, clone_params):
        np.testing.assert_array_equal(a, b)
    state["momentum_buffers"][0][...] = 99.0  # the saved state is a copy
    assert not np.any(ours.state_dict()["momentum_buffers"][0] == 99.0)


def test_fortran_ordered_parameters_and_their_state_match_torch():
    torch = pytest.importorskip("torch")
    param = np.asfortranarray(RNG.normal(size=(4, 6)))
    tensor = torch.tensor(np.ascontiguousarray(param), requires_grad=True)
    ours, theirs = SGD([param], lr=0.1, momentum=0.9), torch.optim.SGD([tensor], lr=0.1, momentum=0.9)
    for _ in range(3):
        grad = RNG.normal(size=(4, 6))
        tensor.grad = torch.tensor(grad)
        ours.step([grad])
        theirs.step()
    np.testing.assert_allclose(ours.state_dict()["momentum_buffers"][0], theirs.state[tensor]["momentum_buffer"].numpy(), rtol=1e-12)
    state = ours.state_dict()
    ours.load_state_dict({"state": {0: {"momentum_buffer": theirs.state[tensor]["momentum_buffer"].numpy().copy()}},
                          "param_groups": state["param_groups"]})
    grad = RNG.normal(size=(4, 6))
    tensor.grad = torch.tensor(grad)
    ours.step([grad])
    theirs.step()
    np.testing.assert_allclose(param, tensor.detach().numpy(), rtol=1e-12)


def test_a_missing_buffer_starts_alone_like_torch():
    torch = pytest.importorskip("torch")
    params = [RNG.normal(size=5), RNG.normal(size=7)]
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    ours = SGD(params, lr=0.1, momentum=0.9, dampening=0.5)
    theirs = torch.optim.SGD(tensors, lr=0.1, momentum=0.9, dampening=0.5)

    def both_step():
        grads = [RNG.normal(size=p.shape) for p in params]
        for tensor, grad in zip(tensors, grads):
            tensor.grad = torch.tensor(grad)
        ours.step(grads)
        theirs.step()

    both_step()
    state = ours.state_dict()
    del state["state"][1]  # as if the second parameter had no state yet (torch's layout alone)
    ours.load_state_dict({key: state[key] for key in ("state", "param_groups", "steps")})
    del theirs.state[tensors[1]]
    both_step()
    both_step()
    for param, tensor in zip(params, tensors):
        np.testing.assert_allclose(param, tensor.detach().numpy(), rtol=1e-12)


def test_parameters_and_gradients_may_not_share_memory():
    a, b = np.ones(50_000), np.ones(50_000)
    with pytest.raises(ValueError, match=r"is in param_groups\[0\] twice"):
        SGD([a, a], lr=0.1)
    with pytest.raises(ValueError, match="two parameters share memory"):
        SGD([a, a[10:]], lr=0.1)
    optimizer = SGD([a, b], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="a gradient shares memory with another parameter"):
        optimizer.step([b, a])
    storage = np.ones(50_001)
    shifted = SGD([storage[:50_000]], lr=0.1)
    with pytest.raises(ValueError, match="a gradient shares memory"):
        shifted.step([storage[1:]])  # its own parameter, shifted: the threads would race
    optimizer.step([a, np.zeros(50_000)])  # a gradient may be its own parameter's memory
    np.testing.assert_allclose(a, 0.9)


def test_fortran_ordered_parameters():
    param = np.asfortranarray(RNG.normal(size=(4, 6)))
    expected = param.copy()
    grad = RNG.normal(size=(4, 6))
    SGD([param], lr=0.5).step([grad])
    np.testing.assert_allclose(param, expected - 0.5 * grad, rtol=1e-15)


def test_nan_gradients_propagate_like_torch():
    param = np.ones(3)
    ours = SGD([param], lr=0.1, momentum=0.9)
    ours.step([np.array([np.nan, 1.0, np.inf])])
    assert np.isnan(param[0]) and param[1] == pytest.approx(0.9) and np.isneginf(param[2])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(lr=-0.1), ValueError, r"Invalid learning rate \(lr\): -0.1"),
        (dict(lr=0.1, momentum=-0.5), ValueError, r"Invalid momentum value: -0.5"),
        (dict(lr=0.1, weight_decay=-1e-4), ValueError, r"Invalid weight_decay value: -0.0001"),
        (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError, r"Nesterov momentum requires a momentum and zero dampening"),
        (dict(lr=0.1, momentum=0.0, nesterov=True), ValueError, r"Nesterov momentum requires a momentum and zero dampening"),
        (dict(lr=np.nan), ValueError, r"lr must be finite"),
        (dict(lr="0.1"), TypeError, r"lr must be a real number"),
        (dict(lr=0.1, momentum=0.9, dampening=0.1, convention="d2l"), ValueError, r"dampening is PyTorch's parameter"),
        (dict(lr=0.1, convention="adamw"), ValueError, r"convention must be one of"),
    ],
)
def test_bad_hyperparameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        SGD([np.zeros(3)], **kwargs)


def test_a_bad_assignment_changes_nothing():
    opt = SGD([np.zeros(3)], lr=0.1, momentum=0.9, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        opt.dampening = 0.5
    assert opt.dampening == 0.0
    with pytest.raises(AttributeError, match="cannot be set"):
        opt.params = []


def test_bad_parameters_and_gradients_update_nothing():
    with pytest.raises(TypeError, match="float32 and float64 are allowed"):
        SGD([np.zeros(3, dtype=np.int64)], lr=0.1)
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[0\] is read-only"):
        SGD([frozen], lr=0.1)
    with pytest.raises(ValueError, match="not contiguous"):
        SGD([np.zeros((4, 4))[:, ::2]], lr=0.1)
    with pytest.raises(TypeError, match="params must be a list"):
        SGD(np.zeros(3), lr=0.1)
    params = [np.ones(3), np.ones((2, 2), dtype=np.float32)]
    opt = SGD(params, lr=0.1, momentum=0.9)
    for grads, error, match in [
        ([np.ones(3)], ValueError, r"grads has 1 gradients for 2 parameters"),
        ([np.ones(3), np.ones(4, dtype=np.float32)], ValueError, r"gradient 1 has shape \(4,\); its parameter has shape \(2, 2\)"),
        ([np.ones(3), np.ones((2, 2), complex)], TypeError, r"gradient 1 has dtype complex128; its parameter has dtype float32"),
    ]:
        with pytest.raises(error, match=match):
            opt.step(grads)
        np.testing.assert_array_equal(params[0], 1.0)  # the first parameter was not touched either
        assert opt.steps == 0 and opt.state_dict()["momentum_buffers"] == [None, None]


@pytest.mark.parametrize("change, match", [
    (lambda s: {**s, "extra": 1}, r"a state has the keys .* got unknown \['extra'\]"),
    (lambda s: {k: v for k, v in s.items() if k != "param_groups"}, r"needs both 'state' and 'param_groups'"),
    (lambda s: {**s, "hyperparameters": {**s["hyperparameters"], "foo": 1}}, r"the state's hyperparameters must be"),
    (lambda s: {**s, "hyperparameters": {k: v for k, v in s["hyperparameters"].items() if k != "lr"}},
     r"the state's hyperparameters must be"),
    (lambda s: {**s, "steps": -1}, r"the state's steps must be an integer >= 0"),
    (lambda s: {**s, "momentum_buffers": s["momentum_buffers"][:1]}, r"the state has 1 buffers for 2 parameters"),
])
def test_a_bad_state_changes_nothing(change, match):
    params = [np.ones(3), np.ones(2)]
    opt = SGD(params, lr=0.1, momentum=0.9)
    opt.step([np.ones(3), np.ones(2)])
    before = opt.state_dict()
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(change(opt.state_dict()))
    after = opt.state_dict()
    assert after["hyperparameters"] == before["hyperparameters"] and after["steps"] == before["steps"] == 1
    for a, b in zip(after["momentum_buffers"], before["momentum_buffers"]):
        np.testing.assert_array_equal(a, b)
    opt.step([np.ones(3), np.ones(2)])  # and it still steps


def test_the_parameters_are_fixed_at_construction():
    opt = SGD([np.ones(3)], lr=0.1)
    assert isinstance(opt.params, tuple)
    with pytest.raises(TypeError):
        opt.params[0] = np.zeros(3)


def test_gradients_of_another_float_dtype_are_cast_to_the_parameters():
    # float64 gradients for float32 parameters: the step of their float32 rounding, as NumPy
    # would cast them (within the kind); integers are real numbers too
    rng = np.random.default_rng(3)
    params = [rng.normal(size=5).astype(np.float32), rng.normal(size=3)]
    twins = [p.copy() for p in params]
    grads = [rng.normal(size=5), np.arange(3)]
    polyak.optim.SGD(params, lr=0.1, momentum=0.9).step(grads)
    polyak.optim.SGD(twins, lr=0.1, momentum=0.9).step([grads[0].astype(np.float32), grads[1].astype(np.float64)])
    for p, t in zip(params, twins):
        np.testing.assert_array_equal(p, t)
    assert params[0].dtype == np.float32
