"""`postergenre rebuild RECIPE`: the shipped model rebuilt from its recipe, stage by stage, resumable.

Stages, in order: get-data, clean, encode, read-text, one per member, blend, train-text, evaluate, card and the
check against models/default. Each stage has a key: its recipe section and the fingerprints of its inputs (the
outputs of the stages before it). A stage whose key and output fingerprint match the ones recorded in
models/<name>.parts/stages.json is current and skipped; a changed value re-runs its stage, and the stages after
it only when their inputs changed. A killed run resumes when the same command is run again: a stage that was
running starts again with its own resume (a member's training continues from its last epoch backup, the words'
reader from its cache).
"""
from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from pathlib import Path

from ..config import DEFAULT_PRIOR_ESTIMATOR, REPO_ROOT, Paths, UserError
from ..data.io import read_csv, read_json, write_json
from ..modelfolder.provenance import LOCK_FILE, lock_hash, project_relative
from ..modelfolder.layout import (CALIBRATION_FILE, GENRES_FILE, NETWORK_FILES, THRESHOLDS_FILE, read_manifest,
                                      write_manifest)
from ..training.options import as_arguments
from .recipe import Recipe
from .stages import Stage, StageLog, files_fingerprint, run_stages, source_fingerprint

STATE_FILE = "stages.json"
REPORT_FILE = "rebuild_report"
CHECKED = ("macro_ap", "top3_hit_rate", "micro_f1@tuned")  # the figures the check compares on every test set


def network_fingerprint(folder: Path) -> str:
    """A model folder's network and the files that turn its outputs into answers (not its manifest, which later
    stages add to)."""
    return files_fingerprint([folder / n for n in (*NETWORK_FILES, GENRES_FILE, CALIBRATION_FILE, THRESHOLDS_FILE)
                              if (folder / n).exists()] + sorted(folder.glob("members/*/*.h5"))
                             + sorted(folder.glob("members/*/*.keras")))


