"""A recipe: everything that makes a shipped model, in one TOML file (recipes/default.toml).

`read_recipe` checks the whole file before any work starts: an unknown key or backbone, a missing source, members
of different vocabularies or a value of the wrong type stops it with one line naming the file, the key and what is
wrong. Relative source paths are read from the recipe file's folder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..config import (
    CALIBRATION_METHODS,
    PRIOR_ESTIMATORS,
    QUANTIZATIONS,
    CleanConfig,
    SplitConfig,
    UserError,
    VocabularyRules,
    checked_name,
)
from ..networks import registry
from ..text.ocr import OcrSettings
from ..training.options import SEEDS, TrainConfig, base_type, recipe_schema, recipe_type, value_problem

VOCABULARY_KEYS = {"drop": list, "merge": dict, "synonyms": dict, "min_count": int, "other": str,
                   "drop_small_other": bool}
SECTIONS = {
    "name": str, "seed": int, "description": str,
    "data": {"sources": list, "train_only": list, "outside": list, "limit": int},
    "clean": {"min_width": int, "min_height": int},
    "vocabulary": VOCABULARY_KEYS,
    "split": {"val": float, "test": float, "seed": int},
    "text": {"side": int},
    "blend": {"calibration": str},
    "evaluate": {"bootstrap": int, "adapt_prior": bool, "estimator": str},
    "ship": {"quantize": str, "lean": bool},
    "members": list,
}
REQUIRED = ("name", "data", "members")
# inclusive bounds of every number a recipe may set; a value outside stops the recipe before any work
BOUNDS = {"seed": SEEDS, "data.limit": (1, 10**9), "clean.min_width": (1, 10_000), "clean.min_height": (1, 10_000),
          "vocabulary.min_count": (0, 10**7), "split.seed": SEEDS, "text.side": (32, 4096),
          "evaluate.bootstrap": (10, 100_000)}
MAX_DESCRIPTION = 1000
MAX_HELD_OUT = 0.6  # val + test
TYPE_WORDS = {str: "a string", int: "a whole number", float: "a number", bool: "true or false", list: "a list",
              dict: "a table"}


@dataclass
class Recipe:
    path: Path
    text: str
    data: dict

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def seed(self) -> int:
        return self.data.get("seed", SplitConfig.seed)

    def sources(self) -> list[Path]:
        return [self.resolve(s) for s in self.data["data"]["sources"]]

    def train_only(self) -> list[Path]:
        """Sources that only ever train: posters chosen by genre, kept out of every estimate."""
        return [self.resolve(s) for s in self.data["data"].get("train_only", [])]

    def outside(self) -> list[Path]:
        """Collections evaluated, never trained on; the ones not on this machine are left out."""
        return [p for p in (self.resolve(s) for s in self.data["data"].get("outside", [])) if p.exists()]

    def resolve(self, source: str) -> Path:
        path = Path(source).expanduser()
        return path if path.is_absolute() else (self.path.parent / path).resolve()

    def section(self, name: str) -> dict:
        return self.data.get(name, {})

    def vocabulary_rules(self) -> VocabularyRules:
        return VocabularyRules(**self.section("vocabulary"))

    def split_config(self) -> SplitConfig:
        return SplitConfig(**{"seed": self.seed, **self.section("split")})

    def clean_config(self) -> CleanConfig:
        return CleanConfig(**self.section("clean"))

    def ocr_settings(self) -> OcrSettings:
        return OcrSettings(**self.section("text"))

    def members(self) -> list[dict]:
        return self.data["members"]

    def member_config(self, member: dict, folder_name: str, options: type = TrainConfig) -> dict:
        """The options' fields of one member (its folder, the recipe's seed)."""
        schema = recipe_schema(options)
        config = {schema[k].name: tuple(v) if isinstance(v, list) else v for k, v in member.items() if k in schema}
        return {**config, "name": folder_name, "seed": self.seed}

    def with_sources(self, sources: list[str]) -> Recipe:
        """The same recipe on other sources (e.g. the full Kaggle MovieGenre.csv), paths as given (from here)."""
        data = {**self.data, "data": {**self.data["data"], "sources": [str(Path(s).resolve()) for s in sources]}}
        checked = Recipe(self.path, self.text, data)
        _check_sources(checked, "data.sources", data["data"]["sources"])
        return checked


def read_recipe(path: str | Path, options: type = TrainConfig) -> Recipe:
    """The recipe at `path`, checked whole (its members against `options`); UserError names the file, the key and
    what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such recipe file")
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raise UserError(f"{path}: starts with a UTF-8 byte-order mark, which TOML does not allow; save it as plain "
                        "UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save it as "
                        "UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    recipe = Recipe(path.resolve(), text, data)
    check(recipe, str(path), options)
    return recipe


def _fail(where: str, key: str, what: str):
    raise UserError(f"{where}: {key}: {what}")


def _type_ok(value, expected) -> bool:
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _check_table(table: dict, schema: dict, prefix: str, where: str) -> None:
    for key, value in table.items():
        name = f"{prefix}{key}"
        if key not in schema:
            _fail(where, name, f"unknown key (known: {', '.join(sorted(schema))})")
        expected = schema[key]
        if isinstance(expected, dict):
            if not isinstance(value, dict):
                _fail(where, name, f"expected a table [{name}], got {type(value).__name__} {value!r}")
            _check_table(value, expected, f"{name}.", where)
        elif not _type_ok(value, expected):
            _fail(where, name, f"expected {TYPE_WORDS[expected]}, got {type(value).__name__} {value!r}")


def _check_sources(recipe: Recipe, key: str, sources: list, where: str | None = None) -> None:
    where = where or str(recipe.path)
    if not sources:
        _fail(where, key, "no source given")
    for i, source in enumerate(sources):
        if not isinstance(source, str):
            _fail(where, f"{key}[{i}]", f"expected a path string, got {source!r}")
        if not recipe.resolve(source).exists():
            _fail(where, f"{key}[{i}]", f"{recipe.resolve(source)}: no such file or folder")


def _check_bounds(table: dict, bounds: dict, prefix: str, where: str) -> None:
    """Every number of `table` that `bounds` names lies within them (finite, for a float)."""
    for key, (low, high) in bounds.items():
        section, _, name = key.rpartition(".")
        value = (table.get(section, {}) if section else table).get(name)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value) or not low <= value <= high:
            _fail(where, f"{prefix}{key}", f"{value!r} is out of range (from {low:g} to {high:g})")


