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
    entry = register(Backbone("tiny", "tests.networks.test_registry:tiny_backbone", (64, 44), "tiny_conv", "none (a test)"))
    yield entry
    unregister("tiny")


def test_every_entry_builds_by_its_name_and_has_its_grad_cam_layer():
    images = np.random.default_rng(0).uniform(0, 255, (1, 112, 80, 3)).astype("float32")
    for entry in BACKBONES.values():
        network = entry.build(5, (112, 80)) if not entry.pretrained else \
            entry.build(entry.name, (112, 80), pretrained=False)  # the layers alone: no weights file needed
        conv = network.get_layer(entry.last_conv)  # what Grad-CAM asks for by name
        assert len(conv.output.shape) == 4 and conv.output.shape[1] > 1, f"{entry.name}: {conv.name} is a spatial map"
        output = network(images, training=False).numpy()
        assert output.shape[0] == 1 and np.isfinite(output).all(), entry.name
        assert output.shape[-1] == 5 or entry.pretrained, f"{entry.name}: one sigmoid per genre"
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
    assert heatmap.shape == (64, 44) and 0 <= heatmap.min() and heatmap.max() == pytest.approx(1)
    assert (heatmap < 0.99).mean() > 0.5, "the evidence lies somewhere, not everywhere (an all-zero map fails above)"