class Rebuild:
    """The stages of one recipe in one project."""

    def __init__(self, recipe: Recipe, paths: Paths, name: str | None = None, limit: int | None = None,
                 workers: int | None = None, progress: bool = True):
        self.recipe, self.paths, self.workers, self.progress = recipe, paths, workers, progress
        self.name = name or recipe.name
        if self.name == "default":
            raise UserError("--name default: the rebuilt model is written beside models/default, never over it "
                            "(--ship replaces it)")
        self.limit = limit if limit is not None else recipe.section("data").get("limit")
        self.folder = paths.models / self.name
        self.parts = paths.models / f"{self.name}.parts"
        self.log = StageLog(self.parts / STATE_FILE)

    # fingerprints of the hand-over files
    def splits(self) -> str:
        from ..data.encode import SPLITS
        return files_fingerprint([self.paths.split_csv(s) for s in SPLITS] + [self.paths.genres_json])

    def member_folder(self, member: dict) -> Path:
        return self.parts / member["name"]

    def stages(self) -> list[Stage]:
        recipe, paths = self.recipe, self.paths
        data = {**recipe.section("data"), "sources": [str(s) for s in recipe.sources()], "limit": self.limit,
                "outside": None, **({"train_only": [str(s) for s in recipe.train_only()]} if recipe.train_only() else {})}
        stages = [
            Stage("get-data", data, lambda: [source_fingerprint(s) for s in recipe.sources() + recipe.train_only()],
                  self.get_data,
                  lambda: files_fingerprint([paths.movies_csv])),
            Stage("clean", recipe.section("clean"), lambda: [files_fingerprint([paths.movies_csv])], self.clean,
                  lambda: files_fingerprint([paths.clean_csv])),
            Stage("encode", [dataclasses.asdict(recipe.vocabulary_rules()), dataclasses.asdict(recipe.split_config())],
                  lambda: [files_fingerprint([paths.clean_csv])], self.encode, self.splits),
            Stage("read-text", dataclasses.asdict(recipe.ocr_settings()), lambda: [self.splits()], self.read_text,
                  self.text_output),
        ]
        for member in recipe.members():
            folder = self.member_folder(member)
            stages.append(Stage(f"train {member['name']}", recipe.member_config(member, member["name"]),
                                lambda: [self.splits()], lambda m=member: self.train_member(m),
                                lambda f=folder: network_fingerprint(f) if (f / GENRES_FILE).exists() else "",
                                fresh=lambda f=folder: shutil.rmtree(f, ignore_errors=True)))
        members = [self.member_folder(m) for m in recipe.members()]
        stages += [
            Stage("blend", recipe.section("blend"), lambda: [self.splits(), *map(network_fingerprint, members)],
                  self.blend, self.blend_output),
            Stage("train-text", dataclasses.asdict(recipe.ocr_settings()),
                  lambda: [self.blend_output(), self.text_output()], self.train_text, self.text_head_output),
            Stage("evaluate", {**self.evaluation_options(), "outside": [str(p) for p in recipe.outside()]},
                  lambda: [self.text_head_output(), self.splits(), *map(source_fingerprint, recipe.outside())],
                  self.evaluate, self.evaluation_output),
            Stage("card", {"recipe": recipe.hash, "lock": lock_hash()}, lambda: [self.evaluation_output()],
                  self.card, lambda: files_fingerprint([self.folder / "README.md"])),
            Stage("check", self.evaluation_options(),
                  lambda: [self.evaluation_output(), network_fingerprint(self.shipped_default())],
                  self.check, lambda: files_fingerprint([self.folder / f"{REPORT_FILE}.json"])),
        ]
        return stages

    def run(self, out=print) -> dict:
        started = time.perf_counter()
        out(f"rebuild {self.recipe.path.name} (recipe {self.recipe.hash}) -> {self.folder}"
            + (f", the first {self.limit} posters of each source" if self.limit else ""))
        done = run_stages(self.stages(), self.log, out)
        out(f"rebuild: {sum(v == 'ran' for v in done.values())} stage(s) ran, "
            f"{sum(v == 'current' for v in done.values())} current, in {time.perf_counter() - started:.0f} s")
        report = self.folder / f"{REPORT_FILE}.md"
        if report.exists():
            out(report.read_text())
        return done

    # the stages' work
    def get_data(self) -> str:
        from ..data.get_data import get_data
        movies = get_data(self.recipe.sources(), self.paths, limit=self.limit, progress=self.progress,
                          train_only=self.recipe.train_only())
        extra = int(movies.train_only.astype(int).sum())
        return f"{len(movies)} movies from {len(self.recipe.sources())} source(s)" + (
            f" and {len(self.recipe.train_only())} training-only ({extra})" if extra else "")

    def clean(self) -> str:
        from ..data.clean import clean
        kept, report = clean(self.paths, self.recipe.clean_config(), progress=self.progress)
        return f"{len(kept)} kept, {len(report)} dropped"

    def encode(self) -> str:
        from ..data.encode import encode
        frames = encode(self.paths, self.recipe.vocabulary_rules(), self.recipe.split_config(), figures=False)
        genres = read_json(self.paths.genres_json)["genres"]
        return f"{len(genres)} genres; " + ", ".join(f"{s} {len(f)}" for s, f in frames.items())

    def split_posters(self) -> list[str]:
        from ..data.encode import load_splits
        frames, _ = load_splits(self.paths)
        return [p for frame in frames.values() for p in frame.poster_path]

    def read_text(self) -> str:
        from ..text.ocr import Reader
        reader = Reader(self.recipe.ocr_settings(), self.paths.cache / "text")
        texts = reader.read(self.split_posters(), progress=self.progress, desc="read text (train+val+test)")
        with_words = sum(bool(t.text.strip()) for t in texts)
        return f"{len(texts)} posters, {with_words / max(1, len(texts)):.0%} with words"

    def text_output(self) -> str:
        """How many of the splits' posters the words' cache holds, under these OCR settings."""
        from ..text.ocr import TextCache, poster_key
        cache = self.paths.cache / "text" / f"{self.recipe.ocr_settings().key}.jsonl"
        if not cache.exists() or not self.paths.genres_json.exists():
            return ""
        known = TextCache(cache).entries
        posters = self.split_posters()
        return f"{sum(poster_key(p) in known for p in posters)}/{len(posters)} read"

    def train_member(self, member: dict) -> str:
        from ..training.train import TrainConfig, train
        # a name under models/ (train writes models/<name>), relative so that the manifest reads the same anywhere
        config = TrainConfig(**self.recipe.member_config(member, f"{self.parts.name}/{member['name']}"))
        if self.workers:
            self.train_on_workers(config)
        else:
            train(config, self.paths)
        manifest = read_manifest(self.member_folder(member))
        return (f"validation macro AP {manifest['validation_metrics']['macro_ap']:.3f} in "
                f"{manifest['training_seconds']:.0f} s of training")

    def train_on_workers(self, config) -> None:
        from ..training.cluster import launch_local
        code = launch_local(self.workers, train_arguments(config, self.paths.root))
        if code:
            raise UserError(f"a worker failed (exit code {code}); run the same command again to resume")

    def blend(self) -> str:
        from ..training.ensemble import blend
        blend([str(self.member_folder(m)) for m in self.recipe.members()], self.name, self.paths,
              self.recipe.section("blend").get("calibration", "auto"))
        manifest = read_manifest(self.folder)
        weights = ", ".join(f"{m['name']} {m['weight']:g}" for m in manifest["members"])
        return f"weights {weights}; validation macro AP {manifest['validation_metrics']['macro_ap']:.3f}"

    def blend_output(self) -> str:
        return network_fingerprint(self.folder) if (self.folder / GENRES_FILE).exists() else ""

    def train_text(self) -> str:
        from ..training.text_head import train_text_head
        train_text_head(self.folder, self.paths, self.recipe.ocr_settings(), seed=self.recipe.seed,
                        progress=self.progress)
        validation = read_manifest(self.folder)["text"]["validation"]
        return "validation macro AP " + ", ".join(f"{k} {v['macro_ap']:.3f}" for k, v in validation.items())

    def text_head_output(self) -> str:
        from ..text.head import HEAD_ARRAYS, HEAD_JSON
        files = [self.folder / HEAD_JSON, self.folder / HEAD_ARRAYS]
        return files_fingerprint(files) if all(f.exists() for f in files) else ""

    def evaluate(self) -> str:
        from ..evaluation.evaluate import evaluate
        from ..modelfolder.ship import with_outside_results, with_test_results
        options = self.evaluation_options()
        result = evaluate(self.folder, paths=self.paths, progress=self.progress, **options)
        image_only = evaluate(self.folder, paths=self.paths, progress=self.progress, text=False, **options) \
            if result.get("text") else None
        outside = {p.name: evaluate(self.folder, p, self.paths, progress=self.progress, **options)
                   for p in self.recipe.outside()}
        write_manifest(with_outside_results(with_test_results(read_manifest(self.folder), result, image_only),
                                            outside), self.folder)
        figures = {set_name: metrics[self.name]["macro_ap"][0]
                   for set_name, metrics in self.evaluated_sets(self.folder).items()}
        return "macro AP " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items())

    def evaluation_options(self) -> dict:
        section = self.recipe.section("evaluate")
        return {"n_boot": section.get("bootstrap", 200), "adapt_prior": section.get("adapt_prior", True),
                "estimator": section.get("estimator", DEFAULT_PRIOR_ESTIMATOR), "figures": False}

    def evaluated_sets(self, folder: Path) -> dict:
        """{set: metrics} of a folder's test split (each source's part, where there are several) and the outside
        collections, as its eval_*.json files hold them."""
        test = read_json(folder / "eval_test.json")
        sets = dict(test.get("by_source") or {}) or {"test": test["metrics"]}
        for path in self.recipe.outside():
            if (folder / f"eval_{path.name}.json").exists():
                sets[path.name] = read_json(folder / f"eval_{path.name}.json")["metrics"]
        return sets

    def evaluation_output(self) -> str:
        names = ["eval_test.json", "eval_test_image.json", *(f"eval_{p.name}.json" for p in self.recipe.outside())]
        return files_fingerprint([self.folder / n for n in names]) if (self.folder / names[0]).exists() else ""

    def card(self) -> str:
        from ..modelfolder.card import write_model_card
        manifest = read_manifest(self.folder)
        manifest["recipe"] = recipe_provenance(self.recipe, self.paths.root)
        manifest["recipe"]["limit"] = self.limit
        write_manifest(manifest, self.folder)
        write_model_card(self.folder)
        return f"recipe {self.recipe.hash} in manifest.json and README.md"

    def shipped_default(self) -> Path:
        """The model the check compares with: the project's models/default, else the repository's."""
        default = self.paths.models / "default"
        return default if (default / "manifest.json").exists() else REPO_ROOT / "models" / "default"

    def check(self) -> str:
        from ..evaluation.evaluate import evaluate
        shipped = self.parts / "shipped"
        default = self.shipped_default()
        if not (default / "manifest.json").exists():
            return "no models/default to compare with"
        shutil.rmtree(shipped, ignore_errors=True)  # a copy, so that its evaluation leaves models/default as it is
        shutil.copytree(default, shipped, ignore=shutil.ignore_patterns("eval_*", "figures_*", "text_gain_*"))
        options = self.evaluation_options()
        evaluate(shipped, paths=self.paths, progress=self.progress, **options)
        for path in self.recipe.outside():
            evaluate(shipped, path, self.paths, progress=self.progress, **options)
        report = comparison(self.evaluated_sets(self.folder), self.evaluated_sets(shipped), self.name, "shipped",
                            same_data=read_manifest(self.folder)["data_hash"] == read_manifest(default)["data_hash"],
                            genres=(read_json(self.folder / GENRES_FILE)["genres"],
                                    read_json(default / GENRES_FILE)["genres"]))
        write_json(report, self.folder / f"{REPORT_FILE}.json")
        (self.folder / f"{REPORT_FILE}.md").write_text(report_markdown(report))
        inside = sum(row["inside"] for row in report["rows"])
        return f"{inside} of {len(report['rows'])} figures inside the shipped model's 95% interval"

    def ship(self) -> Path:
        if self.log.get("check").get("status") != "done":
            raise UserError("--ship: the rebuild has not finished; run it to the end first")
        image_only = self.folder / "eval_test_image.json"
        return ship_model(self.folder, self.paths.models / "default", self.paths,
                          self.recipe.section("ship").get("quantize", "none"),
                          read_json(self.folder / "eval_test.json"), read_json(image_only) if image_only.exists()
                          else None, lean=self.recipe.section("ship").get("lean", False), outside=self.recipe.outside(),
                          **{k: v for k, v in self.evaluation_options().items() if k != "figures"})


