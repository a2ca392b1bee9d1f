"""Multi-worker training: each worker's role from TF_CONFIG, and N local workers started with one command.

Every worker runs the same `postergenre train ... --strategy multiworker` with its own TF_CONFIG; gradients
are all-reduced every step (MultiWorkerMirroredStrategy), so all workers hold the same weights. Only the
chief (worker 0) writes the model folder and the backups; the others write to a scratch folder. A worker
that loses a peer stops within COLLECTIVE_TIMEOUT_S with one line, and the same commands run again resume
from the chief's last backup.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from ..config import UserError, describe

COLLECTIVE_TIMEOUT_S = 60   # a step that waits longer than this for a peer fails instead of hanging
PEER_GRACE_S = 120          # the launcher's bound on the others' exit once one worker has failed


@dataclass(frozen=True)
class Role:
    index: int = 0
    workers: int = 1

    @property
    def chief(self) -> bool:
        return self.index == 0

    @property
    def distributed(self) -> bool:
        return self.workers > 1


def role(environ=os.environ) -> Role:
    """This process's place in the cluster TF_CONFIG describes (a lone worker without one)."""
    raw = environ.get("TF_CONFIG")
    if not raw:
        return Role()
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
        index = int(task["index"]) + (chiefs if task["type"] == "worker" else 0)
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"TF_CONFIG is not valid ({describe(exc)}); expected e.g. "
                        f"{tf_config(['host1:12345', 'host2:12345'], 0)}") from None
    if not 0 <= index < chiefs + workers:
        raise UserError(f"TF_CONFIG: task index {task['index']} is not in its cluster of {chiefs + workers}")
    return Role(index, chiefs + workers)


def tf_config(hosts: list[str], index: int) -> str:
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})


def strategy():
    """MultiWorkerMirroredStrategy whose collectives time out rather than wait for a lost worker forever."""
    import tensorflow as tf
    if "TF_CONFIG" not in os.environ:
        raise UserError("--strategy multiworker needs TF_CONFIG on every worker (see the README), or use "
                        "`postergenre train --workers N` to start N workers on this machine")
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=COLLECTIVE_TIMEOUT_S)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def is_lost_peer(exc: BaseException) -> bool:
    """The errors TensorFlow raises on a worker whose peer died or stopped answering."""
    import tensorflow as tf
    return isinstance(exc, (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                            tf.errors.CancelledError, tf.errors.InternalError))


def keras_fit_fixes(model) -> None:
    """Let Keras 3 fit() `model` under MultiWorkerMirroredStrategy, which it cannot as released
    (keras-team/keras#20585): fit() first builds the model from a batch it averages over workers with
    strategy.reduce, which fails on a per-worker batch, so the model is built here from zeros of its shapes;
    and each step's logs are averaged over replicas with axis=0, which fails on scalars, so they are averaged
    with axis=None. The gradients' all-reduce, the part that matters, is Keras' own."""
    import numpy as np
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    if not getattr(trainer.reduce_per_replica, "averages_scalars", False):
        keras_reduce = trainer.reduce_per_replica

        def reduce_per_replica(values, strategy, reduction):
            if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
                return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
            return keras_reduce(values, strategy, reduction)

        reduce_per_replica.averages_scalars = True
        trainer.reduce_per_replica = reduce_per_replica
    zeros = (np.zeros((2, *model.input_shape[1:]), np.float32), np.zeros((2, *model.output_shape[1:]), np.float32))
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=zeros)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


def barrier(strategy) -> None:
    """Return on every worker once all have come here (a tiny all-reduce, bounded by the collective timeout)."""
    import tensorflow as tf
    strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def worker_commands(workers: int, train_args: list[str]) -> list[tuple[list[str], dict]]:
    """The command and environment of each of `workers` local workers running `postergenre train train_args`."""
    hosts = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    command = [sys.executable, "-m", "postergenre.cli", *train_args, "--strategy", "multiworker"]
    return [(command, {**os.environ, "TF_CONFIG": tf_config(hosts, i), "PYTHONUNBUFFERED": "1"})
            for i in range(workers)]


def start_workers(workers: int, train_args: list[str]) -> list[subprocess.Popen]:
    """`workers` local training processes, each with its TF_CONFIG; their output (stdout and stderr) is piped."""
    return [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for command, env in worker_commands(workers, train_args)]


def launch_local(workers: int, train_args: list[str]) -> int:
    """Start `workers` training processes on this machine, print their output line by line with the
    worker's number, and return the first failure's exit code (0 when all finish)."""
    if workers < 2:
        raise UserError(f"--workers {workers}: give 2 or more (1 worker is a plain `postergenre train`)")
    processes = start_workers(workers, train_args)
    readers = [threading.Thread(target=_relay, args=(i, p.stdout), daemon=True) for i, p in enumerate(processes)]
    for reader in readers:
        reader.start()
    failed_at = None
    while any(p.poll() is None for p in processes):
        if failed_at is None and any(p.returncode not in (None, 0) for p in processes):
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > PEER_GRACE_S:
            for p in processes:
                p.kill()
        time.sleep(0.2)
    for reader in readers:
        reader.join(timeout=5)
    codes = [p.returncode for p in processes]
    return next((code for code in codes if code), 0)


def _relay(index: int, stream) -> None:
    for line in stream:
        sys.stdout.write(f"[worker {index}] {line}")
        sys.stdout.flush()
