"""Layers, Sequential, the loss, the optimizers, saving, and the lecture tables (minicnn.layers,
minicnn.optim, minicnn.models)."""
import json
import os

import numpy as np
import pytest

import minicnn
from minicnn import examples, layers, models, optim
from minicnn.layers import (AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential, Sigmoid,
                            SoftmaxCrossEntropy, Tanh)

F64 = np.float64


def _layer_gradcheck(make_layer, x, seed=0):
    """gradcheck a layer's backward (input and every parameter) in float64 against central differences."""
    layer = make_layer()
    params0 = [p.value.copy() for p in layer.parameters()]
    y = layer.forward(x)
    grad_out = np.random.default_rng(seed).standard_normal(y.shape)
    gx = layer.backward(grad_out)
    analytic = [gx] + [p.grad for p in layer.parameters()]

    def f(x_, *params):
        fresh = make_layer()
        for p, v in zip(fresh.parameters(), params):
            p.value = v
        return fresh.forward(x_)

    return minicnn.gradcheck(f, [x] + params0, analytic, grad_out=grad_out)


def _smooth_input(rng, shape):
    # distinct values (no max-pool ties), away from ReLU's kink at 0
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(F64) / np.prod(shape) - 0.5
    return np.where(np.abs(x) < 0.01, 0.05, x) + 0.001 * rng.standard_normal(shape)


@pytest.mark.parametrize("name, make, shape", [
    ("conv", lambda: Conv2D(3, 4, 3, stride=2, padding=1, rng=1, dtype=F64), (2, 3, 7, 6)),
    ("conv-same", lambda: Conv2D(2, 3, (3, 1), padding="same", rng=2, dtype=F64, init="glorot"), (2, 2, 5, 4)),
    ("maxpool", lambda: MaxPool2D(2), (2, 3, 6, 6)),
    ("maxpool-overlap", lambda: MaxPool2D(3, 2, 1), (1, 2, 7, 7)),
    ("avgpool", lambda: AvgPool2D(2, 2), (2, 3, 6, 4)),
    ("relu", lambda: ReLU(), (2, 3, 4, 4)),
    ("tanh", lambda: Tanh(), (3, 5)),
    ("sigmoid", lambda: Sigmoid(), (2, 2, 3, 3)),
    ("flatten", lambda: Flatten(), (2, 3, 2, 2)),
    ("dense", lambda: Dense(12, 5, rng=3, dtype=F64), (4, 12)),
    ("dropout", lambda: Dropout(0.4, rng=7), (3, 10)),
])
def test_every_layer_backward_matches_finite_differences(name, make, shape, rng):
    x = _smooth_input(rng, shape)
    result = _layer_gradcheck(make, x)
    assert result, f"{name}: {result}"


def test_gradcheck_of_a_layer_fails_when_its_backward_is_wrong(rng):
    class WrongTanh(Tanh):
        def _backward(self, grad_out):
            x, _ = self._cache
            return grad_out * (1 - np.tanh(x))  # forgot the square
    assert not _layer_gradcheck(WrongTanh, _smooth_input(rng, (2, 6)))


def _tiny_net(dtype=F64, seed=0):
    g = np.random.default_rng(seed)
    return Sequential(
        Conv2D(2, 3, 3, padding=1, rng=g, dtype=dtype), ReLU(), MaxPool2D(2),
        Conv2D(3, 4, 2, rng=g, dtype=dtype, init="glorot"), Tanh(), AvgPool2D(1, 1),
        Flatten(), Dense(4 * 2 * 2, 5, rng=g, dtype=dtype), Sigmoid(), Dropout(0.3, rng=5),
        Dense(5, 3, rng=g, dtype=dtype), input_shape=(2, 6, 6), output="softmax")