def train_arguments(config, root: Path) -> list[str]:
    """`postergenre --root ROOT train ...` arguments that make the same TrainConfig (a worker process's command)."""
    return ["--root", str(root), "train", *as_arguments(config)]


def recipe_provenance(recipe: Recipe, root: Path) -> dict:
    """What a manifest records of the recipe that made it: its path, hash and text, and the environment's lock."""
    return {"path": project_relative(recipe.path, root), "hash": recipe.hash, "text": recipe.text,
            "lock": {"file": LOCK_FILE.name, "hash": lock_hash()}}


def adapted_row(metrics: dict, model: str) -> str | None:
    return next((name for name in metrics if name.startswith(f"{model} (adapted")), None)


def comparison(rebuilt: dict, shipped: dict, rebuilt_name: str, shipped_name: str, same_data: bool = True,
               genres: tuple[list, list] | None = None) -> dict:
    """The rebuilt model beside the shipped one on every set both were evaluated on: each figure, both values, the
    shipped model's 95% interval, and whether the rebuilt value lies inside it."""
    rows = []
    for set_name in [s for s in rebuilt if s in shipped]:
        for label, mine, theirs in (("", rebuilt_name, shipped_name),
                                    (" (adapted)", adapted_row(rebuilt[set_name], rebuilt_name),
                                     adapted_row(shipped[set_name], shipped_name))):
            if mine is None or theirs is None:
                continue
            for figure in CHECKED if not label else ("top3_hit_rate",):
                value = rebuilt[set_name][mine][figure][0]
                shipped_value, low, high = shipped[set_name][theirs][figure]
                rows.append({"set": set_name, "figure": figure + label, "rebuilt": round(value, 4),
                             "shipped": round(shipped_value, 4), "low": round(low, 4), "high": round(high, 4),
                             "inside": bool(low <= value <= high)})
    notes = []
    if not same_data:
        notes.append("the rebuilt model's splits differ from the shipped model's (other sources, a limit or other "
                     "rules): the shipped model may have trained on some of these test posters, so its figures "
                     "here can read high")
    if genres and genres[0] != genres[1]:
        only = sorted(set(genres[0]) ^ set(genres[1]))
        notes.append(f"the two models know different genres ({', '.join(only)} in one only): each macro figure "
                     f"averages over its own model's genres present in the set")
    return {"rebuilt": rebuilt_name, "shipped": shipped_name, "rows": rows, "notes": notes,
            "inside": sum(r["inside"] for r in rows), "figures": len(rows)}


