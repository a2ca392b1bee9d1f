"""TrainingState: a kill at any moment, even during a write, loses at most the epoch in progress."""
import json

import keras
import numpy as np
import pytest

from postergenre.config import UserError
from postergenre.training.checkpoint import STATE, TrainingState

EPOCHS = 6


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    return x, (x[:, :3] > 0).astype("float32")


def _model():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy")
    return model


class Scores(keras.callbacks.Callback):
    """Feeds a chosen 'score' per epoch into the logs and snapshots the weights of every epoch."""

    def __init__(self, scores):
        super().__init__()
        self.scores, self.weights = scores, {}

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.scores[epoch]
        self.weights[epoch] = [w.copy() for w in self.model.get_weights()]


class Kill(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt("killed")


def _fit(model, folder, record, *extra, patience=10):
    early = keras.callbacks.EarlyStopping(monitor="score", mode="max", patience=patience)
    state = TrainingState(folder, "score", restores=[early])
    x, y = _data()
    model.fit(x, y, epochs=EPOCHS, batch_size=16, verbose=0, shuffle=False,
              callbacks=[record, early, state, *extra])
    return state, early


def test_a_resumed_run_keeps_the_best_epoch_and_the_patience_counter(tmp_path):
    scores = [0.1, 0.9, 0.3, 0.2, 0.4, 0.5]  # best at epoch 1, before the kill
    first = Scores(scores)
    with pytest.raises(KeyboardInterrupt):
        _fit(_model(), tmp_path, first, Kill(at_epoch=4))
    saved = json.loads((tmp_path / STATE).read_text())
    assert saved["epoch"] == 4 and saved["best"] == pytest.approx(0.9) and saved["best_file"] == "epoch_0002.weights.h5"
    assert saved["seconds"] > 0

    model, second = _model(), Scores(scores)
    state, early = _fit(model, tmp_path, second)
    assert sorted(second.weights) == [4, 5], "the resumed run must start at the epoch after the backup"
    assert early.best == pytest.approx(0.9) and early.wait == 4, "EarlyStopping must remember the run before the kill"
    assert state.earlier_seconds == saved["seconds"], "the time of the killed run is counted"
    state.restore_best()
    for restored, best in zip(model.get_weights(), first.weights[1], strict=True):
        np.testing.assert_array_equal(restored, best)
    state.finish()
    assert not tmp_path.exists()


def test_a_kill_during_a_write_leaves_the_previous_backup_usable(tmp_path, monkeypatch):
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    model = _model()
    real_save = model.save_weights
    calls = []

    def save_then_die(path, overwrite=True):
        calls.append(path)
        if len(calls) == 3:  # the third backup: half a file, then the process dies
            real_save(path, overwrite=overwrite)
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
            raise KeyboardInterrupt("killed while writing")
        real_save(path, overwrite=overwrite)

    monkeypatch.setattr(model, "save_weights", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _fit(model, tmp_path, Scores(scores))
    assert json.loads((tmp_path / STATE).read_text())["latest"] == "epoch_0002.weights.h5"

    record = Scores(scores)
    state, _ = _fit(_model(), tmp_path, record)
    assert sorted(record.weights) == [2, 3, 4, 5]
    assert state.best == pytest.approx(0.6) and state.best_file == "epoch_0006.weights.h5"
    assert {p.name for p in tmp_path.iterdir()} == {STATE, "epoch_0006.weights.h5"}, "stale files are removed"


def test_a_kill_after_training_but_before_the_model_is_saved_does_not_retrain(tmp_path):
    scores = [0.1, 0.3, 0.9, 0.2, 0.4, 0.5]
    first = Scores(scores)
    _fit(_model(), tmp_path, first, patience=2)  # stops early after epoch 4; then killed before finish()
    assert sorted(first.weights) == [0, 1, 2, 3, 4]
    assert json.loads((tmp_path / STATE).read_text())["finished"] is True

    model, second = _model(), Scores(scores)
    state, _ = _fit(model, tmp_path, second, patience=2)
    assert second.weights == {}, "a finished training must run no epoch again"
    state.restore_best()
    for restored, best in zip(model.get_weights(), first.weights[2], strict=True):
        np.testing.assert_array_equal(restored, best)


def test_a_damaged_backup_is_named(tmp_path):
    (tmp_path / STATE).write_text(json.dumps({"epoch": 2, "latest": "epoch_0002.weights.h5", "best": 0.5,
                                              "best_file": "epoch_0002.weights.h5", "seconds": 1.0, "finished": False,
                                              "callbacks": [{}]}))
    (tmp_path / "epoch_0002.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    with pytest.raises(UserError, match=f"{tmp_path}: cannot resume from this backup.*delete it to start over"):
        _fit(_model(), tmp_path, Scores([0.0] * EPOCHS))
