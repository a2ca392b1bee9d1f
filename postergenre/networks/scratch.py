"""Networks trained from scratch: the seeds' CNN, kept to reproduce their numbers, and this project's small CNN."""
from __future__ import annotations

import keras
from keras import layers

from ..config import UserError

SEED_CNN_MIN_SIDE = 76  # 76 -> 72 -> 36 -> 32 -> 16 -> 12 -> 6 -> 2 -> 1 through the four blocks


def seed_cnn(n_genres: int, input_size=(200, 150), conv_dropout: float = 0.25, dense_dropout: float = 0.5,
             batch_norm: bool = False) -> keras.Model:
    """The seeds' CNN, kept exactly to reproduce their numbers: four Conv 5x5 blocks (16, 32, 64, 64) each with
    dropout 0.25, a Flatten, Dense 128 and 64 with dropout 0.5, one sigmoid per genre.

    The keyword arguments exist for the diagnosis in benchmarks/bench_seed_cnn.py; their defaults are the seeds'.
    """
    if min(input_size) < SEED_CNN_MIN_SIDE:
        raise UserError(f"input size {input_size[0]}x{input_size[1]} is too small for seed_cnn: its four "
                        f"unpadded 5x5 conv + 2x2 pool blocks need at least {SEED_CNN_MIN_SIDE} pixels a side")
    inputs = keras.Input((*input_size, 3), name="image")
    x = layers.Rescaling(1 / 255.0, name="scale_to_unit")(inputs)
    for i, filters in enumerate((16, 32, 64, 64), start=1):
        x = layers.Conv2D(filters, 5, activation=None if batch_norm else "relu", name=f"conv{i}")(x)
        if batch_norm:
            x = layers.ReLU(name=f"relu{i}")(layers.BatchNormalization(name=f"bn{i}")(x))
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
        x = layers.Dropout(conv_dropout, name=f"dropout{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="dense128")(x)
    x = layers.Dropout(dense_dropout, name="dropout_dense128")(x)
    x = layers.Dense(64, activation="relu", name="dense64")(x)
    x = layers.Dropout(dense_dropout, name="dropout_dense64")(x)
    outputs = layers.Dense(n_genres, activation="sigmoid", name="genres")(x)
    return keras.Model(inputs, outputs, name="seed_cnn")


CUSTOM_CNN_WIDTHS = (32, 64, 128, 256)
CUSTOM_CNN_MIN_SIDE = 32  # a stride-2 stem and three 2x2 pools leave a 2x2 map


def custom_cnn(n_genres: int, input_size=(96, 64), widths=CUSTOM_CNN_WIDTHS, dropout: float = 0.3,
               synchronized_bn: bool = False) -> keras.Model:
    """This project's small CNN, made to learn from scratch on 2 cores.

    A stride-2 stem, then 3x3 conv -> BatchNorm -> ReLU blocks with 2x2 max pooling between them, global average
    pooling instead of a wide Flatten, one dropout before the sigmoids. Inputs are standardised per channel.
    synchronized_bn: batch statistics over all workers of a multi-worker run, so that their moving averages,
    like their weights, stay the same.
    """
    if min(input_size) < CUSTOM_CNN_MIN_SIDE:
        raise UserError(f"input size {input_size[0]}x{input_size[1]} is too small for custom_cnn: it needs at "
                        f"least {CUSTOM_CNN_MIN_SIDE} pixels a side")
    inputs = keras.Input((*input_size, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale_to_pm1")(inputs)
    x = layers.Conv2D(widths[0], 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.ReLU(name="stem_relu")(layers.BatchNormalization(synchronized=synchronized_bn, name="stem_bn")(x))
    for i, filters in enumerate(widths, start=1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(layers.BatchNormalization(synchronized=synchronized_bn, name=f"bn{i}")(x))
        if i < len(widths):
            x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(n_genres, activation="sigmoid", name="genres")(x)
    return keras.Model(inputs, outputs, name="custom_cnn")
