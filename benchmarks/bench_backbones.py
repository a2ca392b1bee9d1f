"""Which backbone? EfficientNet-Lite0/1/2, each with and without flip test-time augmentation (TTA):
feature rate on the 2 cores, and test-split quality of a head trained on the cached features, calibrated
on validation, beside the constant baseline. Reuses the project's feature cache (data/cache/features)
when `postergenre train` already filled it; the feature rate is always measured afresh on 512 posters.

    python benchmarks/bench_backbones.py [--models efficientnet_lite0 ...] [--rate-posters 512]
                                         [--fine-tuned MODEL_FOLDER ...]

--fine-tuned adds model folders trained with `postergenre train --fine-tune-epochs N` (their whole network runs
on the test posters; their training time comes from their manifest).

Run the data stages first (`make all` or `postergenre get-data/clean/encode`).
"""
import argparse
import json
import time

from common import require_sample, write_results

BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def feature_rate(model: str, tta: bool, frame, n: int) -> float:
    from postergenre.dataset import predict_images
    from postergenre.models import DEFAULT_SIZE, backbone
    extractor = backbone(model, DEFAULT_SIZE[model], tta=tta)
    predict_images(extractor, frame.head(64), DEFAULT_SIZE[model])  # build and trace outside the timing
    start = time.perf_counter()
    predict_images(extractor, frame.head(n), DEFAULT_SIZE[model])
    return n / (time.perf_counter() - start)


def quality(trained, y, raw) -> dict:
    """Test figures of a model folder's network output `raw`, calibrated as the folder says."""
    from postergenre import calibration, metrics
    scores = trained.calibration.apply(raw)
    figures = {k: round(v, 4) for k, v in metrics.headline(y, scores).items()}
    figures.update({f"{k}@tuned": round(v, 4) for k, v in
                    metrics.threshold_metrics(y, scores, trained.thresholds).items() if k.endswith("f1")})
    figures.update({k: round(v, 4) for k, v in calibration.report(y, raw, scores).items()})
    return {**figures, "validation_macro_ap": round(trained.manifest["validation_metrics"]["macro_ap"], 4),
            "calibration": trained.calibration.method}


def head_quality(folder, paths) -> dict:
    """A head-only model: its head on the backbone's cached test-split features."""
    from postergenre.encode import load_splits
    from postergenre.model_folder import load_network, load_trained
    from postergenre.models import backbone
    from postergenre.train import TrainConfig, cached_features
    trained = load_trained(folder)
    frames, vocabulary = load_splits(paths)
    config = TrainConfig(**trained.manifest["config"])
    extractor = backbone(config.model, config.input_size, tta=config.tta)
    features = cached_features(extractor, frames["test"], config, paths, "test")
    raw = load_network(folder / "head.keras").predict(features, verbose=0)
    return quality(trained, frames["test"][vocabulary].to_numpy(), raw)


def fine_tuned_quality(folder, paths) -> dict:
    """A fine-tuned model: the whole network runs on the test posters."""
    from postergenre.encode import load_splits
    from postergenre.model_folder import load_trained
    trained = load_trained(folder)
    frames, vocabulary = load_splits(paths)
    raw = trained.network_output(frames["test"], progress=True)
    config = trained.manifest["config"]
    return {**quality(trained, frames["test"][vocabulary].to_numpy(), raw),
            "training_seconds": trained.manifest["training_seconds"],
            "fine_tune_epochs": config["fine_tune_epochs"], "fine_tune_layers": config["fine_tune_layers"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="*", default=list(BACKBONES))
    parser.add_argument("--rate-posters", type=int, default=512)
    parser.add_argument("--fine-tuned", nargs="*", default=[], help="fine-tuned model folders (names under models/)")
    args = parser.parse_args()
    require_sample()
    from postergenre import metrics
    from postergenre.config import Paths
    from postergenre.encode import load_splits
    from postergenre.train import TrainConfig, train
    paths = Paths.default()
    frames, vocabulary = load_splits(paths)
    y_test, y_train = frames["test"][vocabulary].to_numpy(), frames["train"][vocabulary].to_numpy()
    results = {"baseline: 3 most frequent genres": {
        k: round(v, 4) for k, v in metrics.headline(y_test, metrics.constant_scores(y_train, len(y_test))).items()}}
    for model in args.models:
        for tta in (False, True):
            name = model + ("-tta" if tta else "")
            folder = train(TrainConfig(model=model, name=name, tta=tta), paths)
            row = {"feature_posters_per_s": round(feature_rate(model, tta, frames["test"], args.rate_posters), 1),
                   **head_quality(folder, paths)}
            results[name] = row
            print(name, json.dumps(row), flush=True)
    for name in args.fine_tuned:
        results[name] = fine_tuned_quality(paths.models / name, paths)
        print(name, json.dumps(results[name]), flush=True)
    write_results("backbones", results)


if __name__ == "__main__":
    main()