def report_markdown(report: dict) -> str:
    lines = [f"# {report['rebuilt']} (rebuilt) beside the shipped default", "",
             f"{report['inside']} of {report['figures']} figures lie inside the shipped model's 95% interval "
             "(bias-corrected bootstrap over the same posters).", "",
             "| set | figure | rebuilt | shipped | shipped 95% interval | inside |", "|---|---|---:|---:|---|---|"]
    for row in report["rows"]:
        lines.append(f"| {row['set']} | {row['figure']} | {row['rebuilt']:.3f} | {row['shipped']:.3f} | "
                     f"[{row['low']:.3f}, {row['high']:.3f}] | {'yes' if row['inside'] else '**no**'} |")
    lines += [f"\nNote: {note}." for note in report["notes"]]
    return "\n".join(lines) + "\n"


def ship_model(folder: Path, target: Path, paths: Paths, quantize: str = "none", result: dict | None = None,
               image_only: dict | None = None, lean: bool = False, outside: list[Path] = (), **options) -> Path:
    """Ship `folder` to `target` with its test figures (evaluated here unless given). A quantized network, or a
    lean folder's text head, is a different model: the shipped folder is evaluated again, on its test split and the
    `outside` collections (figures of other outside collections, the float network's, are dropped), so that its
    manifest and card give its own figures."""
    from ..evaluation.evaluate import evaluate
    from ..modelfolder.card import write_model_card
    from ..modelfolder.ship import ship, with_outside_results, with_test_results
    options = {"figures": False, "progress": False, "adapt_prior": True, **options}

    def with_and_without_words(model: Path) -> tuple[dict, dict | None]:
        result = evaluate(model, paths=paths, **options)
        return result, evaluate(model, paths=paths, text=False, **options) if result.get("text") else None

    if result is None:
        result, image_only = with_and_without_words(folder)
    train = read_csv(paths.split_csv("train"), ["poster_path"]).poster_path.tolist() if quantize == "int8" else None
    target = ship(folder, target, result, paths.root, image_only, quantize=quantize, training_posters=train, lean=lean)
    if quantize != "none" or lean:
        evaluated = {Path(p).name: evaluate(target, Path(p), paths, **options) for p in outside}
        write_manifest(with_outside_results(with_test_results(read_manifest(target), *with_and_without_words(target)),
                                            evaluated), target)
    write_model_card(target)
    return target


