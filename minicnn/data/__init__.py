"""Real data that ships with minicnn, so training runs offline: the MNIST test set.

    from minicnn import data
    splits = data.mnist_splits()            # {'train': (x, y), 'val': (x, y), 'test': (x, y)}
    x, y = splits["train"]                  # x (8000, 1, 32, 32) float32 in [0, 1], y (8000,) int64

The files are MNIST's original test set (10,000 digits; Yann LeCun, Corinna Cortes and
Christopher J. C. Burges; CC BY-SA 3.0, see README.md beside this file).  They are read with
gzip and NumPy; the IDX magic numbers, the counts, the MD5 of the images and labels and the
per-digit counts are checked on every load.
"""
from __future__ import annotations

import gzip
import hashlib
from functools import lru_cache
from importlib import resources

import numpy as np

IMAGES_FILE = "t10k-images-idx3-ubyte.gz"
LABELS_FILE = "t10k-labels-idx1-ubyte.gz"
IMAGES_MD5 = "2646ac647ad5339dbf082846283269ea"  # of the uncompressed file, as published with the data
LABELS_MD5 = "27ae3e4e09519cfbb04c329615203637"
DIGIT_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
DEFAULT_SIZES = (8000, 1000, 1000)  # train, validation, test


class DataError(ValueError):
    """A data file is missing, truncated or not what it claims to be."""


def _read(name: str) -> bytes:
    path = resources.files(__package__).joinpath(name)
    try:
        with path.open("rb") as fh:
            return gzip.decompress(fh.read())
    except FileNotFoundError:
        raise DataError(f"{name} is missing from the minicnn package ({path}); reinstall minicnn") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{name} is not a readable gzip file: {exc}") from None


def parse_idx(raw: bytes, magic: int, what: str) -> np.ndarray:
    """Decode an IDX file: big-endian int32 magic, then one int32 per dimension, then uint8 data.

    raw: the uncompressed bytes; magic: 2051 for images (3 dims), 2049 for labels (1 dim).
    Returns a uint8 array of the dimensions the header gives."""
    ndim = magic & 0xFF
    if len(raw) < 4:
        raise DataError(f"{what}: file too short for an IDX header ({len(raw)} bytes)")
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        raise DataError(f"{what}: IDX magic number is {got}, expected {magic}")
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{what}: file too short for an IDX header ({len(raw)} bytes)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{what}: header says {dims} = {int(np.prod(dims))} bytes of data, file has {body.size}")
    return body.reshape(dims)


@lru_cache(maxsize=1)
def _mnist(verify: bool):
    raw_images, raw_labels = _read(IMAGES_FILE), _read(LABELS_FILE)
    if verify:
        for name, raw, md5 in ((IMAGES_FILE, raw_images, IMAGES_MD5), (LABELS_FILE, raw_labels, LABELS_MD5)):
            got = hashlib.md5(raw).hexdigest()
            if got != md5:
                raise DataError(f"{name}: MD5 of the uncompressed data is {got}, expected {md5}")
    images = parse_idx(raw_images, 2051, IMAGES_FILE)
    labels = parse_idx(raw_labels, 2049, LABELS_FILE)
    if images.shape != (10000, 28, 28) or labels.shape != (10000,):
        raise DataError(f"unexpected shapes: images {images.shape}, labels {labels.shape}")
    if verify and tuple(np.bincount(labels, minlength=10)) != DIGIT_COUNTS:
        raise DataError(f"per-digit label counts {tuple(np.bincount(labels))} differ from {DIGIT_COUNTS}")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_mnist(verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST test digits.

    Returns: images (10000, 28, 28) uint8 (0 = background, 255 = ink) and labels (10000,) int64,
    new arrays each call."""
    images, labels = _mnist(bool(verify))
    return images.copy(), labels.astype(np.int64)


def to_float(images, pad: int = 2) -> np.ndarray:
    """uint8 images (N, H, W) -> float32 (N, 1, H + 2 pad, W + 2 pad) in [0, 1], zero border.
    pad=2 turns MNIST's 28x28 into LeNet-5's 32x32 input."""
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W), got shape {images.shape}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    n, h, w = images.shape
    out = np.zeros((n, 1, h + 2 * pad, w + 2 * pad), dtype=np.float32)
    out[:, 0, pad:pad + h, pad:pad + w] = images.astype(np.float32) / np.float32(255)
    return out


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers proportional to weights summing to total (ties to the lower index)."""
    exact = total * weights / weights.sum()
    base = np.floor(exact).astype(np.int64)
    extra = total - int(base.sum())
    order = np.argsort(-(exact - base), kind="stable")
    base[order[:extra]] += 1
    return base


def split_indices(labels, sizes=DEFAULT_SIZES, seed: int = 0) -> list[np.ndarray]:
    """Stratified, seeded split of range(len(labels)) into len(sizes) disjoint index arrays.

    Each split gets every class in proportion to its share of the data (largest-remainder
    rounding; the last split is filled first, then the one before, ..., so the held-out test
    split is exactly as large as asked).  Within a class the examples are shuffled with
    numpy.random.default_rng(seed); each returned index array is in shuffled order.
    Same labels, sizes and seed -> the same split on any machine."""
    labels = np.asarray(labels)
    sizes = [int(s) for s in sizes]
    if any(s < 0 for s in sizes) or sum(sizes) > len(labels):
        raise ValueError(f"sizes {sizes} must be >= 0 and sum to at most {len(labels)} (the number of examples)")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    remaining = np.array([len(p) for p in pools], dtype=np.float64)
    taken = np.zeros(len(classes), dtype=np.int64)
    chosen = [None] * len(sizes)
    for s in range(len(sizes) - 1, -1, -1):
        quota = _largest_remainder(sizes[s], remaining)
        parts = [pool[t:t + q] for pool, t, q in zip(pools, taken, quota)]
        taken += quota
        remaining -= quota
        chosen[s] = rng.permutation(np.concatenate(parts)) if parts else np.empty(0, np.int64)
    return chosen


def mnist_splits(sizes=DEFAULT_SIZES, seed: int = 0, pad: int = 2) -> dict:
    """The MNIST digits as {'train': (x, y), 'val': (x, y), 'test': (x, y)}.

    sizes: (train, validation, test) counts, at most 10,000 in all (default 8000/1000/1000);
    seed: the split's seed (independent of any training seed, so runs with different
    training seeds are tested on the same held-out digits);
    x (n, 1, 28 + 2 pad, 28 + 2 pad) float32 in [0, 1]; y (n,) int64."""
    images, labels = load_mnist()
    idx = split_indices(labels, sizes, seed)
    return {name: (to_float(images[i], pad), labels[i]) for name, i in zip(("train", "val", "test"), idx)}


__all__ = ["load_mnist", "mnist_splits", "split_indices", "to_float", "parse_idx", "DataError"]
