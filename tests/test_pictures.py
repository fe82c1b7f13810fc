"""The lectures' pictures (minicnn.pictures): the data in each figure is what minicnn computes."""
import numpy as np
import pytest

import minicnn
from minicnn import examples, explain, models, pictures
from minicnn.layers import Conv2D, Flatten, Dense, ReLU, Sequential, Tanh

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def grey():
    return pictures.photo(gray=True)


def _panel(fig, title_start):
    for ax in fig.axes:
        if ax.get_title().startswith(title_start):
            return ax
    raise AssertionError(f"no panel titled {title_start!r}: {[a.get_title() for a in fig.axes]}")


def test_the_photo_ships_with_matplotlib_and_is_read_offline():
    colour = pictures.photo()
    assert colour.shape == (3, 150, 128) and colour.dtype == np.float32
    assert 0 <= colour.min() and colour.max() <= 1 and colour.std() > 0.1
    full = pictures.photo(shrink=1)
    assert full.shape == (3, 600, 512)
    # shrinking is minicnn's own average pooling
    np.testing.assert_allclose(colour, minicnn.avg_pool2d(full[None], 4)[0], rtol=1e-6)


def test_handmade_kernel_maps_are_conv2d_outputs(grey):
    kernels = pictures.handmade_kernels()
    assert {"identity", "shift_left", "delete", "sharpen", "edge", "sobel_x", "vertical_line", "horizontal_line",
            "corner"} <= set(kernels)
    maps = pictures.kernel_feature_maps(grey, kernels)
    sobel = np.array(examples.kernels()["sobel_x"]["values"], np.float32)
    np.testing.assert_array_equal(maps["sobel_x"], minicnn.conv2d(grey[None, None], sobel[None, None], None, 1,
                                                                  "same")[0, 0])
    np.testing.assert_array_equal(maps["identity"], grey)
    assert not maps["delete"].any()
    np.testing.assert_array_equal(maps["shift_left"][:, :-1], grey[:, 1:])   # as the Halmstad slide says
    # Sobel x answers vertical edges: a vertical step edge gives a response, a horizontal one none
    step = np.zeros((8, 8), np.float32)
    step[:, 4:] = 1
    edge_maps = pictures.kernel_feature_maps(step, {"sobel_x": sobel}, padding=0)
    assert edge_maps["sobel_x"][:, 2:4].min() == 4 and not pictures.kernel_feature_maps(
        step.T, {"sobel_x": sobel}, padding=0)["sobel_x"].any()


def test_feature_map_figure_shows_exactly_those_maps(grey, tmp_path):
    fig = pictures.kernel_feature_maps_figure()
    maps = pictures.kernel_feature_maps(grey, pictures.handmade_kernels())
    for name in ("sobel_x", "identity", "edge", "corner"):
        shown = _panel(fig, name + " ").images[0].get_array()
        np.testing.assert_array_equal(np.asarray(shown), maps[name])
    colour = _panel(fig, "input photo").images[0].get_array()
    assert colour.shape == (150, 128, 3)
    sobel_img = _panel(fig, "sobel_x ").images[0]
    lo, hi = sobel_img.get_clim()
    assert lo == -hi   # zero-sum kernel: symmetric about 0
    path = pictures.save_png(fig, tmp_path / "sub" / "kernels.png")
    assert open(path, "rb").read(8) == PNG


def test_filters_figure_draws_each_filter():
    w = np.random.default_rng(0).standard_normal((6, 1, 5, 5))
    fig = pictures.filters_figure(w, "test")
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 6
    for k, im in enumerate(images):
        np.testing.assert_array_equal(np.asarray(im.get_array()), w[k, 0])
        assert im.get_clim() == (-np.abs(w[k]).max(), np.abs(w[k]).max())
    assert len([ax for ax in pictures.filters_figure(np.ones((4, 3, 3, 3))).axes if ax.images]) == 12


def test_first_layer_maps_of_a_network_are_its_convolution(grey):
    model = models.lenet5(seed=0)
    maps = pictures.layer_feature_maps(model, grey)
    conv = model[0]
    want = minicnn.conv2d(grey[None, None], conv.weight.value, conv.bias.value)[0]
    np.testing.assert_array_equal(maps, want)
    fig = pictures.layer_feature_maps_figure(model)
    np.testing.assert_array_equal(np.asarray(_panel(fig, "map 3").images[0].get_array()), want[3])
    assert model[0].training   # the model's mode is left as it was


