"""Fine-tuning the top blocks of a backbone on cached activations of its frozen lower blocks.

Fine-tuning on images runs every poster through the whole network every epoch, although only the top layers
learn: while the lower blocks are frozen, their output for a poster never changes. Here that output is computed
once per training variant and cached on disk (float16, memory-mapped), and each epoch trains only the top
blocks and the head, drawing one variant per poster.

The variants are the augmentation: variant 0 is the poster, variant 1 its mirror image; with JPEG-quality
augmentation each is first re-saved as a JPEG of a random quality, so that how blocky a source's files are
(the extra Kaggle posters were re-saved at a lower quality than the sample's) tells the network nothing.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ..config import Paths, progress_bar
from ..data.dataset import cache_key, read_batches
from ..data.images import fit_image, open_rgb, recompress
from ..data.photo_views import photo_view
from ..inference.batches import run_network
from ..inference.keras_network import fast_network

JPEG_QUALITIES = (30, 90)  # random re-save qualities, both included (the sources' files: about q50 and q75)
CHUNK = 512                # posters decoded ahead of the network


def split_at_trainable(extractor: keras.Model, look_back: int = 12) -> tuple[keras.Model, keras.Model] | None:
    """(lower, upper): the frozen network up to a tensor through which every trainable layer is fed, and the
    rest; None when there is no such tensor or nothing below it to save (the whole network trains).

    Of the tensors that qualify among the `look_back` layers below the first trainable one, the smallest is
    cached (ties: the latest): inside an inverted-residual block the expanded tensor has six times the
    channels of the block's input, so cutting a block lower saves most of the disk for a few frozen layers
    run again every epoch."""
    layers = extractor.layers
    first = next((i for i, layer in enumerate(layers) if layer.trainable and layer.weights), None)
    if first is None:
        return None
    best = None
    for layer in reversed(layers[max(1, first - look_back):first]):
        try:
            keras.Model(layer.output, extractor.output)
        except ValueError:  # a residual connection crosses this point
            continue
        if best is None or np.prod(layer.output.shape[1:]) < np.prod(best.output.shape[1:]):
            best = layer
    if best is None or not any(layer.weights for layer in layers[:layers.index(best) + 1]):
        return None
    return (keras.Model(extractor.input, best.output, name=f"{extractor.name}_bottom"),
            keras.Model(best.output, extractor.output, name=f"{extractor.name}_top"))


def variant_plan(n_posters: int, variants: int, jpeg: bool, seed: int) -> list[tuple[np.ndarray, bool]]:
    """For each variant, the JPEG quality of every poster (0: as stored) and whether it is mirrored."""
    rng = np.random.default_rng([seed, 7])
    low, high = JPEG_QUALITIES
    return [(rng.integers(low, high + 1, n_posters) if jpeg else np.zeros(n_posters, int), v % 2 == 1)
            for v in range(variants)]


def photo_seeds(variants: int, photos: int, seed: int, phase: int) -> list[int]:
    """Each variant's photo seed: the last `photos` of them show the poster photographed, each its own photo
    (0: not photographed); phase 1 (the head's features) and phase 2 (fine-tuning) draw other photos."""
    return [seed * 100 + 50 * (phase - 1) + v + 1 if v >= variants - photos else 0 for v in range(variants)]


def variant_image(path: str, size: tuple[int, int], fit: str, quality: int, mirror: bool, photo: int = 0
                  ) -> np.ndarray:
    """A training poster as a variant sees it; photo: the seed of a phone photo of it (0: the poster itself)."""
    image = open_rgb(path)
    if photo:
        image = photo_view(image, photo)
    if quality:
        image = recompress(image, quality)
    array = fit_image(image, size, fit)
    return np.ascontiguousarray(array[:, ::-1]) if mirror else array


def cached_activations(lower: keras.Model, frame: pd.DataFrame, size: tuple[int, int], fit: str, paths: Paths,
                       qualities: np.ndarray, mirror: bool, desc: str, cache: bool = True, photo: int = 0
                       ) -> np.ndarray:
    """The lower blocks' output for every poster of `frame` (float16), re-saved at `qualities` and mirrored as
    asked, and photographed (photo: a seed, each poster's own drawn from it and its row; 0: none); computed once
    and cached under data/cache/activations, read back memory-mapped."""
    digest = hashlib.sha256(qualities.astype(np.int16).tobytes() + bytes([mirror])
                            + (f"photo{photo}".encode() if photo else b"")).hexdigest()[:8]
    key = f"{lower.name}_{lower.layers[-1].name}_{size[0]}x{size[1]}_{fit}_{cache_key(frame, size, fit)}_{digest}"
    path = paths.cache / "activations" / f"{key}.npy"
    if cache and path.exists():
        return np.load(path, mmap_mode="r")
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (len(frame), *lower.output.shape[1:])
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    out = np.lib.format.open_memmap(tmp, "w+", np.float16, shape) if cache else np.empty(shape, np.float16)
    posters = frame.poster_path.to_numpy(str)
    bar = progress_bar(total=len(frame), desc=desc, unit="poster")
    with ThreadPoolExecutor(max_workers=4) as pool, fast_network(lower, len(frame)) as network:
        def submit(start):
            return [pool.submit(variant_image, posters[i], size, fit, int(qualities[i]), mirror,
                                photo and photo * 1_000_003 + i)
                    for i in range(start, min(start + CHUNK, len(frame)))]
        pending = submit(0)
        for start in range(0, len(frame), CHUNK):
            images = [future.result() for future in pending]
            pending = submit(start + CHUNK) if start + CHUNK < len(frame) else []
            outputs, _ = run_network(network, images, size, fit, batch_size=64)
            out[start:start + len(images)] = outputs
            bar.update(len(images))
    bar.close()
    if not cache:
        return out
    out.flush()
    del out
    tmp.replace(path)  # whole or absent: a killed run computes it again
    return np.load(path, mmap_mode="r")


def variant_batches(variants: list[np.ndarray], labels: np.ndarray, order: np.ndarray, batch_size: int,
                    seed: int) -> tf.data.Dataset:
    """Training batches: the posters of `order` reshuffled every epoch, each drawn as one of its variants at
    random, read from the memory-mapped caches a batch at a time."""
    epochs, plan = iter(range(1 << 62)), {}
    labels = np.asarray(labels, np.float32)

    def read(step):
        if step == 0:  # each pass over the dataset is an epoch: a new order and new variants
            rng = np.random.default_rng([seed, next(epochs)])
            plan["rows"] = rng.permutation(order)
            plan["which"] = rng.integers(0, len(variants), len(order))
        index = plan["rows"][step * batch_size:(step + 1) * batch_size]
        which = plan["which"][step * batch_size:(step + 1) * batch_size]
        x = np.empty((len(index), *variants[0].shape[1:]), np.float32)
        for v, array in enumerate(variants):
            picked = which == v
            if picked.any():
                sorted_rows = np.argsort(index[picked])  # sorted reads from the memory map
                x[np.flatnonzero(picked)[sorted_rows]] = array[index[picked][sorted_rows]]
        return x, labels[index]

    return read_batches(-(-len(order) // batch_size), read, variants[0].shape[1:], labels.shape[1:])


def array_in_batches(x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> tf.data.Dataset:
    """Validation batches from a memory-mapped cache, in order."""
    def read(step):
        rows = slice(step * batch_size, (step + 1) * batch_size)
        return np.asarray(x[rows], np.float32), y[rows]
    y = np.asarray(y, np.float32)
    return read_batches(-(-len(x) // batch_size), read, x.shape[1:], y.shape[1:])


def activation_data(lower: keras.Model, frames: dict, labels: dict, order: np.ndarray, config, paths: Paths):
    """(training batches over the cached variants, validation batches of the posters as stored)."""
    plan = variant_plan(len(frames["train"]), config.fine_tune_variants, config.jpeg_quality == "random",
                        config.seed)
    size, fit = config.input_size, config.fit
    photos = photo_seeds(len(plan), config.fine_tune_photo_variants, config.seed, phase=2)
    variants = [cached_activations(lower, frames["train"], size, fit, paths, qualities, mirror,
                                   f"activations train {v + 1}/{len(plan)}", config.cache, photo=photo)
                for v, ((qualities, mirror), photo) in enumerate(zip(plan, photos))]
    val = cached_activations(lower, frames["val"], size, fit, paths, np.zeros(len(frames["val"]), int), False,
                             "activations val", config.cache)
    return (variant_batches(variants, labels["train"], order, config.batch_size, config.seed),
            array_in_batches(val, labels["val"]))

