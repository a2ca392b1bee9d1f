"""Can a network tell the two Kaggle sources apart, and is it the JPEG compression? The extra posters were
re-saved at about quality 50, the sample's at about 75: a network may learn "blockier JPEG -> Documentary".

The same posters of each source (--posters per source, drawn at random) through the frozen Lite0 backbone, then a
logistic probe predicting the source from the pooled features (5-fold ROC-AUC), under three input conditions:
the JPEGs as stored; every poster re-encoded at one common quality (--quality); each poster re-encoded at a random
quality in 30..90 (the augmentation a training run could use). Also on a content-matched subset (extra posters of
1985-2017 without the genres the sample lacks), where what is left to tell the sources apart is mostly the file.

    python benchmarks/bench_source_shortcut.py [--posters 1500] [--quality 40]
    python benchmarks/bench_source_shortcut.py --models NAME_OR_FOLDER ...

--models: the same probe on trained networks' pooled features (the head's input), on the posters of the
project's test split (both sources, as stored; a network is never probed on posters it trained on), beside the
frozen ImageNet backbone on the same posters. Written to source_shortcut_trained.json.
--requality Q (with --models): each network probed twice, on the posters as stored and on the same posters all
re-saved at quality Q: what the probe loses when every file is equally blocky is what it read from the files.
A network that learned the compression as a shortcut loses more than the frozen ImageNet one does.
"""
import argparse
import time

import numpy as np
import pandas as pd
from common import write_results

from postergenre.config import SHARED_SAMPLE

EXTRA = SHARED_SAMPLE.parent / "kaggle_posters_extra"
SAMPLE_ONLY_LACKS = ("Documentary", "Short", "War", "Western", "Film-Noir", "News")


def posters(folder, n: int, seed: int) -> pd.DataFrame:
    labels = pd.read_csv(folder / "labels.csv", dtype=str, keep_default_na=False)
    labels["poster_path"] = [str(folder / "images" / f"{i}.jpg") for i in labels.id]
    return labels.sample(n=min(n, len(labels)), random_state=seed).reset_index(drop=True)


def features(extractor, images, size) -> np.ndarray:
    from postergenre.inference.batches import run_network
    out, errors = run_network(extractor, images, size, progress=True, desc="features")
    assert not any(errors), [e for e in errors if e][:3]
    return out


