"""Training state that survives a kill at any moment.

Keras' BackupAndRestore and ModelCheckpoint write their files in place, so a kill
during a write leaves a file that cannot be read, and a resumed run forgets the
best score so far and the patience counters. Here each epoch's weights go to a
new file, and one small JSON file, replaced atomically, says which files are
current, the next epoch, the best score and the counters of the callbacks given.
"""
from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import keras

from ..config import UserError, describe
from ..data.io import read_json, write_json

STATE = "state.json"
COUNTERS = ("best", "wait", "cooldown_counter")  # what EarlyStopping and ReduceLROnPlateau remember


class TrainingState(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore made atomic: back up every epoch, keep the best weights by `monitor`
    (higher is better), and resume after a kill with the best score and patience counters intact.

    Put it after the callbacks it restores: Keras resets them in on_train_begin, in list order.
    Call finish() once the trained model is saved; until then a re-run skips a finished training.
    write_to: where this process writes its backups when it only reads `folder` (a multi-worker run's
    other workers read the chief's backup to resume and write their own to a scratch folder).
    """

    def __init__(self, folder: Path, monitor: str, restores: list[keras.callbacks.Callback] = (),
                 write_to: Path | None = None):
        super().__init__(str(folder), save_freq="epoch", delete_checkpoint=False)  # its file writes are replaced
        self.folder = Path(folder)
        self.write_folder = Path(write_to or folder)
        self.monitor = monitor
        self.restores = list(restores)
        self.best = -math.inf
        self.best_file: str | None = None
        self.earlier_seconds = 0.0  # epoch time spent by the runs that were killed
        self._began = time.perf_counter()
        self._state: dict = {}

    @property
    def resuming(self) -> bool:
        return (self.folder / STATE).exists()

    def on_train_begin(self, logs=None):
        self._began = time.perf_counter()
        if not self.resuming:
            return
        state = read_json(self.folder / STATE)
        try:
            if self.model.optimizer is not None and not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(self.folder / state["latest"])
            self.best, self.best_file = state["best"], state["best_file"]
            self.earlier_seconds = state["seconds"]
            for callback, counters in zip(self.restores, state["callbacks"], strict=True):
                for name, value in counters.items():
                    setattr(callback, name, value)
        except Exception as exc:  # a damaged backup can fail in h5py, keras or here
            raise UserError(f"{self.folder}: cannot resume from this backup ({describe(exc)}); "
                            "delete it to start over") from None
        self._state = state
        if self.write_folder != self.folder and self.best_file:  # later epochs may replace it in `folder`
            self.write_folder.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.folder / self.best_file, self.write_folder / self.best_file)
        # the hook Keras' own BackupAndRestore uses; a finished training runs no epoch at all
        self.model._initial_epoch = self.params["epochs"] if state["finished"] else state["epoch"]
        if state["finished"]:
            print(f"{self.folder}: this training finished in an earlier run; keeping its best epoch")
        else:
            print(f"resuming at epoch {state['epoch'] + 1} from {self.folder} (best {self.monitor} {self.best:.4f})")

    def on_epoch_end(self, epoch, logs=None):
        self.write_folder.mkdir(parents=True, exist_ok=True)
        latest = f"epoch_{epoch + 1:04d}.weights.h5"
        self.model.save_weights(self.write_folder / latest, overwrite=True)
        score = (logs or {}).get(self.monitor)
        if score is not None and score > self.best:
            self.best, self.best_file = float(score), latest
        self._publish(epoch=epoch + 1, latest=latest, finished=False)
        keep = {STATE, latest, self.best_file}
        for path in self.write_folder.iterdir():
            if path.name not in keep:
                path.unlink(missing_ok=True)

    def on_train_end(self, logs=None):
        self.model._initial_epoch = None
        if self._state:  # kept until finish(): a kill before the model is saved must not retrain
            self._publish(finished=True)

    def _publish(self, **changes) -> None:
        """Replace state.json atomically: it names the weights files, so they are complete before it."""
        self._state = {**self._state, **changes, "best": self.best, "best_file": self.best_file,
                       "seconds": self.earlier_seconds + time.perf_counter() - self._began,
                       "callbacks": [{name: _plain(getattr(c, name)) for name in COUNTERS if hasattr(c, name)}
                                     for c in self.restores]}
        write_json(self._state, self.write_folder / STATE)

    def restore_best(self) -> None:
        """Load the best weights seen (over all runs of this training) into the model."""
        if self.best_file:
            self.model.load_weights(self.write_folder / self.best_file)

    def finish(self) -> None:
        """The trained model is saved: the next run starts fresh."""
        (self.write_folder / STATE).unlink(missing_ok=True)  # first: a kill in here must not leave it naming lost files
        if self.write_folder.exists():
            for path in self.write_folder.iterdir():
                path.unlink()
            self.write_folder.rmdir()


def _plain(value):
    """Callback counters as JSON numbers (Keras keeps some as numpy or tensor scalars)."""
    return None if value is None else float(value)
