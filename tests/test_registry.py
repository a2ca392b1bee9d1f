"""The network registry: a backbone is one entry, and the CLI, training, prediction and Grad-CAM all read it."""
import keras
import numpy as np
import pytest
from keras import layers

from postergenre.cli import build_parser
from postergenre.config import UserError
from postergenre.data.images import load_poster
from postergenre.inference.litert import LiteNetwork
from postergenre.inference.predictor import load
from postergenre.networks.registry import BACKBONES, Backbone, get, register, unregister
from postergenre.training.train import TrainConfig, train
from tests.conftest import clone_project, real_posters


def tiny_backbone(name, input_size, weights=None, tta=False, pretrained=True):
    """A registry builder: one seeded convolution and global pooling (the same weights at every build, as a
    pretrained backbone's are)."""
    inputs = keras.Input((*input_size, 3), name="image")
    x = layers.Rescaling(1 / 255.0)(inputs)
    x = layers.Conv2D(16, 5, strides=4, activation="relu", name="tiny_conv",
                      kernel_initializer=keras.initializers.GlorotUniform(seed=0))(x)
    return keras.Model(inputs, layers.GlobalAveragePooling2D(name="avg_pool")(x), name=name)


@pytest.fixture
def tiny():
    entry = register(Backbone("tiny", "tests.test_registry:tiny_backbone", (64, 44), "tiny_conv", "none (a test)"))
    yield entry
    unregister("tiny")


def test_every_entry_builds_by_its_name():
    for entry in BACKBONES.values():
        assert callable(entry.builder_function()), entry.name
    assert get("efficientnet_lite0").input_size == (224, 152) and get("custom_cnn").pretrained is False
    with pytest.raises(UserError, match="unknown model 'resnet9000'; choose from custom_cnn"):
        get("resnet9000")


@pytest.mark.trains
def test_a_backbone_added_in_one_entry_trains_predicts_and_explains(tiny, encoded_project, tmp_path):
    assert build_parser().parse_args(["train", "--model", "tiny"]).model == "tiny", "--model offers it"
    paths = clone_project(encoded_project, tmp_path)
    folder = train(TrainConfig(model="tiny", epochs=2, limit=96), paths)
    predictor = load(folder)
    assert isinstance(predictor.network, LiteNetwork) and predictor.input_size == (64, 44)
    table = predictor.predict(real_posters(3)).table
    assert table.error.eq("").all() and table.top.map(len).eq(3).all()
    image = load_poster(real_posters(1)[0], predictor.input_size)
    heatmap = predictor.gradcam(image, int(np.argmax(predictor.probabilities([image])[0][0])))
    assert heatmap.shape == (64, 44) and 0 <= heatmap.min() and heatmap.max() <= 1
