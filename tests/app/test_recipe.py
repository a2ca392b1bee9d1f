"""A recipe's values, names and encoding: everything out of bounds stops it in one line before any work."""
import math
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postergenre.app.recipe import BOUNDS, read_recipe
from postergenre.training.options import INPUT_SIDE, recipe_schema
from postergenre.config import MODEL_NAME, UserError, checked_name
from tests.app.test_rebuild import small_recipe

FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def outside(low, high):
    """Numbers just and far outside [low, high], of the bound's type, and the non-finite floats."""
    if isinstance(low, float) or isinstance(high, float):
        return st.one_of(st.floats(max_value=low, exclude_max=True, allow_nan=False),
                         st.floats(min_value=high, exclude_min=True), st.just(math.nan), st.just(-math.inf))
    return st.one_of(st.integers(max_value=low - 1), st.integers(min_value=high + 1))


def with_value(text: str, key: str, value) -> str:
    """The recipe text with `key` (section.name, or members[1]'s option) set to `value`."""
    literal = "nan" if isinstance(value, float) and math.isnan(value) else (
        ("-inf" if value < 0 else "inf") if isinstance(value, float) and math.isinf(value) else repr(value))
    section, _, name = key.rpartition(".")
    if section == "member":
        head, member = text.split('name = "tuned"\n', 1)
        lines = [line for line in member.split("\n[evaluate]")[0].splitlines() if not line.startswith(f"{name} = ")]
        rest = member.split("\n[evaluate]", 1)[1]
        return head + 'name = "tuned"\n' + "\n".join(lines + [f"{name} = {literal}"]) + "\n[evaluate]" + rest
    if not section:
        return text.replace("seed = 7", f"seed = {literal}") if name == "seed" else f"{name} = {literal}\n" + text
    if f"[{section}]" in text:
        body = text.split(f"[{section}]\n", 1)[1]
        existing = next((line for line in body.splitlines() if line.startswith(f"{name} = ")), None)
        if existing:
            return text.replace(f"[{section}]\n" + body, f"[{section}]\n" + body.replace(existing, f"{name} = {literal}", 1))
        return text.replace(f"[{section}]\n", f"[{section}]\n{name} = {literal}\n")
    return text + f"\n[{section}]\n{name} = {literal}\n"


MEMBER_BOUNDS = {key: f.metadata["bounds"] for key, f in recipe_schema().items()
                 if f.metadata["bounds"] and key != "input_size"}
KEYS = [*BOUNDS, *(f"member.{k}" for k in MEMBER_BOUNDS if k not in ("epochs",))]


@FEW
@given(data=st.data())
def test_every_number_out_of_its_bounds_is_refused_naming_its_key(tmp_path, sample, data):
    key = data.draw(st.sampled_from(KEYS))
    low, high = BOUNDS.get(key) or MEMBER_BOUNDS[key.removeprefix("member.")]
    value = data.draw(outside(low, high))
    path = tmp_path / "recipe.toml"
    path.write_text(with_value(small_recipe(sample, member_two=""), key, value))
    tomllib.loads(path.read_text())  # the recipe itself is TOML: only its value is wrong
    with pytest.raises(UserError) as error:
        read_recipe(path)
    message = str(error.value)
    named = key.replace("member.", "members[1].") if key.startswith("member.") else key
    assert "\n" not in message and f"{named}:" in message and "out of range" in message, message


@pytest.mark.parametrize("size", [[100000, 100000], [0, 80], [112, 31], [INPUT_SIDE[1] + 1, 80]])
def test_an_input_size_out_of_bounds_is_refused(tmp_path, sample, size):
    path = tmp_path / "recipe.toml"
    path.write_text(small_recipe(sample).replace("input_size = [112, 80]\nepochs = 2", f"input_size = {size}\nepochs = 2"))
    with pytest.raises(UserError, match=r"members\[1\]\.input_size: expected \[height, width\], each 32 to 1024"):
        read_recipe(path)


@pytest.mark.parametrize("shares", [(0.49, 0.49), (0.3, 0.31)])
def test_held_out_shares_that_leave_too_little_to_train_are_refused(tmp_path, sample, shares):
    path = tmp_path / "recipe.toml"
    path.write_text(small_recipe(sample) + f"\n[split]\nval = {shares[0]}\ntest = {shares[1]}\n")
    with pytest.raises(UserError, match="split: val .* to train; hold out at most 60%"):
        read_recipe(path)


def test_a_long_description_a_bom_and_other_encodings_are_refused_in_one_line(tmp_path, sample):
    path = tmp_path / "recipe.toml"
    path.write_text(f'description = "{"x" * 5_000_000}"\n' + small_recipe(sample))
    with pytest.raises(UserError, match="description: 5,000,000 characters; at most 1,000"):
        read_recipe(path)
    path.write_bytes(b"\xef\xbb\xbf" + small_recipe(sample).encode())
    with pytest.raises(UserError, match="byte-order mark"):
        read_recipe(path)
    path.write_bytes(small_recipe(sample).replace('"tiny"', '"t\xe9ny"').encode("latin-1"))
    with pytest.raises(UserError, match=r"not UTF-8 text \(byte 0xe9 at offset \d+\)"):
        read_recipe(path)


@FEW
@given(name=st.text(min_size=0, max_size=30))
def test_a_name_is_one_folder_under_models_or_refused(name):
    if MODEL_NAME.fullmatch(name) and set(name) != {"."}:
        assert checked_name(name) == name
        assert "/" not in name and "\\" not in name and name not in (".", "..")
    else:
        with pytest.raises(UserError) as error:
            checked_name(name)
        assert "\n" not in str(error.value).replace(repr(name), "")


@pytest.mark.parametrize("where, name", [("name", "../../../x"), ("member", "../../x"), ("name", "/abs/path"),
                                         ("member", ".."), ("name", "a b")])
def test_recipe_names_that_would_escape_models_are_refused(tmp_path, sample, where, name):
    text = small_recipe(sample)
    text = text.replace('name = "tiny"', f"name = {name!r}") if where == "name" else \
        text.replace('name = "tuned"', f"name = {name!r}")
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=r"(name|members\[1\]\.name): .*\(one folder under models/"):
        read_recipe(path)


@pytest.mark.parametrize("stage", ["train", "rebuild", "blend"])
def test_a_name_option_that_would_escape_models_stops_the_command(tmp_path, capsys, stage):
    from postergenre.cli import main
    args = {"train": ["train", "--name", "/abs/path"], "rebuild": ["rebuild", "recipe.toml", "--name", "../x"],
            "blend": ["blend", "a", "b", "--name", "../../x"]}[stage]
    with pytest.raises(SystemExit) as code:
        main(["--root", str(tmp_path / "p"), *args])
    assert code.value.code == 2
    assert "one folder under models/" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_training_only_sources_are_read_from_the_recipe_and_checked(tmp_path, sample):
    path = tmp_path / "recipe.toml"
    rare = sample.parent / "kaggle_posters_rare"
    path.write_text(small_recipe(sample).replace("[data]\n", f'[data]\ntrain_only = ["{rare}"]\n'))
    assert read_recipe(path).train_only() == [rare]
    path.write_text(small_recipe(sample).replace("[data]\n", f'[data]\ntrain_only = ["{tmp_path / "nowhere"}"]\n'))
    with pytest.raises(UserError, match=r"data\.train_only\[0\]: .*nowhere: no such file or folder"):
        read_recipe(path)
