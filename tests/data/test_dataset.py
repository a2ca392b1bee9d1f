"""The input pipeline and the class-imbalance tools."""
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from postergenre.data.dataset import make_dataset
from postergenre.data.images import fit_image
from postergenre.training.losses import AsymmetricLoss, WeightedBCE, make_loss, oversample_indices, positive_weights


@pytest.mark.parametrize("fit", ["crop", "squash", "pad"])
def test_fit_image_gives_the_requested_size(fit):
    wide = Image.new("RGB", (400, 200), (200, 10, 10))
    array = fit_image(wide, (224, 152), fit)
    assert array.shape == (224, 152, 3) and array.dtype == np.uint8
    if fit == "pad":
        assert (array[0] == 0).all() and (array[112, 76] == (200, 10, 10)).all()
    else:
        assert (array == (200, 10, 10)).all()


def test_crop_keeps_the_aspect():
    stripes = np.zeros((300, 200, 3), np.uint8)
    stripes[:, 100:] = 255  # left half black, right half white
    array = fit_image(Image.fromarray(stripes), (224, 152), "crop")
    assert array[:, :70].max() == 0 and array[:, 82:].min() == 255


def frame_of(paths, genres=("A", "B")):
    frame = pd.DataFrame({"poster_path": [str(p) for p in paths]})
    for i, g in enumerate(genres):
        frame[g] = [(j + i) % 2 for j in range(len(paths))]
    return frame


def test_batches_stream_with_labels_and_augmentation_only_in_training(sample, tmp_path):
    paths = sorted((sample / "images").glob("*.jpg"))[:10]
    frame = frame_of(paths)
    evaluation = list(make_dataset(frame, ["A", "B"], (224, 152), batch_size=4))
    assert [x.shape[0] for x, _ in evaluation] == [4, 4, 2]
    x0, y0 = evaluation[0]
    assert x0.shape == (4, 224, 152, 3) and x0.dtype == tf.float32 and y0.numpy().tolist()[0] == [0, 1]
    again = next(iter(make_dataset(frame, ["A", "B"], (224, 152), batch_size=4)))[0]
    assert np.array_equal(x0.numpy(), again.numpy()), "evaluation input is deterministic"
    trained = next(iter(make_dataset(frame, ["A", "B"], (224, 152), batch_size=10, training=True)))[0].numpy()
    plain = np.concatenate([x.numpy() for x, _ in evaluation])
    assert not any(np.array_equal(t, p) for t in trained for p in plain), "training images are augmented"
    assert trained.min() >= 0 and trained.max() <= 255


def test_augmented_training_input_repeats_for_a_seed_and_changes_every_epoch(sample):
    frame = frame_of(sorted((sample / "images").glob("*.jpg"))[:12])

    def two_epochs(seed):
        data = make_dataset(frame, ["A", "B"], (96, 64), batch_size=6, training=True, shuffle_seed=seed)
        return [np.concatenate([x.numpy() for x, _ in data]) for _ in range(2)]

    first, second = two_epochs(7), two_epochs(7)
    assert all(np.array_equal(a, b) for a, b in zip(first, second)), "same seed, same batches, epoch by epoch"
    assert not np.array_equal(first[0], first[1]), "each epoch draws new augmentations"
    assert not np.array_equal(first[0], two_epochs(8)[0])


def test_jpeg_quality_augmentation_resaves_each_poster_and_repeats_for_a_seed():
    from postergenre.data.dataset import augment
    smooth = np.linspace(0, 255, 96 * 64 * 3).reshape(96, 64, 3).astype(np.float32)
    seed = tf.constant([3, 4], tf.int64)
    plain, resaved = augment(tf.constant(smooth), seed), augment(tf.constant(smooth), seed, (30, 90))
    assert not np.array_equal(plain.numpy(), resaved.numpy()), "the JPEG re-save changes the pixels"
    assert np.array_equal(resaved.numpy(), augment(tf.constant(smooth), seed, (30, 90)).numpy()), "seeded"
    assert 0 <= resaved.numpy().min() and resaved.numpy().max() <= 255
    worst, best = (augment(tf.constant(smooth), seed, (q, q + 1)).numpy() for q in (30, 90))
    assert np.abs(worst - plain.numpy()).mean() > np.abs(best - plain.numpy()).mean(), "quality 30 loses more"


def test_disk_cache_is_written_and_read(sample, tmp_path):
    frame = frame_of(sorted((sample / "images").glob("*.jpg"))[:6])
    first = np.concatenate([x for x, _ in make_dataset(frame, ["A", "B"], (64, 44), cache_dir=tmp_path)])
    assert any(p.name.startswith("images_") for p in tmp_path.iterdir())
    second = np.concatenate([x for x, _ in make_dataset(frame, ["A", "B"], (64, 44), cache_dir=tmp_path)])
    assert np.array_equal(first, second)


def test_cached_training_batches_do_not_follow_the_csv_order(sample, tmp_path):
    # Split CSVs are sorted by id, and genres drift along that order; a cached training set is read back
    # in one order with a small shuffle buffer, so it must be shuffled over the whole split first.
    posters = sorted((sample / "images").glob("*.jpg"))[:20]
    frame = pd.DataFrame({"poster_path": [str(posters[i % 20]) for i in range(600)], "A": [1] * 300 + [0] * 300})
    data = make_dataset(frame, ["A"], (32, 24), batch_size=64, training=True, cache_dir=tmp_path)
    first_batches = [y.numpy().mean() for _, y in data.take(3)]
    assert all(0.3 < share < 0.7 for share in first_batches), first_batches


def test_unreadable_poster_is_named(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_text("nope")
    with pytest.raises(tf.errors.InvalidArgumentError, match="broken.jpg: not an image"):
        list(make_dataset(frame_of([bad]), ["A", "B"], (64, 44)))


def test_weighted_bce_matches_the_formula():
    y = np.array([[1, 0], [0, 1], [0, 0], [0, 0]], np.float32)
    weights = positive_weights(y)
    assert weights.tolist() == [3.0, 3.0]
    p = np.array([[0.8, 0.3], [0.1, 0.6], [0.2, 0.2], [0.5, 0.1]], np.float32)
    expected = -np.mean(weights * y * np.log(p) + (1 - y) * np.log(1 - p), axis=1).mean()
    assert float(WeightedBCE(weights)(y, p)) == pytest.approx(expected, rel=1e-5)


def test_asymmetric_loss_discounts_easy_negatives():
    loss = AsymmetricLoss()
    y = np.array([[0.0]], np.float32)
    assert float(loss(y, np.array([[0.04]], np.float32))) == pytest.approx(0.0, abs=1e-6)  # under the clip
    assert float(loss(y, np.array([[0.9]], np.float32))) > float(loss(y, np.array([[0.3]], np.float32)))
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("hinge", y)


def test_oversampling_repeats_rare_genres():
    labels = np.zeros((100, 3), np.int8)
    labels[:60, 0] = 1
    labels[60:90, 1] = 1
    labels[90:, 2] = 1
    indices = oversample_indices(labels, max_repeat=4)
    counts = np.bincount(indices, minlength=100)
    assert counts[:60].max() == 1 and counts[95] == 3 and counts[70] == 1
    rare_share = np.isin(indices, np.arange(90, 100)).mean()
    assert rare_share > labels[:, 2].mean()
