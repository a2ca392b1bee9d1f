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

    python benchmarks/bench_source_shortcut.py --recompressed [Q] --models default lite0-ft44 ...

--recompressed: does a trained model's *answer* follow the file? The sample's test posters (as stored, quality
~75) through each model, then the same posters re-saved at Q (default: the extra posters' own quality, read from
their quantisation tables): per-genre mean probability before and after, and how far the predicted genre mix
moves from the sample's training mix toward the extra posters' (0: not at all; 1: all the way). A model that
learned "blockier JPEG -> Documentary" names more documentaries on the same posters once they are blockier.
Written to source_shortcut_recompressed.json.
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
    from postergenre.studies.experiments import source_probe
    from postergenre.inference.keras_network import KerasNetwork
    from postergenre.modelfolder.layout import resolve_model
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


LIBJPEG_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])


def jpeg_quality(path) -> float:
    """The libjpeg quality a JPEG was saved at, from its luminance quantisation table (libjpeg scales the
    standard table by 5000/q below 50 and by 200-2q above)."""
    from PIL import Image
    with Image.open(path) as image:
        table = np.array(image.quantization[0], dtype=float)
    scale = 100 * np.median(table / LIBJPEG_LUMINANCE)
    return float(5000 / scale if scale > 100 else (200 - scale) / 2)


def how_it_saw_the_files(manifest: dict) -> str:
    """How a model's training saw the poster files: as stored, or re-saved at random JPEG qualities."""
    if manifest.get("members"):
        return "blend of " + " and ".join(m["name"] for m in manifest["members"])
    config = manifest.get("config") or {}
    epochs, variants = config.get("fine_tune_epochs", 0), config.get("feature_variants", 0)
    if epochs:  # the re-save is phase 2's
        seen = "re-saved at random JPEG qualities" if config.get("jpeg_quality") == "random" else "as stored"
        return f"fine-tuned {epochs} epochs on files {seen}"
    if variants:
        return f"head on the features of {variants} variants of each file re-saved at random JPEG qualities"
    return "head on the features of the files as stored"


def recompressed_answers(models: list[str], quality: int | None, n_quality: int = 300) -> None:
    """Each model's answers on the sample's test posters as stored and all re-saved at one lower quality."""
    from postergenre.config import Paths
    from postergenre.data.encode import load_splits
    from postergenre.data.images import open_rgb, recompress
    from postergenre.evaluation.evaluate import map_labels
    from postergenre.modelfolder.layout import resolve_model
    from postergenre.inference.predictor import load
    from postergenre.scoring import metrics
    paths = Paths.default()
    frames = load_splits(paths)[0]
    if frames["test"].source.nunique() < 2:
        raise SystemExit("the project's test split has one source: run the data stages on both first")
    stored_quality = {name: float(np.median([jpeg_quality(p) for p in posters(folder, n_quality, 0).poster_path]))
                      for name, folder in (("sample", SHARED_SAMPLE), ("extra", EXTRA))}
    quality = quality or int(round(stored_quality["extra"]))
    print(f"JPEG quality as stored (median of {n_quality}): {stored_quality}; re-saved at {quality}", flush=True)
    test = frames["test"][frames["test"].source == SHARED_SAMPLE.name].reset_index(drop=True)
    train = frames["train"]
    originals = [open_rgb(p) for p in test.poster_path]
    blockier = [recompress(im, quality) for im in originals]
    rows = {}
    for model in models:
        trained = load(resolve_model(model, paths), text=False)
        genres = trained.genres
        frame, y_true, _ = map_labels(test, trained.vocabulary)  # the model's genres, by its own rules
        rows_of = {path: i for i, path in enumerate(test.poster_path)}
        kept = [rows_of[path] for path in frame.poster_path]
        present = y_true.sum(axis=0) > 0
        train_y = {s: map_labels(train[train.source == s], trained.vocabulary)[1] for s in train.source.unique()}
        toward = train_y[EXTRA.name].mean(axis=0) - train_y[SHARED_SAMPLE.name].mean(axis=0)
        answers = {}
        for name, images in (("stored", originals), ("re-saved", blockier)):
            probabilities, errors = trained.probabilities([images[i] for i in kept])
            assert not any(errors), [e for e in errors if e][:3]
            answers[name] = probabilities
        shift = answers["re-saved"].mean(axis=0) - answers["stored"].mean(axis=0)
        top3 = {k: np.argsort(-v, axis=1)[:, :3] for k, v in answers.items()}
        row = {"macro_ap_stored": round(metrics.headline(y_true[:, present], answers["stored"][:, present])["macro_ap"], 4),
               "macro_ap_re_saved": round(metrics.headline(y_true[:, present],
                                                           answers["re-saved"][:, present])["macro_ap"], 4),
               "mix_moved_toward_extra": round(float(shift @ toward / (toward @ toward)), 4),
               "top3_changed": round(float(np.mean([set(a) != set(b) for a, b in zip(*top3.values())])), 4),
               "mean_abs_probability_change": round(float(np.abs(answers["re-saved"] - answers["stored"]).mean()), 5)}
        row.update({f"shift {g}": round(float(shift[genres.index(g)]), 4)
                    for g in ("Documentary", "War", "Western", "Short", "Film Noir", "Drama") if g in genres})
        files = how_it_saw_the_files(trained.manifest)
        rows[f"{trained.folder.name} ({files})"] = row
        print(model, row, flush=True)
    print(pd.DataFrame(rows).T.to_string())
    write_results("source_shortcut_recompressed", {
        "posters": len(test), "set": f"test split, {SHARED_SAMPLE.name} posters", "stored_jpeg_quality": stored_quality,
        "re_saved_quality": quality, "models": rows})


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="*", default=None, help="trained model folders or names to probe")
    parser.add_argument("--posters", type=int, default=1500, help="posters per source")
    parser.add_argument("--quality", type=int, default=40, help="the common JPEG quality")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--requality", type=int, default=None,
                        help="with --models: also probe on the test posters all re-saved at this JPEG quality")
    parser.add_argument("--recompressed", type=int, nargs="?", const=0, default=None,
                        help="with --models: their answers on the sample's test posters as stored and re-saved at "
                             "this quality (default: the extra posters' own)")
    args = parser.parse_args()
    if not (EXTRA / "labels.csv").exists():
        print(f"skipped: the extra posters are not at {EXTRA}")
        return
    if args.models and args.recompressed is not None:
        return recompressed_answers(args.models, args.recompressed or None)
    if args.models:
        return trained_networks(args.models, args.requality)
    from postergenre.data.images import open_rgb, recompress
    from postergenre.studies.experiments import source_probe
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
