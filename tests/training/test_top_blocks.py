"""Fine-tuning on cached activations: where the network is cut, the variants, the batches drawn from them."""
import numpy as np
import pytest

from postergenre.networks.pretrained import backbone, unfreeze_top
from postergenre.training.top_blocks import (
    JPEG_QUALITIES,
    cached_activations,
    photo_seeds,
    split_at_trainable,
    variant_batches,
    variant_plan,
)


def _values(tensor) -> int:
    return int(np.prod(tensor.shape[1:]))


@pytest.mark.parametrize("layers", [6, 30, 44])
def test_the_cut_feeds_every_trainable_layer_and_the_two_halves_are_the_network(layers):
    extractor = backbone("efficientnet_lite0", (96, 64))  # ImageNet weights: features far from 0, unlike random ones
    unfreeze_top(extractor, layers)
    lower, upper = split_at_trainable(extractor)
    trainable = {layer.name for layer in extractor.layers if layer.trainable and layer.weights}
    assert trainable and trainable <= {layer.name for layer in upper.layers}, "every trainable layer is above the cut"
    assert not {layer.name for layer in lower.layers if layer.trainable and layer.weights}
    images = np.random.default_rng(0).uniform(0, 255, (2, 96, 64, 3)).astype("float32")
    whole, halves = extractor(images).numpy(), upper(lower(images)).numpy()
    assert np.abs(whole).mean() > 0.05, "features far enough from 0 for the comparison to mean something"
    assert np.allclose(halves, whole, rtol=1e-4, atol=1e-4 * np.abs(whole).max())
    # the smallest tensor that qualifies: never the six-times expanded one inside a block
    assert lower.layers[-1].name.endswith(("_add", "_project_bn")), lower.layers[-1].name
    assert _values(lower.output) <= min(_values(layer.output) for layer in upper.layers[1:4])


def test_a_network_trainable_from_its_first_layer_has_no_cut():
    extractor = backbone("efficientnet_lite0", (64, 48), pretrained=False)
    unfreeze_top(extractor, 10_000)
    assert split_at_trainable(extractor) is None


def test_variant_plan_draws_qualities_in_range_and_mirrors_every_second_variant():
    plan = variant_plan(500, 3, jpeg=True, seed=1)
    assert [mirror for _, mirror in plan] == [False, True, False]
    low, high = JPEG_QUALITIES
    for qualities, _ in plan:
        assert qualities.min() >= low and qualities.max() <= high and len(set(qualities)) > 20
    assert not np.array_equal(plan[0][0], plan[1][0]), "each variant its own qualities"
    again = variant_plan(500, 3, jpeg=True, seed=1)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(plan, again)), "a seeded run repeats"
    assert all((q == 0).all() for q, _ in variant_plan(10, 2, jpeg=False, seed=1)), "stored: no re-save"


def test_variant_batches_cover_every_poster_once_an_epoch_each_as_one_of_its_variants():
    n = 37
    variants = [np.arange(n, dtype=np.float16)[:, None] * 10 + v for v in range(2)]  # row i, variant v -> 10i+v
    labels = np.arange(n, dtype=np.float32)[:, None]
    data = variant_batches(variants, labels, np.arange(n), batch_size=8, seed=3)
    epochs = []
    for _ in range(2):
        xs, ys = zip(*[(x.numpy()[:, 0], y.numpy()[:, 0]) for x, y in data])
        x, y = np.concatenate(xs), np.concatenate(ys)
        assert sorted(y) == list(range(n)), "every poster once"
        assert np.array_equal(np.floor(x / 10), y), "the features are the poster's own"
        epochs.append((y.copy(), x % 10))
    assert not np.array_equal(epochs[0][0], epochs[1][0]), "reshuffled every epoch"
    drawn = np.concatenate([v for _, v in epochs])
    assert 0.2 < drawn.mean() < 0.8, "both variants drawn"


def test_activations_are_cached_once_per_variant(tmp_path):
    import pandas as pd

    from postergenre.config import Paths
    from tests.conftest import real_posters
    posters = real_posters(6)
    frame = pd.DataFrame({"poster_path": [str(p) for p in posters]})
    extractor = backbone("efficientnet_lite0", (64, 48))  # ImageNet weights: a randomly set network outputs zeros
    unfreeze_top(extractor, 6)
    lower, _ = split_at_trainable(extractor)
    paths = Paths.default(tmp_path)
    stored = np.zeros(6, int)
    first = cached_activations(lower, frame, (64, 48), "crop", paths, stored, False, "test")
    files = list((paths.cache / "activations").glob("*.npy"))
    assert len(files) == 1 and first.dtype == np.float16 and first.shape[0] == 6
    stamp = files[0].stat().st_mtime_ns
    again = cached_activations(lower, frame, (64, 48), "crop", paths, stored, False, "test")
    assert files[0].stat().st_mtime_ns == stamp and np.array_equal(first, again), "read back, not recomputed"
    resaved = cached_activations(lower, frame, (64, 48), "crop", paths, np.full(6, 30), False, "test")
    mirrored = cached_activations(lower, frame, (64, 48), "crop", paths, stored, True, "test")
    photographed = cached_activations(lower, frame, (64, 48), "crop", paths, stored, False, "test", photo=7)
    assert len(list((paths.cache / "activations").glob("*.npy"))) == 4
    assert not np.array_equal(first, resaved) and not np.array_equal(first, mirrored)
    assert not np.array_equal(first, photographed)
    assert not list((paths.cache / "activations").glob("*.tmp*")), "no partial file left"


def test_the_last_variants_are_photographed_each_phase_its_own_photos():
    assert photo_seeds(3, 0, 42, phase=2) == [0, 0, 0]
    head, fine_tuning = photo_seeds(2, 1, 42, phase=1), photo_seeds(3, 2, 42, phase=2)
    assert head[0] == 0 and head[1] > 0, "the head's second variant is the photo"
    assert fine_tuning[0] == 0 and fine_tuning[1] > 0 and fine_tuning[2] > 0
    photos = [s for s in head + fine_tuning if s]
    assert len(set(photos)) == len(photos), "no two variants show the same photo"
    assert head == [0, 42 * 100 + 2], "the head's photos as the shipped default's Lite1 member learned from them"
