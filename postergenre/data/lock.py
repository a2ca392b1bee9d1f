"""One run at a time on a model folder or an output file: a lock file beside it, held with flock.

The kernel releases an flock when its holder exits in any way (a crash, a kill -9), so a lock file left behind by
a dead run is stale by construction: the next run takes it. The file names its holder's PID for the message of a
run that finds it taken.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..config import UserError


def lock_path(target: Path) -> Path:
    target = Path(target)
    return target.with_name(f"{target.name}.lock")


class Lock:
    """`with Lock(target, "models/x"):` one holder at a time; another run is refused with one line naming the
    holder's PID, or waits for it (wait=True)."""

    def __init__(self, target: Path, what: str, wait: bool = False):
        self.path, self.what, self.wait, self.fd = lock_path(target), what, wait, None

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def __enter__(self) -> Lock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"{self.what}: cannot write in {self.path.parent} ({exc.strerror})") from None
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise UserError(f"{self.what}: cannot write {self.path} ({exc.strerror})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                raise UserError(f"{self.what} is in use by another run (process {self.holder()}, lock "
                                f"{self.path}); wait for it to finish, or give --wait") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:  # its holder removed it as it finished: take the new one
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            try:
                self.path.unlink(missing_ok=True)
            finally:
                os.close(self.fd)  # closing releases the flock
                self.fd = None
