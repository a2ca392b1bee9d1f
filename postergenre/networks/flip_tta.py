"""Flip test-time augmentation inside one flat graph: the first layer adds each poster's mirror image to the
batch, the last averages each poster's features with its mirror's (Grad-CAM still finds the layers by name)."""
from __future__ import annotations

import keras


def mirrored_batch(images):
    """A batch followed by its mirror images (flipped left to right): the first layer of a flip-TTA extractor,
    whose last, mean_of_halves, averages each poster's features with its mirror's. One flat graph, so
    Grad-CAM still finds the backbone's layers by name."""
    return keras.ops.concatenate([images, keras.ops.flip(images, axis=2)], axis=0)


def mean_of_halves(features):
    half = keras.ops.shape(features)[0] // 2
    return (features[:half] + features[half:]) / 2
