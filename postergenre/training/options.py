"""A member's training options, each declared once: its type, default, allowed values, bounds and one line of help.

`TrainConfig` is what `train` runs. The CLI's `train` and `pipeline` flags (`add_flags`), a recipe member's keys and
their checks (`recipe_schema`) and a worker process's command line (`as_arguments`) are all read from its fields, so
an option added here is a flag, a recipe key and part of a worker's command with no other file touched.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from dataclasses import dataclass, field

from ..config import CALIBRATION_METHODS, EPOCHS, HEAD_EPOCHS, LOSSES, SEED, UserError, checked_name
from ..networks import registry

INPUT_SIDE = (32, 1024)  # pixels, each side of an input size
SEEDS = (0, 2**32 - 1)


def option(default=None, help: str = "", choices=None, bounds=None, recipe: bool = True, worker: bool = True,
           key: str | None = None, check=None):
    """A field of an options dataclass. recipe: a recipe member may set it (as `key`, the field's name unless given);
    worker: a worker process gets it on its command line (else it keeps its own default); check: a function that
    returns the value or raises UserError; choices: a tuple, or a function that returns one when asked (the
    registry's names, which a test or a plugin may add to after this module is imported)."""
    return field(default=default, metadata={"help": help, "choices": choices, "bounds": bounds, "recipe": recipe,
                                            "worker": worker, "key": key, "check": check})


def model_folder_name(name: str) -> str:
    return checked_name(name, "--name", nested=True)


@dataclass
class TrainConfig:
    model: str = option("efficientnet_lite0", "the network (postergenre/networks/registry.py)",
                        choices=registry.names, key="backbone")
    name: str | None = option(None, "folder under models/ (default: the model's name)", recipe=False,
                              check=model_folder_name)
    epochs: int | None = option(None, f"phase 1, the head (default {HEAD_EPOCHS}), or a CNN from scratch "
                                f"({', '.join(f'{k} {v}' for k, v in EPOCHS.items())})", bounds=(1, 10_000))
    batch_size: int = option(64, "images a batch: the CNNs, fine-tuning, feature extraction", bounds=(1, 4096))
    head_batch_size: int = option(256, "a head on cached features (as good as 64 on validation, twice as fast)",
                                  bounds=(1, 65_536))
    learning_rate: float | None = option(None, "phase 1 (default 1e-3; the custom CNN's one-cycle peak 3e-3)",
                                         bounds=(1e-8, 1.0))
    loss: str = option("bce", "class-imbalance handling in the loss", choices=LOSSES)
    oversample: bool = option(False, "repeat posters of rare genres")
    input_size: tuple[int, int] | None = option(None, "HxW, e.g. 224x152 (default: the model's, keeping the poster's "
                                                      "aspect)", bounds=INPUT_SIDE)
    fit: str = option("crop", "how posters meet the input size", choices=("crop", "squash", "pad"))
    tta: bool = option(False, "pretrained: average the features of each poster and its mirror image")
    calibration: str = option("auto", "per-genre calibration fitted on validation (auto: the lowest cross-validated "
                                      "log-loss)", choices=("auto",) + CALIBRATION_METHODS)
    fine_tune_epochs: int = option(0, "phase 2 epochs (0: the head only)", bounds=(0, 10_000))
    fine_tune_layers: int = option(20, "backbone layers unfrozen in phase 2", bounds=(0, 1000))
    fine_tune_learning_rate: float = option(1e-4, "phase 2 learning rate", bounds=(1e-8, 1.0))
    fine_tune_on: str = option("activations", "phase 2 on the frozen blocks' output cached once (fast) or on images "
                                              "every epoch", choices=("activations", "images"))
    fine_tune_variants: int = option(2, "activations: cached variants of each training poster (it and its mirror)",
                                     bounds=(1, 16))
    fine_tune_photo_variants: int = option(0, "activations: of those variants, how many show each poster as a phone "
                                              "photo of it (data/photo_views.py)", bounds=(0, 16))
    jpeg_quality: str = option("random", "phase 2: each poster re-saved at a random JPEG quality of 30-90, or as "
                                         "stored", choices=("random", "stored"))
    feature_variants: int = option(0, "phase 1: the head learns from N variants of each training poster re-saved at "
                                      "random JPEG qualities of 30-90, every other one mirrored (0: as stored; each "
                                      "variant is one more pass of the backbone)", bounds=(0, 16))
    photo_variants: int = option(0, "phase 1: of those variants, how many show each poster as a phone photo of it "
                                    "(on a wall, turned, in perspective, blurred, lit: data/photo_views.py)",
                                 bounds=(0, 16))
    patience: int = option(5, "early-stopping patience in epochs", bounds=(1, 10_000))
    schedule: str | None = option(None, "learning-rate schedule (default: one_cycle for custom_cnn, else plateau)",
                                  choices=("plateau", "one_cycle"))
    seed: int = option(SEED, "seed of every random choice", bounds=SEEDS, recipe=False)
    strategy: str = option("none", "tf.distribute strategy (mirrored: several GPUs; multiworker: several hosts, "
                                   "TF_CONFIG)", choices=("none", "mirrored", "multiworker"), recipe=False,
                           worker=False)
    weights: str | None = option(None, "backbone weights file (vgg16, densenet121)", recipe=False, worker=False)
    cache: bool = option(True, "cache features and decoded images on disk", recipe=False, worker=False)
    limit: int | None = option(None, "only the first N posters of each split (quick tries, tests)", bounds=(1, 10**9),
                               recipe=False, worker=False)

    def __post_init__(self):
        check(self)
        self.input_size = tuple(self.input_size or registry.get(self.model).input_size)
        self.name = self.name or self.model
        self.epochs = self.epochs or EPOCHS.get(self.model, HEAD_EPOCHS)
        self.schedule = self.schedule or ("one_cycle" if self.model == "custom_cnn" else "plateau")
        self.learning_rate = self.learning_rate or (3e-3 if self.model == "custom_cnn" else 1e-3)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def base_type(options: type, name: str) -> type:
    """A field's type without `| None`: str, int, float, bool or tuple."""
    hint = typing.get_type_hints(options)[name]
    kinds = [typing.get_origin(t) or t for t in typing.get_args(hint) or (hint,) if t is not type(None)]
    return kinds[0]


def choices_of(f: dataclasses.Field) -> tuple | None:
    choices = f.metadata["choices"]
    return tuple(choices()) if callable(choices) else choices


def value_problem(f: dataclasses.Field, value, kind: type) -> str | None:
    """What is wrong with `value` for field `f` (None when nothing is)."""
    if value is None:
        return None
    if f.metadata["check"]:
        try:
            f.metadata["check"](value)
        except UserError as exc:
            return str(exc)
    choices, bounds = choices_of(f), f.metadata["bounds"]
    if choices is not None and value not in choices:
        return f"{value!r} is not one of {', '.join(choices)}"
    numbers = list(value) if kind is tuple else [value]
    inside = bounds is None or all(not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
                                   and bounds[0] <= v <= bounds[1] for v in numbers)
    if kind is tuple and (len(numbers) != 2 or not inside or not all(isinstance(v, int) for v in numbers)):
        return f"expected [height, width], each {bounds[0]} to {bounds[1]} pixels, got {numbers!r}"
    if not inside:
        return f"{value!r} is out of range (from {bounds[0]:g} to {bounds[1]:g})"
    return None


PHOTOS_AMONG = {"photo_variants": "feature_variants", "fine_tune_photo_variants": "fine_tune_variants"}


def check(config) -> None:
    """Every field's value against its choices and bounds: one line naming the option and what is allowed. (The
    model is left to the registry: a blend's model folder names no backbone.)"""
    for f in dataclasses.fields(config):
        problem = f.name != "model" and value_problem(f, getattr(config, f.name), base_type(type(config), f.name))
        if problem:
            raise UserError(problem if f.metadata["check"] else f"{flag(f.name)[2:]}: {problem}")
    for photos, variants in PHOTOS_AMONG.items():
        if getattr(config, photos, 0) > getattr(config, variants, 0):
            raise UserError(f"{flag(photos)[2:]}: {getattr(config, photos)} is more than {flag(variants)[2:]} "
                            f"({getattr(config, variants)}): the photos are some of those variants")
    if getattr(config, "fine_tune_photo_variants", 0) and getattr(config, "fine_tune_on", "") != "activations":
        raise UserError("fine-tune-photo-variants: photographed variants are cached activations; fine-tune-on "
                        f"{config.fine_tune_on} sees each poster as stored, augmented")


def parse_size(text: str) -> tuple[int, int]:
    """HxW (224x152)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HxW, e.g. 224x152") from None
    return height, width


def flag_type(f: dataclasses.Field, kind: type):
    """An argparse type for field `f`: the text converted, then held to the field's checks and bounds."""
    def parse(text: str):
        try:
            value = parse_size(text) if kind is tuple else kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") \
                from None
        problem = value_problem(f, value, kind)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value
    parse.__name__ = kind.__name__  # argparse names it in its messages
    return parse


def add_flags(parser: argparse.ArgumentParser, options: type = TrainConfig) -> None:
    """A flag for every field of `options`, defaulting to None so that the dataclass's own default applies."""
    for f in dataclasses.fields(options):
        kind, default = base_type(options, f.name), f.default
        shown = "" if default is None or kind is bool else f" (default {default})"
        help_text = f.metadata["help"] + shown
        if kind is bool:
            parser.add_argument(flag(f.name), action=argparse.BooleanOptionalAction, default=None,
                                help=f"{help_text} (default: {'yes' if default else 'no'})")
        else:
            parser.add_argument(flag(f.name), type=flag_type(f, kind), default=None, choices=choices_of(f),
                                help=help_text)


def from_arguments(args: argparse.Namespace, options: type = TrainConfig):
    """The options dataclass of parsed flags (a flag not given keeps the dataclass's default)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(options)}
    return options(**{name: value for name, value in given.items() if value is not None})


def as_arguments(config) -> list[str]:
    """The flags that make the same options in another process (fields marked worker=False are left out)."""
    args = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if not f.metadata["worker"] or value is None:
            continue
        if isinstance(value, bool):
            args.append(flag(f.name) if value else f"--no-{flag(f.name)[2:]}")
        elif isinstance(value, tuple):
            args += [flag(f.name), "x".join(map(str, value))]
        else:
            args += [flag(f.name), str(value)]
    return args


def recipe_schema(options: type = TrainConfig) -> dict[str, dataclasses.Field]:
    """A recipe member's keys (a field's `key` or name) and the fields they set."""
    return {f.metadata["key"] or f.name: f for f in dataclasses.fields(options) if f.metadata["recipe"]}


def recipe_type(options: type, f: dataclasses.Field) -> type:
    """The TOML type of a field's recipe key (a tuple is a list)."""
    kind = base_type(options, f.name)
    return list if kind is tuple else kind
