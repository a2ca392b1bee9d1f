"""A training option is declared once (training/options.py): the CLI's flags, a recipe member's checks and a worker's
command line all follow the schema, so a new field needs no other file."""
from __future__ import annotations

import argparse
import dataclasses

import pytest

from postergenre.config import UserError
from postergenre.training.options import (TrainConfig, add_flags, as_arguments, from_arguments, option,
                                          recipe_schema)

RECIPE = """
name = "r"
[data]
sources = ["{source}"]
[[members]]
name = "m"
backbone = "efficientnet_lite0"
{extra}
"""


@dataclasses.dataclass
class WithWarmup(TrainConfig):
    """A copy of the schema with one more option, as a developer would add it to TrainConfig."""
    warmup_epochs: int = option(0, "epochs of linear learning-rate warm-up", bounds=(0, 50))
    mixup: bool = option(False, "mix pairs of posters and their genres")


def parser_for(options: type) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train")
    add_flags(parser, options)
    return parser


def test_a_new_field_is_a_flag_with_its_help_and_default():
    text = parser_for(WithWarmup).format_help()
    assert "--warmup-epochs" in text and "linear learning-rate warm-up (default 0)" in text
    assert "--mixup, --no-mixup" in text
    config = from_arguments(parser_for(WithWarmup).parse_args(["--warmup-epochs", "3", "--mixup"]), WithWarmup)
    assert config.warmup_epochs == 3 and config.mixup is True
    assert "--warmup-epochs" not in parser_for(TrainConfig).format_help(), "the copy, not the schema, has it"


def test_a_new_field_is_accepted_in_a_recipe_and_checked_against_its_bounds(tmp_path):
    from postergenre.app.recipe import read_recipe
    path = tmp_path / "recipe.toml"
    path.write_text(RECIPE.format(source=tmp_path, extra="warmup_epochs = 4"))
    recipe = read_recipe(path, WithWarmup)
    assert WithWarmup(**recipe.member_config(recipe.members()[0], "x", WithWarmup)).warmup_epochs == 4
    with pytest.raises(UserError, match=r"members\[0\]\.warmup_epochs: unknown key"):
        read_recipe(path)  # today's schema does not know it
    path.write_text(RECIPE.format(source=tmp_path, extra="warmup_epochs = 99"))
    with pytest.raises(UserError, match=r"members\[0\]\.warmup_epochs: 99 is out of range \(from 0 to 50\)"):
        read_recipe(path, WithWarmup)


def test_a_worker_gets_every_field_a_worker_needs_and_parses_back_the_same_options():
    config = WithWarmup(model="efficientnet_lite1", name="a.parts/m", warmup_epochs=2, mixup=True, tta=True,
                        input_size=(240, 160), limit=10)
    arguments = as_arguments(config)
    assert "--warmup-epochs" in arguments and "--mixup" in arguments and "--limit" not in arguments
    back = from_arguments(parser_for(WithWarmup).parse_args(arguments), WithWarmup)
    assert back == dataclasses.replace(config, limit=None)


@pytest.mark.parametrize("field, value, message", [
    ("loss", "hinge", r"loss: 'hinge' is not one of bce, weighted, focal, asymmetric"),
    ("fine_tune_variants", 0, r"fine-tune-variants: 0 is out of range \(from 1 to 16\)"),
    ("input_size", (10, 80), r"input-size: expected \[height, width\], each 32 to 1024 pixels"),
    ("name", "../x", r"--name '\.\./x': a name is"),
])
def test_a_value_outside_what_the_schema_allows_is_one_line(field, value, message):
    with pytest.raises(UserError, match=message):
        TrainConfig(**{field: value})


@pytest.mark.parametrize("options, message", [
    (dict(fine_tune_variants=2, fine_tune_photo_variants=3), "fine-tune-photo-variants: 3 is more than "
                                                             r"fine-tune-variants \(2\)"),
    (dict(fine_tune_photo_variants=1, fine_tune_on="images"), "photographed variants are cached activations"),
])
def test_photographed_fine_tuning_variants_are_some_of_the_cached_ones(options, message):
    with pytest.raises(UserError, match=message):
        TrainConfig(**options)
    TrainConfig(fine_tune_variants=3, fine_tune_photo_variants=1)  # the poster, its mirror, a photo


def test_the_recipe_names_the_backbone_and_never_sets_what_a_run_owns():
    schema = recipe_schema()
    assert schema["backbone"].name == "model"
    assert not {"name", "seed", "strategy", "limit", "cache", "weights"} & set(schema)