def test_sequential_whole_backward_with_the_loss_matches_finite_differences(rng):
    x = _smooth_input(rng, (2, 2, 6, 6))
    labels = np.array([2, 0])
    net = _tiny_net()
    net.eval()  # dropout off: forward must be a fixed function for finite differences
    params0 = [p.value.copy() for p in net.parameters()]
    loss_fn = SoftmaxCrossEntropy()
    loss = loss_fn.forward(net.forward(x), labels)
    gx = net.backward(loss_fn.backward())
    analytic = [gx] + [p.grad for p in net.parameters()]

    def f(x_, *params):
        for p, v in zip(net.parameters(), params):
            p.value = v
        return np.array(SoftmaxCrossEntropy().forward(net.forward(x_), labels))

    result = minicnn.gradcheck(f, [x] + params0, analytic, grad_out=np.array(1.0))
    assert result, str(result)
    assert loss > 0 and len(analytic) == 1 + 8


def test_sequential_backward_in_training_mode_uses_the_same_dropout_mask(rng):
    x = _smooth_input(rng, (2, 2, 6, 6))
    net = _tiny_net()
    y = net.forward(x)
    g = np.random.default_rng(1).standard_normal(y.shape)
    gx = net.backward(g)
    # rebuild the same net and draw the same mask: identical forward, so the same gradient
    net2 = _tiny_net()
    y2 = net2.forward(x)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(gx, net2.backward(g))


def test_layers_compute_what_the_functional_api_computes(rng):
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    conv = Conv2D(3, 5, 3, stride=2, padding=1, rng=0)
    np.testing.assert_array_equal(conv.forward(x), minicnn.conv2d(x, conv.weight.value, conv.bias.value, 2, 1))
    g = rng.standard_normal((2, 5, 5, 5)).astype(np.float32)
    gx, gw, gb = minicnn.conv2d_backward(g, x, conv.weight.value, 2, 1)
    np.testing.assert_array_equal(conv.backward(g), gx)
    np.testing.assert_array_equal(conv.weight.grad, gw)
    np.testing.assert_array_equal(conv.bias.grad, gb)
    pool = MaxPool2D(3, 2)
    np.testing.assert_array_equal(pool.forward(x), minicnn.max_pool2d(x, 3, 2))


def test_float32_stays_float32_through_forward_backward_and_the_optimizers(rng):
    net = models.lenet5(seed=0)
    x = rng.random((3, 1, 32, 32))  # float64 input: the first layer converts it to its float32 weights
    logits = net.forward(x)
    assert logits.dtype == np.float32
    loss = SoftmaxCrossEntropy()
    loss.forward(logits, [1, 2, 3])
    gx = net.backward(loss.backward())
    assert gx.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in net.parameters())
    for opt in (optim.SGD(net, lr=0.1, momentum=0.9, weight_decay=1e-4), optim.Adam(net, lr=1e-3)):
        opt.step()
        assert all(p.value.dtype == np.float32 for p in net.parameters())


def test_nothing_passed_in_is_modified(rng):
    net = _tiny_net(np.float32)
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    x_copy = x.copy()
    y = net.forward(x)
    g = np.ones_like(y)
    g_copy = g.copy()
    net.backward(g)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(g, g_copy)
    flat = Flatten().forward(x)
    flat[:] = 0
    np.testing.assert_array_equal(x, x_copy)  # Flatten returns a new array, not a view
    state = {k: v * 0 for k, v in net.state_dict().items()}
    saved = {k: v.copy() for k, v in state.items()}
    net.load_state_dict(state)
    for p in net.parameters():
        p.value += 1
    for k in state:
        np.testing.assert_array_equal(state[k], saved[k])


