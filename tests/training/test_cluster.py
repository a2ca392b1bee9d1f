"""Multi-worker training for real: two worker processes on 127.0.0.1, each with its TF_CONFIG, under
MultiWorkerMirroredStrategy, as `postergenre train --workers 2` starts them."""
import json
import re
import subprocess
import time

import pandas as pd
import pytest

from postergenre.cli import without_option
from postergenre.config import UserError
from postergenre.training.cluster import COLLECTIVE_TIMEOUT_S, Role, role, start_workers, tf_config, worker_commands
from tests.conftest import clone_project

SLICE = ["--limit", "96", "--batch-size", "32"]  # 3 steps an epoch
CUSTOM = ["--model", "custom_cnn", "--input-size", "64x44", *SLICE]
HEAD = ["--model", "efficientnet_lite0", "--input-size", "112x76", *SLICE]
RUN_TIMEOUT_S = 300


@pytest.fixture
def cluster_project(encoded_project, tmp_path):
    return clone_project(encoded_project, tmp_path)


def two_workers(paths, args: list[str]) -> list[subprocess.Popen]:
    return start_workers(2, ["--root", str(paths.root), "train", *args])


def outputs_of(workers: list[subprocess.Popen]) -> list[str]:
    outputs = [w.communicate(timeout=RUN_TIMEOUT_S)[0] for w in workers]
    for i, (worker, output) in enumerate(zip(workers, outputs)):
        assert worker.returncode == 0, f"worker {i} failed:\n{output[-3000:]}"
    return outputs


def weight_digests(output: str) -> dict[int, str]:
    return {int(epoch): digest for epoch, digest in re.findall(r"epoch (\d+) weights sha256 (\w+)", output)}


@pytest.mark.slow
@pytest.mark.workers
@pytest.mark.xdist_group("processes")
def test_two_workers_hold_the_same_weights_and_only_the_chief_writes(cluster_project):
    """A pretrained head here; the custom CNN in the next test (its resumed run checks the same)."""
    name = "efficientnet_lite0"
    chief, other = outputs_of(two_workers(cluster_project, [*HEAD, "--epochs", "2"]))
    digests = weight_digests(chief)
    assert sorted(digests) == [1, 2], chief[-2000:]
    assert weight_digests(other) == digests, "the all-reduce keeps every worker's weights the same after each epoch"
    assert digests[1] != digests[2], "the weights changed between epochs"
    folder = cluster_project.models / name
    history = pd.read_csv(folder / "history.csv")
    assert history.epoch.tolist() == [0, 1], "one history row an epoch: the other worker did not write here too"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["config"]["strategy"] == "multiworker" and (folder / "model.tflite").exists()
    assert [p.name for p in cluster_project.models.iterdir()] == [name]
    assert not list((cluster_project.cache / "workers").iterdir()), "the other worker's scratch folder is removed"
    assert "(written by worker 0)" in other and "(written by worker 0)" not in chief


@pytest.mark.slow
@pytest.mark.workers
@pytest.mark.xdist_group("processes")
def test_a_killed_worker_stops_the_other_and_both_resume(cluster_project):
    args = [*CUSTOM, "--epochs", "3"]
    workers = two_workers(cluster_project, args)
    state = cluster_project.models / "custom_cnn" / "backup_main" / "state.json"
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not (state.exists() and json.loads(state.read_text())["epoch"] >= 1):
        assert time.monotonic() < deadline and workers[0].poll() is None, "the chief backed up its first epoch"
        time.sleep(0.1)
    workers[1].kill()
    killed_at = time.monotonic()
    output = workers[0].communicate(timeout=COLLECTIVE_TIMEOUT_S + 60)[0]
    waited = time.monotonic() - killed_at
    assert workers[0].returncode == 2, output[-3000:]
    lines = [line for line in output.splitlines() if "lost contact with another worker" in line]
    assert len(lines) == 1 and lines[0].startswith("postergenre train: error: worker 0 of 2"), output[-3000:]
    assert waited < COLLECTIVE_TIMEOUT_S + 30
    backed_up = json.loads(state.read_text())["epoch"]

    chief, other = outputs_of(two_workers(cluster_project, args))
    assert f"resuming at epoch {backed_up + 1}" in chief and f"resuming at epoch {backed_up + 1}" in other
    digests = weight_digests(chief)
    assert sorted(digests) == list(range(backed_up + 1, 4)) and weight_digests(other) == digests
    assert digests[backed_up + 1] != digests[3] or backed_up == 2
    history = pd.read_csv(cluster_project.models / "custom_cnn" / "history.csv")
    assert history.epoch.tolist() == [0, 1, 2], "one history row an epoch: only the chief writes"
    assert not state.exists(), "a finished run leaves no backup"
    assert [p.name for p in cluster_project.models.iterdir()] == ["custom_cnn"]
    assert not list((cluster_project.cache / "workers").iterdir()), "the other worker's scratch folder is removed"


def test_the_launcher_passes_the_training_options_on_without_workers():
    argv = ["--root", "r", "train", "--workers", "2", "--model", "custom_cnn", "--workers=3", "--epochs", "2"]
    assert without_option(argv, "--workers") == ["--root", "r", "train", "--model", "custom_cnn", "--epochs", "2"]
    (command, env), (_, other_env) = worker_commands(2, ["train", "--epochs", "2"])
    assert command[-4:] == ["--epochs", "2", "--strategy", "multiworker"]
    chief_config, other_config = json.loads(env["TF_CONFIG"]), json.loads(other_env["TF_CONFIG"])
    assert chief_config["cluster"] == other_config["cluster"] and len(set(chief_config["cluster"]["worker"])) == 2
    assert (chief_config["task"]["index"], other_config["task"]["index"]) == (0, 1)


def test_role_comes_from_tf_config_and_a_bad_one_is_named():
    hosts = ["a:1", "b:2", "c:3"]
    assert role({}) == Role(0, 1) and not Role().distributed
    assert role({"TF_CONFIG": tf_config(hosts, 2)}) == Role(2, 3)
    with_chief = {"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker", "index": 0}}
    assert role({"TF_CONFIG": json.dumps(with_chief)}) == Role(1, 2) and not Role(1, 2).chief
    for bad in ("{not json", json.dumps({"cluster": {"worker": hosts}}), tf_config(hosts, 5)):
        with pytest.raises(UserError, match="TF_CONFIG"):
            role({"TF_CONFIG": bad})