def _check_member(member, index: int, recipe: Recipe, where: str, options: type) -> None:
    key = f"members[{index}]"
    if not isinstance(member, dict):
        _fail(where, key, f"expected a table [[members]], got {member!r}")
    for required in ("name", "backbone"):
        if required not in member:
            _fail(where, f"{key}.{required}", "missing")
    schema = recipe_schema(options)
    _check_table(member, {"name": str, "vocabulary": dict, **{k: recipe_type(options, f) for k, f in schema.items()}},
                 f"{key}.", where)
    _check_name(member["name"], f"{key}.name", where)
    if member["backbone"] not in registry.names() or not registry.is_pretrained(member["backbone"]):
        pretrained = [n for n in registry.names() if registry.is_pretrained(n)]
        _fail(where, f"{key}.backbone", f"unknown backbone {member['backbone']!r} (a blend member is one of "
                                        f"{', '.join(pretrained)})")
    for name, value in member.items():
        if name in schema:
            problem = value_problem(schema[name], value, base_type(options, schema[name].name))
            if problem:
                _fail(where, f"{key}.{name}", problem)
    if "vocabulary" in member:
        _check_table(member["vocabulary"], VOCABULARY_KEYS, f"{key}.vocabulary.", where)
        own = dataclasses.asdict(VocabularyRules(**{**recipe.section("vocabulary"), **member["vocabulary"]}))
        if own != dataclasses.asdict(recipe.vocabulary_rules()):
            _fail(where, f"{key}.vocabulary", "differs from the recipe's [vocabulary]: members of different "
                                              "vocabularies cannot be blended (one split, one vocabulary)")


def _check_name(name, key: str, where: str) -> None:
    try:
        checked_name(name, "name")
    except UserError as exc:
        _fail(where, key, str(exc).removeprefix("name "))


def check(recipe: Recipe, where: str, options: type = TrainConfig) -> None:
    data = recipe.data
    for key in REQUIRED:
        if key not in data:
            _fail(where, key, "missing")
    _check_table({k: v for k, v in data.items() if k != "members"}, SECTIONS, "", where)
    _check_name(data["name"], "name", where)
    _check_bounds(data, BOUNDS, "", where)
    if len(data.get("description", "")) > MAX_DESCRIPTION:
        _fail(where, "description", f"{len(data['description']):,} characters; at most {MAX_DESCRIPTION:,}")
    if not isinstance(data["members"], list) or len(data["members"]) < 1:
        _fail(where, "members", "expected one or more [[members]] tables")
    names = [m.get("name") if isinstance(m, dict) else None for m in data["members"]]
    for index, member in enumerate(data["members"]):
        _check_member(member, index, recipe, where, options)
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        _fail(where, "members", f"two members are named {sorted(duplicates)[0]!r}")
    if len(data["members"]) > 1:
        sizes = {m.get("fit", "crop") for m in data["members"]}
        if len(sizes) > 1:
            _fail(where, "members", f"members meet the poster size differently ({', '.join(sorted(sizes))}); "
                                    f"a blend needs one fit")
    if "blend" in data and data["blend"].get("calibration", "auto") not in ("auto",) + CALIBRATION_METHODS:
        _fail(where, "blend.calibration", f"{data['blend']['calibration']!r} is not one of "
                                          f"{', '.join(('auto',) + CALIBRATION_METHODS)}")
    quantize = recipe.section("ship").get("quantize", "none")
    if quantize not in QUANTIZATIONS:
        _fail(where, "ship.quantize", f"{quantize!r} is not one of {', '.join(QUANTIZATIONS)}")
    estimator = recipe.section("evaluate").get("estimator")
    if estimator is not None and estimator not in PRIOR_ESTIMATORS:
        _fail(where, "evaluate.estimator", f"{estimator!r} is not one of {', '.join(PRIOR_ESTIMATORS)}")
    _check_sources(recipe, "data.sources", data["data"].get("sources", []), where)
    if data["data"].get("train_only"):
        _check_sources(recipe, "data.train_only", data["data"]["train_only"], where)
    for index, source in enumerate(data["data"].get("outside", [])):
        if not isinstance(source, str):
            _fail(where, f"data.outside[{index}]", f"expected a path string, got {source!r}")
    split = recipe.section("split")
    for key in ("val", "test"):
        if key in split and not 0 < split[key] < 0.5:
            _fail(where, f"split.{key}", f"expected a share between 0 and 0.5, got {split[key]}")
    shares = recipe.split_config()
    if shares.val + shares.test > MAX_HELD_OUT:
        _fail(where, "split", f"val {shares.val:g} + test {shares.test:g} leaves {1 - shares.val - shares.test:.0%} "
                              f"to train; hold out at most {MAX_HELD_OUT:.0%}")