def test_a_wrong_input_shape_names_the_layer_and_the_shapes():
    net = models.lenet5()
    with pytest.raises(ValueError) as err:
        net.forward(np.zeros((2, 3, 32, 32), np.float32))
    msg = str(err.value)
    assert "layer 0" in msg and "Conv2D(1, 6" in msg and "(2, 3, 32, 32)" in msg and "(N, 1, H, W)" in msg
    with pytest.raises(ValueError, match=r"Dense\(120, 84\).*\(4, 7\).*"):
        Dense(120, 84).forward(np.zeros((4, 7)))
    with pytest.raises(ValueError, match="Flatten"):
        Dense(12, 3).forward(np.zeros((2, 3, 2, 2)))
    with pytest.raises(ValueError, match=r"layer 2 .*MaxPool2D.*larger than the padded input"):
        Sequential(Conv2D(1, 1, 3), ReLU(), MaxPool2D(4)).forward(np.zeros((1, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"grad_out has shape \(1, 1\).*\(1, 6, 28, 28\)"):
        conv = Conv2D(1, 6, 5)
        conv.forward(np.zeros((1, 1, 32, 32)))
        conv.backward(np.zeros((1, 1)))
    with pytest.raises(RuntimeError, match="before forward"):
        Conv2D(1, 2, 3).backward(np.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match="backend"):
        Conv2D(1, 2, 3, backend="gpu")
    with pytest.raises(ValueError, match="init"):
        Dense(3, 2, init="xavier-ish")
    with pytest.raises(TypeError, match="not a minicnn.layers.Layer"):
        Sequential(Conv2D(1, 2, 3), "relu")
    with pytest.raises(ValueError, match="Dropout"):
        Dropout(1.0)


def test_initialisation_is_seeded_and_has_the_he_and_glorot_scales():
    a, b, c = models.lenet5(seed=3), models.lenet5(seed=3), models.lenet5(seed=4)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        np.testing.assert_array_equal(pa.value, pb.value)
        if pa.name == "weight":
            assert not np.array_equal(pa.value, pc.value)
    he = Conv2D(64, 64, 3, rng=0).weight.value
    assert abs(he.std() - np.sqrt(2 / (64 * 9))) < 0.02 * np.sqrt(2 / (64 * 9))
    gl = Dense(300, 100, init="glorot", rng=0).weight.value
    limit = np.sqrt(6 / 400)
    assert np.abs(gl).max() <= limit and np.abs(gl).max() > 0.99 * limit
    assert abs(gl.std() - limit / np.sqrt(3)) < 0.02 * limit
    assert not Conv2D(1, 2, 3).bias.value.any()


# --------------------------------------------------------------------------- optimizers

def _param(values, grad):
    p = layers.Parameter("w", np.array(values, dtype=np.float64))
    p.grad = np.array(grad, dtype=np.float64)
    return p


def test_sgd_steps_match_hand_computed_updates():
    p = _param([1.0, 2.0], [0.5, -1.0])
    optim.SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.value, [0.95, 2.1], rtol=0, atol=1e-15)

    # momentum 0.9: v1 = g1; w1 = w0 - lr v1; v2 = 0.9 v1 + g2; w2 = w1 - lr v2
    p = _param([1.0], [0.5])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    opt.step()
    np.testing.assert_allclose(p.value, [0.95], atol=1e-15)
    p.grad = np.array([-1.0])
    opt.step()                     # v2 = 0.45 - 1 = -0.55; w2 = 0.95 + 0.055
    np.testing.assert_allclose(p.value, [1.005], atol=1e-15)

    p = _param([2.0], [0.0])
    optim.SGD([p], lr=0.5, weight_decay=0.1).step()   # g = 0 + 0.1 * 2 = 0.2; w = 2 - 0.1
    np.testing.assert_allclose(p.value, [1.9], atol=1e-15)


def test_adam_steps_match_hand_computed_updates():
    p = _param([1.0], [0.5])
    opt = optim.Adam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    opt.step()
    # m = 0.05, v = 0.00025; m_hat = 0.5, v_hat = 0.25; w = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    np.testing.assert_allclose(p.value, [0.900000002], atol=1e-12)
    p.grad = np.array([-1.0])
    opt.step()
    # m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975
    # m_hat = -0.055 / 0.19 = -0.28947368, v_hat = 0.00124975 / 0.001999 = 0.62518759
    # w = 0.900000002 + 0.1 * 0.28947368 / (0.79068805 + 1e-8) = 0.93661035
    np.testing.assert_allclose(p.value, [0.93661035], atol=1e-8)


def test_optimizers_refuse_a_missing_gradient_and_bad_settings():
    p = layers.Parameter("w", np.zeros(2))
    with pytest.raises(RuntimeError, match="no gradient"):
        optim.SGD([p], lr=0.1).step()
    with pytest.raises(ValueError, match="lr"):
        optim.Adam([p], lr=0)
    with pytest.raises(ValueError, match="momentum"):
        optim.SGD([p], lr=0.1, momentum=1.5)
    with pytest.raises(ValueError, match="no parameters"):
        optim.SGD([], lr=0.1)


def test_a_few_optimizer_steps_reduce_the_loss(rng):
    for make in (lambda n: optim.SGD(n, lr=0.05, momentum=0.9), lambda n: optim.Adam(n, lr=1e-2)):
        net = _tiny_net(np.float32, seed=1)
        net.eval()
        x = rng.standard_normal((8, 2, 6, 6)).astype(np.float32)
        y = rng.integers(0, 3, 8)
        loss_fn, opt = SoftmaxCrossEntropy(), make(net)
        losses = []
        for _ in range(60):
            losses.append(loss_fn.forward(net.forward(x), y))
            net.backward(loss_fn.backward())
            opt.step()
        assert losses[-1] < 0.5 * losses[0]


# --------------------------------------------------------------------------- saving

def test_save_and_load_round_trip_without_pickle(tmp_path, rng):
    net = models.lenet5(seed=1)
    x = rng.random((4, 1, 32, 32)).astype(np.float32)
    path = net.save(tmp_path / "w", meta={"note": "hello", "acc": 0.5})
    assert path.endswith(".npz") and os.path.exists(path)
    with np.load(path, allow_pickle=False) as data:   # every entry is a plain array
        assert "0.weight" in data.files and data["0.weight"].shape == (6, 1, 5, 5)
        arch = json.loads(str(data["__architecture__"]))
    assert [layer["type"] for layer in arch["layers"]][:3] == ["Conv2D", "Tanh", "AvgPool2D"]
    rebuilt = layers.load_model(path)
    np.testing.assert_array_equal(rebuilt.forward(x), net.forward(x))
    assert str(rebuilt.summary()) == str(net.summary())
    other = models.lenet5(seed=2)
    assert not np.array_equal(other.forward(x), net.forward(x))
    other.load(path)
    np.testing.assert_array_equal(other.forward(x), net.forward(x))
    assert layers.read_meta(path) == {"note": "hello", "acc": 0.5}
    with pytest.raises(ValueError, match="different network"):
        models.zju_two_class().load(path)


# A network with every layer type and non-default settings, saved by minicnn at commit 926e212 (when the
# layers were the single module minicnn/layers.py) with the parameter values of _golden_values; the .npz
# file's bytes, zlib-compressed, in base64.  Files saved before the package split must keep loading.
def _golden_net():
    return Sequential(
        Conv2D(1, 2, 3, padding="same", rng=0), ReLU(),
        Conv2D(2, 2, (3, 1), stride=(2, 1), padding=(1, 0), dtype=F64, init="glorot", rng=1, label="narrow"),
        Tanh(), MaxPool2D(3, 2, 1), AvgPool2D((1, 2)), Dropout(0.25, rng=2), Flatten(),
        Dense(8, 3, rng=3), Sigmoid(), input_shape=(1, 6, 8), output="sigmoid")


def _golden_values(net):
    for i, (_, p) in enumerate(net.named_parameters()):
        p.value = ((np.arange(p.size).reshape(p.shape) % 7 - 3) * 0.125 + i).astype(p.value.dtype)
    return net


SAVED_BEFORE_THE_SPLIT = (
    "eNrVWE1oE0EUnrRNkRCkYL2vekgLaUw2aYhV2oqll1oJ1h5UZE2TzQ+2Sdzd/lkKBT0ELFjQ4g8evBXvgrfSY/HgoWeFHnv3okXU"
    "N8kbOjtu/naXWjf5mP2Z9968772Z3XnJic6uAVI7zpGpl09//MbDT3pJOLSoFnJ5I1QsL3tID9nFnqx9fmN6MnnbQxbISiCj6mkt"
    "MCQFrmRjgaAUyJY0Q0sVlZKWUen98dSsrsJ9PZ8qq3DdJwelSFCKwr8/KK1KNg4fITvbhKwByDYOaRiuATvD7TxLmlj48t34zFjw"
    "VVmYKaR0xkEF+1Xc4cCu7xwH0gghoyNmH3oCxa98JGUhkvvYc7+xF4lWIylXIxlxEEl6HI7U2p/Y/sKWjNYaD7Yd2HaOtipnZufy"
    "x2dhPsKyKcIb2G/DHW5ciDA9vOhLt+DLoe/Caz7SCXuRbi1fIcYJZ/6AN3nwpAxYAqwBngAqgPVRN54Jc3lzy89HOmGK9Dr2W3eH"
    "Gxci/QJ8eAV4K/jx7f7jd8yPXvBDUVJaOl8w1LQxr6mKwjw6dbomwVprj6YT8XhLPjn2aAXGcB6QBZQAGmAOkAIY+GwIIOE5fVYA"
    "FLFN4zlFCDAFUAEPAfN4XkRdBdQ7C7gIiKDOIKef6S6jPJVTADogj/Jl1MuP7S7qY7ri3HkCcE+wU+L087ZEf3UcUw59L+F1xmLs"
    "szi+ZRyfhvLiOBnnBva18oeeX0N7lI8FgAwYs7Cb5vplufHy+lYEfhWUY5yyGKrohzjuSAP+2tUlC7oecHzxcgrH/6M6MY9yuqIW"
    "cdZxjBoXt2a5E7HQU0bfMgjGY65OzqQwX1SLeGVaiH0WOShxczGK3NHnq4igEN9mem/i/euAaQe5ZNf+Scpp+T/I6YiDnJZdymlx"
    "foQtdNnNabpOxxqspTMcd6K+IvbREFTvosP5cYuLd/4fzI9JtL9Edz1oq4T+uzFXTsJay+el7GJeshy3y/1VXJNyJ5D7SBPO7Lzn"
    "nHIftlgT7HI/xs3hsrAWO+G8LNwP43cq9X3QwXjHuTXKQLBv3eNeM8Y423qdbw6779Ms6mN+zmOcVIt3YKLJ+7QdXdET9M001cYe"
    "oN1Yszlj3k2+P1jy8jUDRZlTjdTRLjLmqfVkbZ1dZGzwWDaRR7vIRW4FEmeFhG/z5TZ3lbTPJYxiHPXJuJLJ+Lyvwe4rhJGl9/u5"
    "TEhOeDoGOs211V2snfrJ0bFW5ZivtIqStB5ZwYqjzyTZ7SFcdVKUozXAfaz8mC1+Ajm5gUVaH9vACpjZ4kEH4aplohytRVlb/NBJ"
    "TJWpv3zc3PKvYyXGbHGvi3BVG1GO1kVorYOi1yT3xkssqySiBjoXaJ5TmMd8cIaYZkZywttdra3Abw963zlLr/4A8X74rw=="
)


def test_a_file_saved_before_the_layers_package_split_still_loads(tmp_path, rng):
    import base64
    import zlib
    old = tmp_path / "saved_by_926e212.npz"
    old.write_bytes(zlib.decompress(base64.b64decode(SAVED_BEFORE_THE_SPLIT)))
    want = _golden_values(_golden_net())
    model = layers.load_model(old)
    assert repr(model) == repr(want) and str(model.summary()) == str(want.summary())
    assert [layer.label for layer in model] == [layer.label for layer in want]
    assert model[2].label == "narrow" and model[0].padding == "same" and model.output == "sigmoid"
    assert model.architecture() == want.architecture()
    for (name, got), (_, exp) in zip(model.named_parameters(), want.named_parameters(), strict=True):
        assert got.value.dtype == exp.value.dtype, name
        np.testing.assert_array_equal(got.value, exp.value, err_msg=name)
    assert model[2].weight.value.dtype == F64 and model[0].weight.value.dtype == np.float32
    x = rng.standard_normal((3, 1, 6, 8)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x), want.predict(x))
    assert layers.read_meta(old) == {"written by": "minicnn 926e212 (layers.py)"}
    fresh = _golden_net().load(old)   # into an existing model too
    np.testing.assert_array_equal(fresh.predict(x), want.predict(x))
    # and today's save writes the same entries and the same architecture text
    new = want.save(tmp_path / "saved_now", meta={"written by": "minicnn 926e212 (layers.py)"})
    with np.load(old, allow_pickle=False) as a, np.load(new, allow_pickle=False) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
            assert a[key].dtype == b[key].dtype, key



