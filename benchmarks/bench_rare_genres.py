"""The rare genres, the shipped default against a rebuild that trained also on posters chosen for them (issue 41),
on the same test posters.

A fresh clone in which `postergenre rebuild recipes/rare.toml --ship` ran (its splits, its words' cache) holds both
models: the rebuild as it would ship (models/default, int8 and lean) and the default it compared with
(`models/<name>.parts/shipped`, a copy of models/default as it was, evaluated there). Each model is scored
once on each set (each source's test posters, the outside collections), and one paired bootstrap gives every
genre's AP and the mean AP over the rare genres with 95% intervals; the headline figures (macro AP, top-3 hit rate,
micro-F1, the constant guess) come from the models' own evaluation files. Writes
benchmarks/results/rare_genres.json and the plot docs/images/rare_genres_ap.png.

    python benchmarks/bench_rare_genres.py --root CLONE --old CLONE/models/NAME.parts/shipped --new CLONE/models/default
"""
import argparse
import json
from pathlib import Path

from common import REPO, write_results

from postergenre.config import Paths
from postergenre.data.encode import training_counts
from postergenre.evaluation.compare import RARE_GENRES, paired_comparison, score_models
from postergenre.evaluation.figures import ap_against_training_posters
from postergenre.modelfolder.layout import read_manifest

HEADLINE = ("macro_ap", "top3_hit_rate", "micro_f1@tuned")
GUESS = "baseline: 3 most frequent genres"
TARGETS = {  # issue 41: set -> (figure, at least)
    "test_kaggle_posters_extra": [("rare_mean_ap_ratio", 1.5), ("macro_ap", 0.32)],
    "test_kaggle_posters_8k": [("macro_ap", 0.45), ("top3_hit_rate", 0.90)],
    "greatest_films": [("macro_ap", 0.26)],
}


def headline(folder: Path, set_name: str) -> dict:
    """The model's figures and the constant guess's on one set, from its eval_*.json (evaluate wrote them)."""
    test = json.loads((folder / "eval_test.json").read_text())
    metrics = (test.get("by_source") or {}).get(set_name)
    if metrics is None:
        metrics = json.loads((folder / f"eval_{set_name}.json").read_text())["metrics"]
    model = next(k for k in metrics if not k.startswith("baseline") and "(adapted" not in k)
    return {"model": {k: metrics[model][k] for k in HEADLINE}, "constant_guess": {k: metrics[GUESS][k] for k in HEADLINE}}


def network_of(folder: Path) -> str:
    """How the model's network is stored: int8 when it was quantized for shipping, float32 as trained."""
    mode = (read_manifest(folder).get("quantization") or {}).get("mode", "none")
    return "float32" if mode == "none" else mode


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="the rebuilt project (its splits and words' cache)")
    parser.add_argument("--old", type=Path, required=True, help="the earlier default's folder, evaluated there")
    parser.add_argument("--new", type=Path, required=True, help="the rebuilt model's folder")
    parser.add_argument("--outside", type=Path, nargs="*", default=[REPO.parent / "shared/data/greatest_films"])
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    paths = Paths.default(args.root)
    folders = {"shipped default": args.old, "with the rare posters": args.new}
    genres_info = json.loads(paths.genres_json.read_text())
    counts = training_counts(genres_info)
    sources = sorted(s for s in json.loads((args.new / "eval_test.json").read_text()).get("by_source", {}))
    sets = {s: (None, s.removeprefix("test_")) for s in sources}
    sets.update({p.name: (p, None) for p in args.outside if p.exists()})
    results = {}
    for set_name, (data, source) in sets.items():
        print(f"{set_name}: scoring both models")
        y_true, scores, genres = score_models(folders, data, paths, source=source)
        comparison = paired_comparison(y_true, scores, genres, RARE_GENRES, n_boot=args.bootstrap)
        figures = {name: headline(folder, set_name) for name, folder in folders.items()}
        old_mean, new_mean = (comparison["group_mean_ap"][n][0] for n in folders)
        results[set_name] = {"comparison": comparison, "headline": figures,
                             "rare_mean_ap_ratio": round(new_mean / old_mean, 3)}
        print(f"  rare-genre mean AP {old_mean:.3f} -> {new_mean:.3f} (x{new_mean / old_mean:.2f}); macro AP "
              + " -> ".join(f"{figures[n]['model']['macro_ap'][0]:.3f}" for n in folders))
    targets = []
    for set_name, wanted in TARGETS.items():
        if set_name not in results:
            continue
        for figure, least in wanted:
            entry = results[set_name]
            value = entry[figure] if figure in entry else entry["headline"]["with the rare posters"]["model"][figure][0]
            targets.append({"set": set_name, "figure": figure, "target": least, "value": value,
                            "met": bool(value >= least)})
    for set_name, entry in results.items():  # above both constant guesses (the set's own and the new model's)
        for figure in ("top3_hit_rate", "micro_f1@tuned"):
            model = entry["headline"]["with the rare posters"]
            value, guess = model["model"][figure][0], model["constant_guess"][figure][0]
            targets.append({"set": set_name, "figure": f"{figure} above the constant guess", "target": guess,
                            "value": value, "met": bool(value > guess)})
    plot = REPO / "docs" / "images" / "rare_genres_ap.png"
    extra = "test_kaggle_posters_extra" if "test_kaggle_posters_extra" in results else next(iter(results))
    ap_against_training_posters(results[extra]["comparison"], counts, tuple(folders), plot)
    write_results("rare_genres", {
        "models": {name: str(folder.relative_to(args.root)) if folder.is_relative_to(args.root) else str(folder)
                   for name, folder in folders.items()},
        "network": {name: network_of(folder) for name, folder in folders.items()},
        "rare_genres": list(RARE_GENRES), "bootstrap_samples": args.bootstrap,
        "training_counts": counts.T.to_dict(), "train_only": genres_info.get("train_only"),
        "sets": results, "targets": targets, "plot": str(plot.relative_to(REPO)), "plot_set": extra})
    for target in targets:
        print(f"{target['set']}: {target['figure']} {target['value']:.3f} (target {target['target']}): "
              f"{'met' if target['met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
