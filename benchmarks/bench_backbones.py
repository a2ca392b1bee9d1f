"""Which backbone? EfficientNet-Lite0/1/2, each with and without flip test-time augmentation (TTA):
feature rate on the 2 cores, and test-split quality of a head trained on the cached features, calibrated
on validation, beside the constant baseline. Reuses the project's feature cache (data/cache/features)
when `postergenre train` already filled it; the feature rate is always measured afresh on 512 posters.

    python benchmarks/bench_backbones.py [--models efficientnet_lite0 ...] [--rate-posters 512]
                                         [--fine-tuned MODEL_FOLDER ...] [--no-tta] [--litert]

--litert: each model as `postergenre predict` runs it on LiteRT: one poster from process start (median of 5
runs; the constraint: at most 2 s) and a CSV of 500 posters (posters/s after start-up; at least 50).
--litert-only: the same timings again for the models of an existing results file, the rest of it kept.

--fine-tuned adds model folders trained with `postergenre train --fine-tune-epochs N` (their whole network runs
on the test posters; their training time comes from their manifest).

Run the data stages first (`make all` or `postergenre get-data/clean/encode`).
"""
import argparse
import json
import time

from bench_predict import model_timing
from common import require_sample, write_results

BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def feature_rate(model: str, tta: bool, frame, n: int) -> float:
    from postergenre.inference.batches import run_network
    from postergenre.inference.keras_network import KerasNetwork
    from postergenre.networks.pretrained import backbone
    from postergenre.networks.registry import get
    size = get(model).input_size
    extractor = KerasNetwork(backbone(model, size, tta=tta))
    run_network(extractor, frame.poster_path.head(128), size)  # build and trace outside the timing
    start = time.perf_counter()
    run_network(extractor, frame.poster_path.head(n), size)
    return n / (time.perf_counter() - start)


def quality(trained, y, raw) -> dict:
    """Test figures of a model folder's network output `raw`, calibrated as the folder says."""
    from postergenre.scoring import calibration, metrics
    scores = trained.calibrate(raw)
    figures = {k: round(v, 4) for k, v in metrics.headline(y, scores).items()}
    figures.update({f"{k}@tuned": round(v, 4) for k, v in
                    metrics.threshold_metrics(y, scores, trained.thresholds).items() if k.endswith("f1")})
    figures.update({k: round(v, 4) for k, v in calibration.report(y, raw, scores).items()})
    return {**figures, "validation_macro_ap": round(trained.manifest["validation_metrics"]["macro_ap"], 4),
            "calibration": trained.calibration.method}


def head_quality(folder, paths) -> dict:
    """A head-only model: the folder's network (backbone and head) on the test posters."""
    from postergenre.data.encode import load_splits
    from postergenre.inference.predictor import load
    trained = load(folder, "keras")
    frames, vocabulary = load_splits(paths)
    raw, _ = trained.scores(frames["test"], progress=True)
    return quality(trained, frames["test"][vocabulary].to_numpy(), raw)


def fine_tuned_quality(folder, paths) -> dict:
    """A fine-tuned model: the whole network runs on the test posters."""
    from postergenre.data.encode import load_splits
    from postergenre.inference.predictor import load
    trained = load(folder, "keras")
    frames, vocabulary = load_splits(paths)
    raw, _ = trained.scores(frames["test"], progress=True)
    config = trained.manifest["config"]
    return {**quality(trained, frames["test"][vocabulary].to_numpy(), raw),
            "training_seconds": trained.manifest["training_seconds"],
            "fine_tune_epochs": config["fine_tune_epochs"], "fine_tune_layers": config["fine_tune_layers"]}


def head_and_fine_tuned_rows(args, paths) -> dict:
    """A head on each backbone's cached features (with and without flip TTA) and each fine-tuned model, on the
    test split beside the constant baseline."""
    from postergenre.data.encode import load_splits
    from postergenre.scoring import metrics
    from postergenre.training.train import TrainConfig, train
    frames, vocabulary = load_splits(paths)
    y_test, y_train = frames["test"][vocabulary].to_numpy(), frames["train"][vocabulary].to_numpy()
    results = {"baseline: 3 most frequent genres": {
        k: round(v, 4) for k, v in metrics.headline(y_test, metrics.constant_scores(y_train, len(y_test))).items()}}
    for model in args.models:
        for tta in (False,) if args.no_tta else (False, True):
            name = model + ("-tta" if tta else "")
            folder = train(TrainConfig(model=model, name=name, tta=tta), paths)
            row = {"feature_posters_per_s": round(feature_rate(model, tta, frames["test"], args.rate_posters), 1),
                   **head_quality(folder, paths)}
            results[name] = row
            print(name, json.dumps(row), flush=True)
    for name in args.fine_tuned:
        results[name] = fine_tuned_quality(paths.models / name, paths)
        print(name, json.dumps(results[name]), flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="*", default=list(BACKBONES))
    parser.add_argument("--rate-posters", type=int, default=512)
    parser.add_argument("--fine-tuned", nargs="*", default=[], help="fine-tuned model folders (names under models/)")
    parser.add_argument("--no-tta", action="store_true", help="without the flip-TTA forms")
    parser.add_argument("--litert", action="store_true", help="time each model on LiteRT as `postergenre predict`")
    parser.add_argument("--litert-only", action="store_true",
                        help="only time the models of the existing results file again on LiteRT")
    parser.add_argument("--results", default="backbones",
                        help="results file name (backbones_both_sources for a project merged from both sources)")
    args = parser.parse_args()
    sample = require_sample()
    from postergenre.config import Paths
    paths = Paths.default()
    if args.litert_only:
        from common import RESULTS
        results = {k: v for k, v in json.loads((RESULTS / f"{args.results}.json").read_text()).items()
                   if isinstance(v, dict)}
    else:
        results = head_and_fine_tuned_rows(args, paths)
    if args.litert or args.litert_only:
        posters = sorted((sample / "images").glob("*.jpg"))
        for name in [n for n in results if not n.startswith("baseline")]:
            timing = model_timing(paths.models / name, posters, runs=5, n_posters=500)
            results[name].update({"litert_one_poster_s": timing["single_poster_median_s"],
                                  "litert_posters_per_s": timing["folder_posters_per_s_after_startup"]})
            print(name, "LiteRT:", timing, flush=True)
    write_results(args.results, results)


if __name__ == "__main__":
    main()