def test_the_package_exports_the_public_names_and_each_says_minicnn_layers_is_its_home():
    """minicnn.layers is a package of modules; its public names are the ones the single module had, and
    each class and function reports `minicnn.layers` as its module (reprs, pickles, the course's checks)."""
    public = {"BACKENDS", "LAYER_TYPES", "AvgPool2D", "Conv2D", "Dense", "Dropout", "Flatten", "Layer", "MaxPool2D",
              "Parameter", "ReLU", "Sequential", "Sigmoid", "SoftmaxCrossEntropy", "Summary", "Tanh", "accuracy",
              "init_weights", "load_model", "read_meta"}
    assert set(layers.__all__) == public
    for name in public:
        obj = getattr(layers, name)
        if callable(obj):
            assert obj.__module__ == "minicnn.layers", name
    assert repr(Conv2D) == "<class 'minicnn.layers.Conv2D'>"
    assert set(layers.LAYER_TYPES) == {"Conv2D", "Dense", "MaxPool2D", "AvgPool2D", "ReLU", "Tanh", "Sigmoid",
                                       "Flatten", "Dropout"}

# --------------------------------------------------------------------------- the lecture tables

def _slide_shape(shape, is_input):
    """minicnn's (C, H, W) / (n,) in the ZJU-UoE slide's notation: (H, W, C), (n, 1), one-channel input (H, W)."""
    if len(shape) == 1:
        return [shape[0], 1]
    c, h, w = shape
    return [h, w] if (is_input and c == 1) else [h, w, c]


