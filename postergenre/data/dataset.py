"""Streaming tf.data input: read, decode (any format and mode, via PIL), fit to the
input size, augment (training only), batch, prefetch.

Nothing holds the whole set in memory: posters are decoded a batch at a time, and
the optional on-disk cache stores decoded, resized uint8 images keyed by the data
and the size, so the second epoch reads them back instead of decoding again.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from .images import FITS, PosterError, load_poster

SHUFFLE_BUFFER = 256  # decoded images held for shuffling when they come from the disk cache


def _loader(size, fit):
    def load(path):
        path = path.decode() if isinstance(path, bytes) else str(path)
        try:
            return load_poster(path, size, fit)
        except PosterError as exc:  # cleaned data should never get here; name the file if it does
            raise ValueError(str(exc)) from None
    return load


def augment(image: tf.Tensor, seed: tf.Tensor, jpeg_quality: tuple[int, int] | None = None) -> tf.Tensor:
    """Horizontal flip, a small random zoom (crop then resize back), brightness and contrast; with
    `jpeg_quality` (lowest, highest) first a re-save as a JPEG of a random quality in that range.

    Stateless random ops driven by a per-poster seed (shape [2]): the same seed gives the same
    augmentation whatever order a parallel map runs in, so a seeded training run repeats exactly.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 5)
    shape = tf.shape(image)
    if jpeg_quality:
        jpeg_seed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 5)
        image = tf.image.stateless_random_jpeg_quality(image / 255.0, *jpeg_quality, jpeg_seed) * 255.0
    image = tf.image.stateless_random_flip_left_right(image, seeds[0])
    scale = tf.random.stateless_uniform([], seeds[1], 0.85, 1.0)
    crop = tf.cast(tf.cast(shape[:2], tf.float32) * scale, tf.int32)
    image = tf.image.stateless_random_crop(image, tf.concat([crop, [3]], 0), seeds[2])
    image = tf.image.resize(image, shape[:2])
    image = tf.image.stateless_random_brightness(image, 0.1 * 255, seeds[3])
    image = tf.image.stateless_random_contrast(image, 0.85, 1.15, seeds[4])
    return tf.clip_by_value(image, 0.0, 255.0)


def _augmented(data: tf.data.Dataset, seed: int, jpeg_quality=None) -> tf.data.Dataset:
    """(image, label) pairs augmented with a seed per poster from a seeded stream, new every epoch."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(data, seeds).map(
        lambda xy, s: (augment(tf.cast(xy[0], tf.float32), s, jpeg_quality), xy[1]),
        num_parallel_calls=tf.data.AUTOTUNE)


def cache_key(frame: pd.DataFrame, size: tuple[int, int], fit: str) -> str:
    content = "\n".join(frame.poster_path) + f"|{size}|{fit}"
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def make_dataset(frame: pd.DataFrame, vocabulary: list[str] | None, size: tuple[int, int],
                 batch_size: int = 32, training: bool = False, fit: str = "crop",
                 cache_dir: Path | None = None, shuffle_seed: int = 42,
                 jpeg_quality: tuple[int, int] | None = None) -> tf.data.Dataset:
    """Batches of (float32 images in 0..255, multi-hot labels); images only if vocabulary is None.
    jpeg_quality (training): each poster re-saved as a JPEG of a random quality in this range."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, not {fit!r}")
    if training and cache_dir is not None:
        # The cache is read back in one fixed order and reshuffled only within a small buffer, and split
        # CSVs are ordered (by id, so by year and genre mix): without this, batches would follow that drift.
        frame = frame.iloc[np.random.default_rng(shuffle_seed).permutation(len(frame))]
    paths = frame.poster_path.to_numpy(dtype=str)
    loader = _loader(size, fit)

    def decode(path):
        image = tf.numpy_function(loader, [path], tf.uint8, stateful=False)
        return tf.ensure_shape(image, (*size, 3))

    labels = None if vocabulary is None else frame[vocabulary].to_numpy(dtype=np.float32)
    if training and cache_dir is None:
        # shuffle the (tiny) paths over the whole split before decoding: memory does not grow with it
        data = tf.data.Dataset.from_tensor_slices((paths, labels))
        data = data.shuffle(len(frame), seed=shuffle_seed, reshuffle_each_iteration=True)
        data = data.map(lambda p, y: (decode(p), y), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        images = tf.data.Dataset.from_tensor_slices(paths).map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            images = images.cache(str(cache_dir / f"images_{cache_key(frame, size, fit)}"))
        if labels is None:
            return images.map(lambda x: tf.cast(x, tf.float32)).batch(batch_size).prefetch(tf.data.AUTOTUNE)
        data = tf.data.Dataset.zip(images, tf.data.Dataset.from_tensor_slices(labels))
        if training:  # decoded images from the cache: a bounded buffer
            data = data.shuffle(SHUFFLE_BUFFER, seed=shuffle_seed, reshuffle_each_iteration=True)
    if training:
        data = _augmented(data, shuffle_seed, jpeg_quality)
    else:
        data = data.map(lambda x, y: (tf.cast(x, tf.float32), y))
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def array_batches(x: np.ndarray, y: np.ndarray, batch_size: int, order: np.ndarray | None = None,
                  seed: int | None = None) -> tf.data.Dataset:
    """Batches of (x[i], y[i]) for i in `order` (default: every row), reshuffled every epoch when `seed` is
    given, read from the arrays a batch at a time. Keras given the arrays themselves would copy them whole
    into tensors: a second copy of every poster's features."""
    order = np.arange(len(x)) if order is None else np.asarray(order)
    epochs, plan = iter(range(1 << 62)), {"rows": order}

    def read(step):
        if step == 0 and seed is not None:  # each pass over the dataset is an epoch: a new order
            plan["rows"] = np.random.default_rng([seed, next(epochs)]).permutation(order)
        chosen = np.sort(plan["rows"][step * batch_size:(step + 1) * batch_size])  # sorted: faster gathers
        return x[chosen], y[chosen]

    return read_batches(-(-len(order) // batch_size), read, x.shape[1:], y.shape[1:], (x.dtype, y.dtype))


def read_batches(steps: int, read, x_shape: tuple, y_shape: tuple, dtypes=(np.float32, np.float32)) -> tf.data.Dataset:
    """Batches 0..steps-1, each `read(step)` -> (x, y) arrays of these row shapes and dtypes, called in order
    in a tf.numpy_function. Not Dataset.from_generator: training the top blocks of a backbone
    on batches fed by one touched about 1.4 GB of fresh memory a step (355,000 page faults, 1.3 s of system
    time on 2 cores: twice the step itself)."""
    def tensors(step):
        x, y = tf.numpy_function(read, [step], [tf.as_dtype(d) for d in dtypes])  # stateful: in order, never cached
        return tf.ensure_shape(x, (None, *x_shape)), tf.ensure_shape(y, (None, *y_shape))
    return tf.data.Dataset.range(steps).map(tensors).prefetch(2)
