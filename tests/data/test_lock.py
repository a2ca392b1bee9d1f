"""One run at a time on a model folder or an --output file (issue 42): the second is refused naming the holder's
PID, or waits with --wait; a lock left by a dead run is taken."""
import os
import threading
import time

import pytest

from postergenre.cli import main
from postergenre.config import UserError
from postergenre.data.lock import Lock, lock_path
from tests.conftest import real_posters
from tests.app.test_rebuild import small_recipe, write_recipe


def test_a_second_holder_is_refused_by_name_and_a_dead_runs_lock_is_taken(tmp_path):
    target = tmp_path / "out.csv"
    with Lock(target, "--output out.csv"):
        assert lock_path(target).read_text().strip() == str(os.getpid())
        with pytest.raises(UserError, match=rf"--output out.csv is in use by another run \(process {os.getpid()}"):
            with Lock(target, "--output out.csv"):
                pass
    assert not lock_path(target).exists(), "released and removed on exit"
    lock_path(target).write_text("999999\n")  # a killed run's file: no process holds its flock
    with Lock(target, "--output out.csv"):
        assert lock_path(target).read_text().strip() == str(os.getpid())


def test_two_predictions_to_one_output_the_second_refused_or_waiting(capsys, tmp_path):
    output = tmp_path / "out.csv"
    holder = Lock(output, "x").__enter__()
    try:
        code = main(["predict", str(real_posters(1)[0]), "--no-text", "--output", str(output)])
        err = capsys.readouterr().err
        assert code == 2 and f"process {os.getpid()}" in err and err.count("\n") == 1 and not output.exists()
        threading.Timer(1.0, holder.__exit__, (None, None, None)).start()
        start = time.monotonic()
        code = main(["predict", str(real_posters(1)[0]), "--no-text", "--output", str(output), "--wait"])
        assert code == 0 and output.exists() and time.monotonic() - start >= 0.9
    finally:
        holder.__exit__(None, None, None)


def test_a_second_rebuild_of_one_name_is_refused_before_any_stage(capsys, tmp_path, sample):
    recipe = write_recipe(tmp_path, small_recipe(sample))
    root = tmp_path / "project"
    with Lock(root / "models" / "tiny", "models/tiny"):
        assert main(["--root", str(root), "rebuild", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert f"models/tiny is in use by another run (process {os.getpid()}" in err
    assert not (root / "models" / "tiny.parts").exists(), "no stage started"