def evaluate_shipped(recipe: Recipe, paths: Paths, progress: bool = True, out=print) -> Path:
    """The shipped default evaluated again on its recipe's data, its network untouched: its manifest's test and
    outside figures and its card rewritten (after a metric's definition changed). The data stages run (or are
    current) first, and must give the splits the default was trained on."""
    from ..modelfolder.provenance import data_hash
    job = Rebuild(recipe, paths, progress=progress)
    run_stages([s for s in job.stages() if s.name in ("get-data", "clean", "encode")], job.log, out)
    job.folder = job.shipped_default()
    job.name = job.folder.name
    manifest = read_manifest(job.folder)
    splits = [paths.root / f for f in manifest["data_files"]]
    if data_hash(splits) != manifest["data_hash"]:
        raise UserError(f"{job.folder}: trained on splits of data hash {manifest['data_hash']}, but the recipe's "
                        f"data stages made {data_hash(splits)}: not the posters it was tested on")
    out(f"evaluate {job.folder}: {job.evaluate()}")
    from ..modelfolder.card import write_model_card
    out(f"card: {write_model_card(job.folder)}")
    return job.folder


def rebuild(recipe: Recipe, paths: Paths, name: str | None = None, limit: int | None = None,
            workers: int | None = None, ship: bool = False, progress: bool = True, wait: bool = False) -> Path:
    """Run a recipe to its end (resuming what a killed run left); with ship, make it models/default. One run of a
    name at a time: another is refused naming the holder (or waits for it)."""
    from ..data.lock import Lock
    job = Rebuild(recipe, paths, name, limit, workers, progress)
    with Lock(job.folder, f"models/{job.name}", wait):
        job.run()
        if ship:
            print(f"shipped {job.name} -> {job.ship()}")
    sys.stdout.flush()
    return job.folder