def test_zju_two_class_summary_is_the_lecture_table_with_the_corrected_counts():
    ex = examples.get("zju-uoe-two-class-cnn")
    table = models.zju_two_class().summary()
    assert len(table.rows) == len(ex.expected["rows"])
    for row, want in zip(table.rows, ex.expected["rows"]):
        assert row["layer"] == want["layer"]
        assert _slide_shape(row["shape"], row["type"] == "Input") == want["shape"]
        assert row["size"] == want["size"]
        assert row["params"] == want["params"]
    assert table.total_params == ex.expected["total_params"] == 47773
    assert ex.slide_printed["total_params"] != table.total_params
    text = table.format("hwc")
    assert "(28,28,6)" in text and "(100,1)" in text and "TOTAL  47773 parameters" in text


def test_lenet5_summary_is_the_sjtu_table():
    ex = examples.get("sjtu-lenet5")
    table = models.lenet5().summary()
    rows = table.rows[1:]   # the SJTU table has no input row in the catalogue
    kinds = {"Convolution": "Conv2D", "Average Pooling": "AvgPool2D", "FC": "Dense"}
    assert len(rows) == len(ex.expected["rows"]) == len(ex.params["layers"])
    for row, want, spec in zip(rows, ex.expected["rows"], ex.params["layers"]):
        assert row["type"] == kinds[want["layer"]]
        assert list(row["shape"]) == want["shape_chw"]
        assert row["activation"] == spec["activation"]   # tanh everywhere, softmax last
    assert table.rows[0]["shape"] == tuple(ex.params["input_chw"])
    assert table.total_params == models.lenet5().n_params() == 61706
    assert table.total_params == sum(r["params"] for r in minicnn.shapes.layer_table(
        ex.params["input_chw"], ex.params["layers"]))


