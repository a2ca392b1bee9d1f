"""The CNNs trained from scratch on the whole sample, on the test split beside the constant baselines:
`custom_cnn` twice with the same seed (repeatable to 3 decimals?) and once with another seed, and the seeds'
network (`seed_cnn`), each with its training time.

    python benchmarks/bench_custom_cnn.py [--seeds 42 7] [--seed-cnn-epochs 3]
"""
import argparse
import json
import tempfile
from pathlib import Path

from bench_train import baselines, prepare, quality_on_test_split, run_child
from common import require_sample, write_results

KEYS = ("macro_ap", "micro_ap", "top3_hit_rate", "micro_f1@tuned")


def test_figures(root: Path, folder: str) -> dict:
    from postergenre.scoring import metrics
    from postergenre.config import Paths
    from postergenre.data.encode import load_splits
    from postergenre.inference.predictor import load
    frames, vocabulary = load_splits(Paths.default(root))
    trained = load(folder, "keras")
    y_test = frames["test"][vocabulary].to_numpy()
    _, scores = trained.scores(frames["test"])
    figures = {**quality_on_test_split(root, folder),
               "micro_f1@tuned": round(metrics.threshold_metrics(y_test, scores, trained.thresholds)["micro_f1"], 4)}
    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    return {**{k: figures[k] for k in KEYS}, "epochs": manifest["config"]["epochs"],
            "training_seconds": manifest["training_seconds"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs=2, default=[42, 7])
    parser.add_argument("--seed-cnn-epochs", type=int, default=3)
    args = parser.parse_args()
    sample = require_sample()
    runs = [("custom_cnn", args.seeds[0], "run 1"), ("custom_cnn", args.seeds[0], "run 2"),
            ("custom_cnn", args.seeds[1], "run 1")]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = prepare(Path(tmp), sample, None)
        for model, seed, label in runs:
            result = run_child(root, model=model, seed=seed, name=f"{model}-{seed}-{label[-1]}")
            rows[f"{model}, seed {seed}, {label}"] = test_figures(root, result["folder"])
            print(rows, flush=True)
        result = run_child(root, model="seed_cnn", epochs=args.seed_cnn_epochs, patience=args.seed_cnn_epochs)
        rows["seed_cnn (the seeds' network)"] = test_figures(root, result["folder"])
        constant = baselines(root)
    rows["constant guess: 3 most frequent genres"] = {k: constant["top3_constant"].get(k) for k in KEYS[:3]}
    rows["constant guess: training prior"] = {k: constant["prior"].get(k) for k in KEYS[:3]}
    first, second = (rows[f"custom_cnn, seed {args.seeds[0]}, run {i}"] for i in (1, 2))
    same_seed_gap = max(abs(first[k] - second[k]) for k in KEYS)
    print(json.dumps(rows, indent=1), f"\nlargest same-seed difference: {same_seed_gap:.4f}")
    write_results("custom_cnn", {"rows": rows, "same_seed_largest_difference": round(same_seed_gap, 4)})


if __name__ == "__main__":
    main()