def trained_networks(models: list[str], requality: int | None = None) -> None:
    """Probe ROC-AUC on the test split's posters, for the frozen backbone and each trained network."""
    import keras

    from postergenre.config import Paths
    from postergenre.data.encode import load_splits
    from postergenre.evaluation.experiments import source_probe
    from postergenre.inference.keras_network import KerasNetwork
    from postergenre.inference.model_folder import resolve_model
    from postergenre.inference.predictor import load
    from postergenre.networks.pretrained import backbone
    paths = Paths.default()
    test = load_splits(paths)[0]["test"]
    if test.source.nunique() < 2:
        raise SystemExit("the project's test split has one source: run the data stages on both first")
    second = (test.source != test.source.iloc[0]).astype(int).to_numpy()
    years = pd.to_numeric(test.year, errors="coerce")
    matched = ((second == 0) | ((years >= 1985) & ~test.genres.str.contains("|".join(SAMPLE_ONLY_LACKS)))).to_numpy()
    networks = {}
    for model in models:
        trained = load(resolve_model(model, paths), "keras")
        network = trained.keras_model()
        # the layer that feeds the genre head: the backbone's pooled features
        pooled = keras.Model(network.input, network.layers[-2].output, name="pooled")
        networks[f"{trained.folder.name} ({trained.manifest['config'].get('jpeg_quality', 'stored')} JPEG, "
                 f"fine-tuned {trained.manifest['config']['fine_tune_epochs']} epochs)"] = (pooled, trained)
    first = next(iter(networks.values()))[1]
    size = tuple(first.manifest["input_size"])
    networks = {f"{first.manifest['model']} frozen (ImageNet)": (backbone(first.manifest["model"], size), first),
                **networks}
    conditions = {"": list(test.poster_path)}
    if requality:
        from postergenre.data.images import open_rgb, recompress
        conditions[f", all re-saved at quality {requality}"] = [recompress(open_rgb(p), requality)
                                                                for p in test.poster_path]
    rows = {}
    for name, (network, trained) in networks.items():
        for condition, images in conditions.items():
            pooled = features(KerasNetwork(network), images, tuple(trained.manifest["input_size"]))
            auc, spread = source_probe(pooled, second)
            auc_matched, spread_matched = source_probe(pooled[matched], second[matched])
            rows[name + condition] = {"probe_roc_auc": round(auc, 3), "fold_sd": round(spread, 3),
                                      "matched_roc_auc": round(auc_matched, 3),
                                      "matched_fold_sd": round(spread_matched, 3)}
            print(name + condition, rows[name + condition], flush=True)
    print(pd.DataFrame(rows).T.to_string())
    write_results("source_shortcut_trained" + (f"_q{requality}" if requality else ""), {
        "posters": {str(source): int(n) for source, n in test.source.value_counts().items()},
        "matched_posters": int(matched.sum()), "split": "test", "requality": requality, "networks": rows})


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="*", default=None, help="trained model folders or names to probe")
    parser.add_argument("--posters", type=int, default=1500, help="posters per source")
    parser.add_argument("--quality", type=int, default=40, help="the common JPEG quality")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--requality", type=int, default=None,
                        help="with --models: also probe on the test posters all re-saved at this JPEG quality")
    args = parser.parse_args()
    if not (EXTRA / "labels.csv").exists():
        print(f"skipped: the extra posters are not at {EXTRA}")
        return
    if args.models:
        return trained_networks(args.models, args.requality)
    from postergenre.data.images import open_rgb, recompress
    from postergenre.evaluation.experiments import source_probe
    from postergenre.inference.keras_network import KerasNetwork
    from postergenre.networks.pretrained import backbone
    from postergenre.networks.registry import get
    sample, extra = posters(SHARED_SAMPLE, args.posters, args.seed), posters(EXTRA, args.posters, args.seed)
    frame = pd.concat([sample.assign(second=0), extra.assign(second=1)], ignore_index=True)
    years = pd.to_numeric(frame.year, errors="coerce")
    matched = (frame.second == 0) | ((years >= 1985) & ~frame.genres.str.contains("|".join(SAMPLE_ONLY_LACKS)))
    size = get("efficientnet_lite0").input_size
    extractor = KerasNetwork(backbone("efficientnet_lite0", size))
    rng = np.random.default_rng(args.seed)
    originals = [open_rgb(p) for p in frame.poster_path]
    conditions = {"as stored": originals,
                  f"one quality ({args.quality})": [recompress(im, args.quality) for im in originals],
                  "random quality (30-90)": [recompress(im, q) for im, q in
                                             zip(originals, rng.integers(30, 91, len(originals)))]}
    rows = {}
    for name, images in conditions.items():
        start = time.perf_counter()
        pooled = features(extractor, images, size)
        auc, spread = source_probe(pooled, frame.second)
        auc_matched, spread_matched = source_probe(pooled[matched], frame.second[matched])
        rows[name] = {"probe_roc_auc": round(auc, 3), "fold_sd": round(spread, 3),
                      "matched_roc_auc": round(auc_matched, 3), "matched_fold_sd": round(spread_matched, 3),
                      "seconds": round(time.perf_counter() - start, 1)}
        print(name, rows[name], flush=True)
    figures = {"posters_per_source": args.posters, "matched_posters": {"sample": int((~frame.second.astype(bool)).sum()),
                                                                        "extra": int((matched & (frame.second == 1)).sum())},
               "backbone": "efficientnet_lite0 (frozen, pooled features)", "conditions": rows}
    print(pd.DataFrame(rows).T.to_string())
    write_results("source_shortcut", figures)


if __name__ == "__main__":
    main()
