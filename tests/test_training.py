"""The shipped MNIST digits, the training loop and `minicnn train` (quick versions: the full
default run, >= 97% held-out accuracy, is run separately, see docs/training.md)."""
import gzip
import hashlib
import io
import json
import re

import numpy as np
import pytest

from minicnn import cli, data, layers, models, training


# --------------------------------------------------------------------------- data

def test_mnist_loads_offline_with_its_checks():
    images, labels = data.load_mnist()
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert tuple(np.bincount(labels)) == data.DIGIT_COUNTS
    assert images.max() == 255 and images.min() == 0
    raw = images.tobytes()
    header = (2051).to_bytes(4, "big") + (10000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    assert hashlib.md5(header + raw).hexdigest() == data.IMAGES_MD5
    images[0] = 0   # a copy: the next load is unaffected
    assert data.load_mnist()[0][0].any()


def test_idx_parsing_refuses_wrong_files():
    good = (2049).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes([1, 2, 3])
    np.testing.assert_array_equal(data.parse_idx(good, 2049, "labels"), [1, 2, 3])
    with pytest.raises(data.DataError, match="magic number is 2049, expected 2051"):
        data.parse_idx(good, 2051, "images")
    with pytest.raises(data.DataError, match="header says"):
        data.parse_idx(good[:-1], 2049, "labels")
    with pytest.raises(data.DataError, match="too short"):
        data.parse_idx(b"\x00\x00", 2049, "labels")


def test_the_shipped_files_are_the_published_ones():
    from importlib import resources
    for name, md5 in ((data.IMAGES_FILE, data.IMAGES_MD5), (data.LABELS_FILE, data.LABELS_MD5)):
        with resources.files("minicnn.data").joinpath(name).open("rb") as fh:
            assert hashlib.md5(gzip.decompress(fh.read())).hexdigest() == md5
    readme = resources.files("minicnn.data").joinpath("README.md").read_text(encoding="utf-8")
    assert "CC BY-SA 3.0" in readme and "LeCun" in readme and data.IMAGES_MD5 in readme


def test_split_is_exact_disjoint_stratified_and_seeded():
    _, labels = data.load_mnist()
    train, val, test = data.split_indices(labels, (8000, 1000, 1000), seed=0)
    assert (len(train), len(val), len(test)) == (8000, 1000, 1000)
    assert len(set(train) | set(val) | set(test)) == 10000
    share = np.bincount(labels) / 10000
    for part in (train, val, test):
        counts = np.bincount(labels[part], minlength=10)
        assert np.all(np.abs(counts - share * len(part)) <= 1)   # each digit in proportion, +-1
    again = data.split_indices(labels, (8000, 1000, 1000), seed=0)
    other = data.split_indices(labels, (8000, 1000, 1000), seed=1)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    assert not np.array_equal(test, other[2])
    with pytest.raises(ValueError, match="sum to at most"):
        data.split_indices(labels, (9000, 1000, 1000))


def test_splits_are_padded_to_lenet_size_and_scaled():
    s = data.mnist_splits((50, 20, 30))
    x, y = s["train"]
    assert x.shape == (50, 1, 32, 32) and x.dtype == np.float32 and y.shape == (50,)
    assert x.max() == 1.0 and x.min() == 0.0
    assert not x[:, :, :2].any() and not x[:, :, :, -2:].any()   # the 2-pixel zero border
    images, labels = data.load_mnist()
    idx = data.split_indices(labels, (50, 20, 30))[2]
    np.testing.assert_array_equal(s["test"][0][:, 0, 2:30, 2:30] * 255, images[idx].astype(np.float32))
    np.testing.assert_array_equal(s["test"][1], labels[idx])


# --------------------------------------------------------------------------- the loop

def test_random_shift_moves_each_image_and_leaves_the_input_alone():
    x = np.zeros((2, 1, 6, 6), np.float32)
    x[:, 0, 2, 3] = 1
    before = x.copy()
    out = training.random_shift(x, 2, np.random.default_rng(0))
    np.testing.assert_array_equal(x, before)
    shifts = np.random.default_rng(0).integers(-2, 3, size=(2, 2))
    for i, (dy, dx) in enumerate(shifts):
        assert out[i, 0, 2 + dy, 3 + dx] == 1 and out[i].sum() == 1
    assert training.random_shift(x, 0, np.random.default_rng(0)) is x


def test_a_short_training_run_learns(capsys):
    s = data.mnist_splits((600, 200, 0))
    model = models.lenet5(seed=0)
    history = training.train(model, s["train"], s["val"], epochs=1, seed=0, augment=2)
    first, last = np.mean(history["batch_loss"][:5]), np.mean(history["batch_loss"][-5:])
    assert last < 0.8 * first
    assert history["val_accuracy"][0] > 0.4          # chance is 0.1
    assert training.evaluate(model, *s["val"])["accuracy"] == history["val_accuracy"][0]
    out = capsys.readouterr().out
    assert re.search(r"epoch 1/1 \[#+\] 600/600 loss \d\.\d{4} acc \d\.\d{4} \d+ img/s", out)
    assert "validation: loss" in out
    assert not model[0].training


def test_same_seed_same_run_other_seed_other_run():
    s = data.mnist_splits((160, 0, 0))
    runs = []
    for seed in (5, 5, 6):
        model = models.lenet5(seed=seed)
        h = training.train(model, s["train"], epochs=1, batch_size=32, seed=seed, augment=2, progress=False)
        runs.append((h["batch_loss"], model.state_dict()))
    assert runs[0][0] == runs[1][0]
    for k in runs[0][1]:
        np.testing.assert_array_equal(runs[0][1][k], runs[1][1][k])
    assert runs[0][0] != runs[2][0]


def test_train_refuses_bad_arguments():
    model = models.lenet5()
    x = np.zeros((4, 1, 32, 32), np.float32)
    with pytest.raises(ValueError, match="same number"):
        training.train(model, (x, [1, 2]), progress=False)
    with pytest.raises(ValueError, match="positive"):
        training.train(model, (x, [1, 2, 3, 4]), epochs=0, progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        training.train(model, (x, [1, 2, 3, 4]), optimizer="rmsprop", progress=False)


def test_progress_prints_fifths_to_a_log_and_redraws_on_a_terminal():
    log = io.StringIO()
    p = training.Progress(log)
    p.start("epoch 1/1")
    for done in range(10, 101, 10):
        p.update(done, 100, 0.5, 0.9, 1000)
    p.update(100, 100, 0.5, 0.9, 1000, final=True)
    lines = log.getvalue().splitlines()
    assert len(lines) == 5 and lines[-1].startswith("epoch 1/1 [########################] 100/100")

    class Tty(io.StringIO):
        def isatty(self):
            return True
    tty = Tty()
    p = training.Progress(tty)
    p.start("e")
    p.update(50, 100, 1, 0.5, 10)
    p.update(100, 100, 1, 0.5, 10, final=True)
    assert tty.getvalue().count("\r") == 2 and tty.getvalue().endswith("\n")


def test_cosine_schedule_ends_at_final_lr():
    assert training.cosine_lr(1.0, 0.1, 0, 10) == 1.0
    assert abs(training.cosine_lr(1.0, 0.1, 10, 10) - 0.1) < 1e-12
    assert abs(training.cosine_lr(1.0, 0.0, 5, 10) - 0.5) < 1e-12


def test_training_curve_figure_plots_the_history():
    h = {"train_loss": [1.0, 0.5], "train_accuracy": [0.6, 0.8], "val_loss": [0.9, 0.6],
         "val_accuracy": [0.7, 0.75], "batch_loss": list(np.linspace(2, 0.4, 40))}
    fig = training.training_curve_figure(h)
    ax_loss, ax_acc = fig.axes
    lines = {line.get_label(): line for line in ax_acc.get_lines()}
    np.testing.assert_array_equal(lines["validation"].get_ydata(), [0.7, 0.75])
    assert len(ax_loss.get_lines()) == 4


# --------------------------------------------------------------------------- the command

def test_minicnn_train_writes_weights_metrics_and_pictures(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--train-size", "300", "--val-size", "100", "--test-size", "100",
            "--epochs", "1", "--seed", "3"]
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    last = captured.out.rstrip().splitlines()[-1]
    m = re.fullmatch(r"test accuracy: (\d\.\d{4}) \(held-out 100 images\)", last)
    assert m, last
    metrics = json.loads((out / "metrics.json").read_text())
    assert abs(metrics["test_accuracy"] - float(m.group(1))) < 5e-5
    assert metrics["config"]["seed"] == 3 and metrics["config"]["sizes"] == [300, 100, 100]
    assert metrics["test_accuracy"] > 0.2
    for png in ("training_curve.png", "filters.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the weights file rebuilds the network, which scores what metrics.json says on the same test digits
    model = layers.load_model(out / "lenet5.npz")
    test = data.mnist_splits((300, 100, 100))["test"]
    assert training.evaluate(model, *test)["accuracy"] == metrics["test_accuracy"]
    assert layers.read_meta(out / "lenet5.npz")["test_accuracy"] == metrics["test_accuracy"]
    # --require-accuracy: same seed, same result, and a bar it cannot reach fails the command
    assert cli.main(args + ["--quiet", "--require-accuracy", "0.999"]) == 1
    captured = capsys.readouterr()
    assert "below --require-accuracy 0.999" in captured.err
    again = json.loads((out / "metrics.json").read_text())
    assert again["test_accuracy"] == metrics["test_accuracy"] and again["history"] == metrics["history"]


def test_minicnn_train_refuses_bad_sizes(capsys):
    assert cli.main(["train", "--train-size", "9000", "--val-size", "1000", "--test-size", "1000"]) == 2
    assert "add up to at most 10000" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--epochs", "0"])


def test_minicnn_train_says_so_when_there_is_no_gpu(monkeypatch, capsys):
    import minicnn.cuda as mc
    monkeypatch.setattr(mc, "is_available", lambda: False)
    assert cli.main(["train", "--backend", "cuda", "--train-size", "10"]) == 2
    assert "--backend cuda needs a CUDA GPU" in capsys.readouterr().err
