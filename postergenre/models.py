"""Model builders: the seeds' custom CNN, pretrained backbones and the classification head."""
from __future__ import annotations

import os
from pathlib import Path

import keras
from keras import layers

from .config import MODELS, UserError
from .config import PRETRAINED_MODELS as PRETRAINED

# pretrained: the native resolution as the height, the width keeping a poster's ~2:3 (a multiple of 8)
DEFAULT_SIZE = {"seed_cnn": (200, 150), "custom_cnn": (112, 76), "efficientnet_lite0": (224, 152),
                "efficientnet_lite1": (240, 160), "efficientnet_lite2": (260, 176), "vgg16": (224, 160),
                "densenet121": (224, 160)}
# files Keras itself downloads into ~/.keras/models on a machine with internet
KERAS_CACHE_FILES = {"vgg16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                     "densenet121": "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"}
# the layer whose activations Grad-CAM explains
LAST_CONV = {"seed_cnn": "conv4", "custom_cnn": "relu4", "efficientnet_lite0": "head_relu6",
             "efficientnet_lite1": "head_relu6", "efficientnet_lite2": "head_relu6", "vgg16": "block5_conv3",
             "densenet121": "relu"}


def check_model_name(name: str) -> str:
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return name


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


def custom_cnn(n_genres: int, input_size=(112, 76), widths=CUSTOM_CNN_WIDTHS, dropout: float = 0.3,
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


def classification_head(n_features: int, n_genres: int, hidden: int = 512, dropout: float = 0.3) -> keras.Model:
    """What sits on a frozen backbone's pooled features: one hidden ReLU layer, one sigmoid per genre.

    On the sample's validation split the hidden layer beat a linear head (macro AP 0.380 vs 0.370).
    """
    inputs = keras.Input((n_features,), name="features")
    x = layers.Dropout(dropout, name="head_dropout")(inputs)
    if hidden:
        x = layers.Dense(hidden, activation="relu", name="head_hidden")(x)
        x = layers.Dropout(0.5, name="head_hidden_dropout")(x)
    outputs = layers.Dense(n_genres, activation="sigmoid", name="genres")(x)
    return keras.Model(inputs, outputs, name="head")


def keras_weights_file(name: str, weights: str | os.PathLike | None) -> Path:
    """A user's weights file, or the one Keras keeps in its cache; a clear stop if neither exists."""
    if weights:
        path = Path(weights)
        if not path.exists():
            raise UserError(f"{path}: weights file not found")
        return path
    cached = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / KERAS_CACHE_FILES[name]
    if cached.exists():
        return cached
    raise UserError(f"{name} needs ImageNet weights: pass --weights FILE ({KERAS_CACHE_FILES[name]}) or put it "
                    f"in {cached.parent} (Keras downloads it there on a machine with internet); "
                    "refusing to train from scratch")


def backbone(name: str, input_size: tuple[int, int], weights: str | os.PathLike | None = None,
             tta: bool = False, pretrained: bool = True) -> keras.Model:
    """A pretrained feature extractor: uint8-range RGB in, pooled features out.

    tta: the features are the mean of the poster's and its mirror image's (test-time augmentation).
    pretrained=False: EfficientNet-Lite's layers only, for weights loaded afterwards (a fine-tuned model).
    """
    from .backbones import LITE_VARIANTS, efficientnet_lite

    shape = (*input_size, 3)
    if name in LITE_VARIANTS:
        chosen = (str(weights) if weights else "imagenet") if pretrained else None
        return efficientnet_lite(name, shape, weights=chosen, tta=tta)
    apps = {"vgg16": (keras.applications.VGG16, keras.applications.vgg16.preprocess_input),
            "densenet121": (keras.applications.DenseNet121, keras.applications.densenet.preprocess_input)}
    if name not in apps:
        raise UserError(f"{name!r} is not a pretrained model; choose from {', '.join(PRETRAINED)}")
    build, preprocess = apps[name]
    weights_file = keras_weights_file(name, weights)
    inputs = keras.Input(shape, name="image")
    x = layers.Lambda(mirrored_batch, name="tta_add_mirrors")(inputs) if tta else inputs
    x = layers.Lambda(preprocess, name="preprocess")(x)
    base = build(include_top=False, weights=None, input_tensor=x)
    try:
        base.load_weights(weights_file)
    except Exception as exc:  # h5py/keras raise several types for a mismatched file
        raise UserError(f"{weights_file}: weights of the wrong architecture for {name} ({exc})"[:300]) from None
    outputs = layers.GlobalAveragePooling2D(name="avg_pool")(base.output)
    if tta:  # the same flat graph as EfficientNet-Lite's (see mirrored_batch)
        outputs = layers.Lambda(mean_of_halves, name="tta_mean")(outputs)
    return keras.Model(inputs, outputs, name=name)


def mirrored_batch(images):
    """A batch followed by its mirror images (flipped left to right): the first layer of a flip-TTA extractor,
    whose last, mean_of_halves, averages each poster's features with its mirror's. One flat graph, so
    Grad-CAM still finds the backbone's layers by name."""
    return keras.ops.concatenate([images, keras.ops.flip(images, axis=2)], axis=0)


def mean_of_halves(features):
    half = keras.ops.shape(features)[0] // 2
    return (features[:half] + features[half:]) / 2


def unfreeze_top(model: keras.Model, n_layers: int) -> None:
    """Train only the last n layers that have weights; BatchNorm stays frozen (inference statistics)."""
    weighted = [layer for layer in model.layers if layer.weights]
    model.trainable = True
    for i, layer in enumerate(weighted):
        layer.trainable = i >= len(weighted) - n_layers and not isinstance(layer, layers.BatchNormalization)