def test_summary_unfolded_lists_every_layer_with_the_same_total():
    net = models.zju_two_class()
    full = net.summary(fold=False)
    assert len(full.rows) == len(net) + 1
    assert full.total_params == net.summary().total_params
    assert [r["type"] for r in full.rows][1:3] == ["Conv2D", "ReLU"]
    with pytest.raises(ValueError, match="input shape"):
        Sequential(Dense(3, 2)).summary()
    with pytest.raises(ValueError, match=r"layer 0 Conv2D\(3, 6"):
        Sequential(Conv2D(3, 6, 5)).summary((1, 32, 32))


# --------------------------------------------------------------------------- the CUDA backend

def _cuda_simulator():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        return None
    try:
        import minicnn.cuda as mc
    except ImportError:
        return None
    return mc


@pytest.mark.skipif(_cuda_simulator() is None, reason="needs minicnn.cuda and NUMBA_ENABLE_CUDASIM=1 "
                    "(a real GPU is exercised by the CUDA test run)")
def test_cuda_backend_layers_agree_with_cpu(rng):
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    for cpu, gpu in ((Conv2D(2, 2, 3, padding=1, rng=0), Conv2D(2, 2, 3, padding=1, rng=0, backend="cuda")),
                     (MaxPool2D(2), MaxPool2D(2, backend="cuda")), (AvgPool2D(2), AvgPool2D(2, backend="cuda"))):
        y = cpu.forward(x)
        np.testing.assert_allclose(gpu.forward(x), y, rtol=1e-5, atol=1e-5)
        g = np.ones_like(y)
        np.testing.assert_allclose(gpu.backward(g), cpu.backward(g), rtol=1e-5, atol=1e-5)
        for pc, pg in zip(cpu.parameters(), gpu.parameters()):
            np.testing.assert_allclose(pg.grad, pc.grad, rtol=1e-5, atol=1e-5)
        # without the input gradient (a first layer in training): None, the same parameter grads
        assert gpu.backward(2 * g, input_grad=False) is None and cpu.backward(2 * g, input_grad=False) is None
        for pc, pg in zip(cpu.parameters(), gpu.parameters()):
            np.testing.assert_allclose(pg.grad, pc.grad, rtol=1e-5, atol=1e-5)


def test_odd_inputs_are_converted_or_refused_by_name():
    net = Sequential(Conv2D(1, 2, 3, rng=0), ReLU(), Flatten(), Dense(2 * 3 * 3, 2, rng=1))
    ints = np.arange(25).reshape(1, 1, 5, 5)
    assert net.forward(ints).dtype == np.float32
    np.testing.assert_array_equal(net.forward(ints), net.forward(ints.astype(np.float32)))
    with pytest.raises(TypeError, match=r"layer 0 Conv2D.*real numbers.*complex"):
        net.forward(ints.astype(complex))
    with pytest.raises(TypeError, match=r"ReLU.*real numbers"):
        net[1].forward(np.array([["a"]]))
    assert ReLU().forward(np.array([[1, -2]])).dtype == np.float64
