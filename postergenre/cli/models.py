"""Stages 4-6 and the recipe: `train`, `train-text`, `blend`, `rebuild`, `ship`, `evaluate`, `report`, `pipeline`."""
from __future__ import annotations

from pathlib import Path

from ..config import CALIBRATION_METHODS, QUANTIZATIONS, SHARED_SAMPLE, UserError
from ..text.ocr import OcrSettings
from ..training.options import add_flags, from_arguments
from .common import (add_adaptation_options, add_text_option, add_train_only_option, add_wait_option, model_name,
                     positive_int, without_option)


def cmd_train(args, paths):
    if args.workers:
        from ..training.cluster import launch_local
        code = launch_local(args.workers, without_option(args.argv, "--workers"))
        if code:
            raise UserError(f"a worker failed (exit code {code}); run the same command again to resume")
        return
    from ..training.train import train
    train(from_arguments(args), paths)


def cmd_evaluate(args, paths):
    from ..evaluation.evaluate import compare_models
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


def cmd_train_text(args, paths):
    from ..training.text_head import train_text_head
    folder = train_text_head(args.model, paths, OcrSettings(side=args.side), progress=not args.no_progress)
    from ..modelfolder.layout import read_manifest
    validation = read_manifest(folder)["text"]["validation"]
    print(f"{folder}: text head added; validation macro AP / top-3: " + ", ".join(
        f"{k} {v['macro_ap']:.3f} / {v['top3_hit_rate']:.3f}" for k, v in validation.items()))


def cmd_blend(args, paths):
    from ..training.ensemble import blend
    blend(args.members, args.name, paths, args.calibration)


def cmd_rebuild(args, paths):
    from ..app.rebuild import rebuild
    from ..app.recipe import read_recipe
    recipe = read_recipe(args.recipe)
    if args.source:
        recipe = recipe.with_sources(args.source)
    if args.evaluate_shipped:
        from ..app.rebuild import evaluate_shipped
        evaluate_shipped(recipe, paths, progress=not args.no_progress)
        return
    rebuild(recipe, paths, name=args.name, limit=args.limit, workers=args.workers, ship=args.ship,
            progress=not args.no_progress, wait=args.wait)


def cmd_ship(args, paths):
    from ..app.rebuild import ship_model
    from ..modelfolder.layout import resolve_model
    folder = resolve_model(args.model, paths)
    target = ship_model(folder, args.to or paths.models / "default", paths, args.quantize, lean=args.lean)
    how = [args.quantize] * (args.quantize != "none") + ["lean"] * args.lean
    print(f"shipped {args.model} -> {target}" + (f" ({', '.join(how)})" if how else ""))


def cmd_pipeline(args, paths):
    from ..app.notebooks import NOTEBOOKS_DIR, run_pipeline
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
    from ..evaluation.evaluate import print_saved_comparison
    print_saved_comparison(paths)


def cmd_report(args, paths):
    from ..app.report import write_report
    for path in write_report(paths.root):
        print(f"results written into {path}")


def add(stages) -> None:
    p = stages.add_parser("train", help="stages 4-5: train a model into models/<name>/",
                          description="Train the seeds' custom CNN or a pretrained backbone (phase 1: head on "
                                      "cached features; phase 2, optional: fine-tune the top layers). A killed "
                                      "run resumes when the same command is run again.")
    add_flags(p)
    p.add_argument("--workers", type=int, default=None,
                   help="start N multi-worker training processes on this machine (TF_CONFIG made for each)")
    p.set_defaults(func=cmd_train)

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
    add_wait_option(p, "the model folder")
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
    add_adaptation_options(p)
    add_text_option(p)
    p.set_defaults(func=cmd_evaluate)

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
    add_train_only_option(p)
    p.add_argument("--limit", type=int, default=None, help="only the first N movies (a quick run)")
    p.add_argument("--until", type=int, default=None, help="stop after notebook NN")
    p.add_argument("--text", action="store_true", help="notebook 05 also reads the words on every poster and adds a "
                                                       "text head to the model it trains (opt-in: the reading costs "
                                                       "minutes; README)")
    p.set_defaults(func=cmd_pipeline)
