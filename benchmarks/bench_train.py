"""Training targets on kaggle_posters_8k: feature extraction rate, head training time, peak RSS at
2,000 and 7,857 posters, and test-split quality of both models beside the constant baselines.

    python benchmarks/bench_train.py [--custom-epochs 10]
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, require_sample, write_results

CHILD = """
import json, resource, sys, time
from postergenre.config import Paths
from postergenre.training.train import TrainConfig, train
paths = Paths.default(sys.argv[1])
start = time.perf_counter()
folder = train(TrainConfig(**json.loads(sys.argv[2])), paths)
manifest = json.loads((folder / "manifest.json").read_text())
print("RESULT " + json.dumps({"seconds": time.perf_counter() - start,
      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      "feature_seconds": manifest.get("feature_seconds"), "head_seconds": manifest.get("head_seconds"),
      "folder": str(folder)}))
"""


def prepare(root: Path, sample: Path, n: int | None) -> Path:
    import pandas as pd
    from postergenre.data.clean import clean
    from postergenre.config import Paths
    from postergenre.data.encode import encode
    from postergenre.data.get_data import get_data
    paths = Paths.default(root)
    source = sample
    if n:
        source = root / "slice"
        source.mkdir(parents=True)
        pd.read_csv(sample / "labels.csv", dtype=str).sample(n, random_state=0).to_csv(source / "labels.csv",
                                                                                      index=False)
        (source / "images").symlink_to(sample / "images")
    get_data(source, paths, progress=False)
    clean(paths, progress=False)
    encode(paths, figures=False)
    return root


def run_child(root: Path, **config) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), json.dumps(config)], cwd=REPO,
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr[-3000:])
    return json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[7:])


def quality_on_test_split(root: Path, folder: str) -> dict:
    from postergenre.scoring import metrics
    from postergenre.config import Paths
    from postergenre.data.encode import load_splits
    from postergenre.inference.predictor import load
    frames, vocabulary = load_splits(Paths.default(root))
    trained = load(folder, "keras")
    y_test = frames["test"][vocabulary].to_numpy()
    _, scores = trained.scores(frames["test"])
    return {k: round(v, 4) for k, v in metrics.headline(y_test, scores).items()}


def baselines(root: Path) -> dict:
    from postergenre.scoring import metrics
    from postergenre.config import Paths
    from postergenre.data.encode import load_splits
    frames, vocabulary = load_splits(Paths.default(root))
    y_test, y_train = frames["test"][vocabulary].to_numpy(), frames["train"][vocabulary].to_numpy()
    return {"top3_constant": {k: round(v, 4) for k, v in
                              metrics.headline(y_test, metrics.constant_scores(y_train, len(y_test))).items()},
            "prior": {k: round(v, 4) for k, v in
                      metrics.headline(y_test, metrics.constant_scores(y_train, len(y_test), None)).items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--custom-epochs", type=int, default=10)
    args = parser.parse_args()
    sample = require_sample()
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        full = prepare(Path(tmp) / "full", sample, None)
        small = prepare(Path(tmp) / "small", sample, 2000)
        for label, root in (("2000", small), ("7857", full)):
            result = run_child(root, model="efficientnet_lite0", cache=False)
            n_features = sum(len(__import__("pandas").read_csv(root / "data/processed" / f"{s}.csv"))
                             for s in ("train", "val"))
            figures[f"efficientnet_lite0_{label}"] = {
                "peak_rss_mb": round(result["peak_rss_mb"]), "total_s": round(result["seconds"], 1),
                "feature_posters": n_features, "feature_s": result["feature_seconds"],
                "feature_posters_per_s": round(n_features / result["feature_seconds"], 1),
                "head_train_s": result["head_seconds"]}
            print(label, figures[f"efficientnet_lite0_{label}"], flush=True)
            if label == "7857":
                figures["efficientnet_lite0_test"] = quality_on_test_split(root, result["folder"])
        for label, root in (("2000", small), ("7857", full)):
            epochs = args.custom_epochs  # the same at both sizes: RSS is compared like for like
            result = run_child(root, model="custom_cnn", epochs=epochs, patience=3, cache=False)
            figures[f"custom_cnn_{label}"] = {"peak_rss_mb": round(result["peak_rss_mb"]),
                                              "total_s": round(result["seconds"], 1), "epochs": epochs}
            print(label, figures[f"custom_cnn_{label}"], flush=True)
            if label == "7857":
                figures["custom_cnn_test"] = quality_on_test_split(root, result["folder"])
        figures["baselines_test"] = baselines(full)
    for model in ("efficientnet_lite0", "custom_cnn"):
        small_rss, full_rss = figures[f"{model}_2000"]["peak_rss_mb"], figures[f"{model}_7857"]["peak_rss_mb"]
        figures[f"{model}_rss_growth_2000_to_7857"] = round(full_rss / small_rss - 1, 3)
    print(json.dumps(figures, indent=1))
    write_results("train", figures)


if __name__ == "__main__":
    main()
