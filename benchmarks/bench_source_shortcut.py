"""Can a network tell the two Kaggle sources apart, and is it the JPEG compression? The extra posters were
re-saved at about quality 50, the sample's at about 75: a network may learn "blockier JPEG -> Documentary".

The same posters of each source (--posters per source, drawn at random) through the frozen Lite0 backbone, then a
logistic probe predicting the source from the pooled features (5-fold ROC-AUC), under three input conditions:
the JPEGs as stored; every poster re-encoded at one common quality (--quality); each poster re-encoded at a random
quality in 30..90 (the augmentation a training run could use). Also on a content-matched subset (extra posters of
1985-2017 without the genres the sample lacks), where what is left to tell the sources apart is mostly the file.

    python benchmarks/bench_source_shortcut.py [--posters 1500] [--quality 40]
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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posters", type=int, default=1500, help="posters per source")
    parser.add_argument("--quality", type=int, default=40, help="the common JPEG quality")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (EXTRA / "labels.csv").exists():
        print(f"skipped: the extra posters are not at {EXTRA}")
        return
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