def test_convolution_step_figure_matches_the_halmstad_slide():
    spec = explain.from_example("halmstad-x-kernel-nine-steps")
    fig = pictures.convolution_step_figure(spec["image"], spec["kernel"], at=(1, 1))
    assert fig.get_suptitle() == ("step 5: out[1, 1] = (1x1) + (1x0) + (1x1) + (0x0) + (1x1) + (1x0) + (0x1) + "
                                  "(1x0) + (1x1) = 4")
    products = _panel(fig, "products")
    assert products.get_title() == "products, sum = 4"
    window = np.array(spec["image"])[1:4, 1:4]
    np.testing.assert_array_equal(np.asarray(products.images[0].get_array()), window * np.array(spec["kernel"]))
    output = _panel(fig, "output, step 5 of 9")
    shown = sorted(t.get_text() for t in output.texts)
    assert shown == sorted(["4", "3", "4", "2", "4"])     # steps 1-5 of the slide's 4 3 4 / 2 4 3 / 2 3 4
    window_box = [p for p in _panel(fig, "input").patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
    assert len(window_box) == 1 and window_box[0].get_xy() == (0.5, 0.5) and window_box[0].get_width() == 3
    with pytest.raises(ValueError, match="outside"):
        pictures.convolution_step_figure(spec["image"], spec["kernel"], at=(3, 0))


def test_activation_maximisation_climbs_the_filters_mean_activation():
    model = models.lenet5(seed=0)
    before = [p.value.copy() for p in model.parameters()]
    image, history = pictures.activation_maximisation(model, 5, 3, steps=25, seed=1)
    assert image.shape == (1, 32, 32) and image.dtype == np.float32
    assert 0 <= image.min() and image.max() <= 1
    assert len(history) == 26
    assert history[-1] > history[0] + 0.1
    # the returned activation is what the network computes on the returned image
    again = model[:6].predict(image[None])[0, 3].mean()
    assert abs(again - history[-1]) < 1e-5
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.value, b)   # the network is only read
    assert all(layer.training for layer in model)


def test_activation_maximisation_gradient_is_the_backprop_gradient():
    # on a network that is linear in the input, the mean activation grows by step_size * rms-normalised
    # gradient . gradient each step (until clipping), which a wrong gradient would not do
    rng = np.random.default_rng(0)
    net = Sequential(Conv2D(1, 2, 3, rng=rng, dtype=np.float64), input_shape=(1, 6, 6))
    w = net[0].weight.value[1, 0]
    g = np.zeros((6, 6))
    for i in range(4):
        for j in range(4):
            g[i:i + 3, j:j + 3] += w / 16
    image, hist = pictures.activation_maximisation(net, 0, 1, steps=1, step_size=0.01, seed=0, clip=None)
    expected_gain = 0.01 * np.sum(g * g) / np.sqrt(np.mean(g * g))
    assert abs((hist[1] - hist[0]) - expected_gain) < 1e-5


def test_activation_maximisation_figure_and_a_dense_unit():
    net = Sequential(Conv2D(1, 2, 3, rng=0), ReLU(), Flatten(), Dense(2 * 6 * 6, 3, rng=1), Tanh(),
                     input_shape=(1, 8, 8))
    fig = pictures.activation_maximisation_figure(net, 4, steps=10)
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert len(titles) == 3 and titles[0].startswith("unit 0")
    for t in titles:
        before, after = (float(v) for v in t.split("\n")[1].split(" -> "))
        assert after >= before


def test_digits_figure_marks_mistakes_in_red():
    x = np.zeros((3, 1, 32, 32), np.float32)
    fig = pictures.digits_figure(x, [1, 2, 3], [1, 5, 3])
    titles = [ax.title for ax in fig.axes if ax.images]
    assert [t.get_text() for t in titles] == ["1 -> 1", "2 -> 5", "3 -> 3"]
    assert titles[1].get_color() == "red" and titles[0].get_color() == "black"


SILENT_SCRIPT = """
import warnings
warnings.simplefilter("always")
import numpy as np
from minicnn import cli, explain, models, pictures
net = models.lenet5(seed=0)
figs = [pictures.kernel_feature_maps_figure(), pictures.filters_figure(net[4].weight.value),
        pictures.layer_feature_maps_figure(net), pictures.activation_maximisation_figure(net, 1, steps=3),
        pictures.convolution_step_figure(np.eye(4), np.ones((2, 2)), (1, 2), 1, 1),
        pictures.digits_figure(np.zeros((3, 1, 32, 32)), [1, 2, 3], [1, 2, 4])]
for i, fig in enumerate(figs):
    pictures.save_png(fig, f"fig{i}.png")
assert cli.main(["train", "--out", "run", "--train-size", "64", "--val-size", "32", "--test-size", "32",
                 "--epochs", "1"]) == 0
assert cli.main(["explain", "conv", "--example", "ferrara-5x5-padding-1", "--figure", "step.png"]) == 0
assert cli.main(["summary", "zju-two-class"]) == 0
"""


def test_pictures_training_and_commands_print_nothing_to_stderr(tmp_path):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", SILENT_SCRIPT], capture_output=True, text=True, cwd=tmp_path,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", f"stderr was not empty:\n{proc.stderr}"
