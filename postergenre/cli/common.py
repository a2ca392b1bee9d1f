"""What the stages' commands share: argument types, options several stages take, the help's format, SIGTERM."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import DEFAULT_PRIOR_ESTIMATOR, MIN_POSTERS_TO_ADAPT, PRIOR_ESTIMATORS, UserError, checked_name


def model_name(text: str, nested: bool = False) -> str:
    """An argparse type: a name under models/ (checked_name)."""
    try:
        return checked_name(text, "--name", nested)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def add_wait_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--wait", action="store_true",
                   help=f"when another run holds {what}, wait for it instead of stopping (one run at a time)")


def add_train_only_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train-only", type=Path, nargs="+", default=[], metavar="SOURCE",
                   help="sources whose posters only train (chosen by genre, e.g. ../shared/data/kaggle_posters_rare): "
                        "never in validation, test, the prior, the thresholds or any figure; a film they share with "
                        "another source is refused")


def add_text_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-text", action="store_true",
                   help="the image alone, even where the model has a text head (no words read)")
    p.add_argument("--no-find-poster", action="store_true",
                   help="take each picture whole: do not look for the poster in a photo of it (a poster on a wall or "
                        "a table, photographed at an angle)")


def add_adaptation_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--adapt-prior", action="store_true",
                   help="adapt to these posters' genre mix, estimated from the model's calibrated probabilities "
                        f"(label shift; needs {MIN_POSTERS_TO_ADAPT} posters or more)")
    p.add_argument("--prior", type=Path, default=None, help="the posters' genre mix, a CSV of genre,share rows")
    p.add_argument("--estimator", choices=PRIOR_ESTIMATORS, default=DEFAULT_PRIOR_ESTIMATOR,
                   help="how --adapt-prior estimates the mix")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default shown in --help, unless its help already names it or there is none (None, a flag)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False) or "default" in text or action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


def without_option(argv: list[str], flag: str) -> list[str]:
    """argv less `flag VALUE` and `flag=VALUE`."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            kept.append(arg)
    return kept


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the work is, so that it stops as Ctrl-C does: what is finished is kept."""

