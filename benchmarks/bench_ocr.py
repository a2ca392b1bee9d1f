"""How fast the words on posters are read, and whether faster settings keep what the text head learns from them.

Rate: posters of the sample read without a cache, (a) with RapidOCR's own defaults (one engine, which scales a
182x268 thumbnail up to 736 px on its short side, with the angle classifier, recogniser batches of 6) and (b) with
postergenre's settings (the poster read at its own size, no angle classifier, one line per recogniser run, one
engine a core on threads), for each variant of --variants SIDE:WIDTH (the poster's long side when read, the width
a recognised line is padded to at least). Value: for each variant, the words of --train posters fit a text head
(TF-IDF + logistic, C chosen on the first half of --val posters) scored on the second half: validation macro AP
of the text alone, over the genres with 20+ posters. Words are cached in data/cache/text/, as the pipeline does.

    python benchmarks/bench_ocr.py [--rate-posters 200] [--train 2000] [--val 800] [--variants 268:320 268:48]
"""
import argparse
import time

import numpy as np
import pandas as pd
from common import REPO, require_sample, write_results

from postergenre.scoring.metrics import fast_average_precision, top_k_hit_rate
from postergenre.text.head import C_GRID, fit_text_head
from postergenre.text.ocr import OCR_PACKAGE, OcrSettings, Reader, package_version


def rate(posters: list[str], read) -> dict:
    start = time.perf_counter()
    texts = read(posters)
    seconds = time.perf_counter() - start
    return {"posters": len(posters), "seconds": round(seconds, 1), "posters_per_s": round(len(posters) / seconds, 1),
            "words_per_poster": round(float(np.mean([len(t.split()) for t in texts])), 2),
            "share_with_words": round(float(np.mean([bool(t.strip()) for t in texts])), 3)}


def library_defaults(posters: list[str]) -> list[str]:
    from rapidocr_onnxruntime import RapidOCR
    engine = RapidOCR()
    return [" ".join(line for _, line, _ in (engine(p)[0] or [])) for p in posters]


def text_head_value(sample, labels, genres, train, val, settings: OcrSettings) -> dict:
    reader = Reader(settings, REPO / "data" / "cache" / "text")
    start = time.perf_counter()
    words = [t.text for t in reader.read(sample.poster_path[np.r_[train, val]], progress=True,
                                         desc=f"{settings.side}:{settings.recogniser_width}")]
    seconds = time.perf_counter() - start
    texts = {"train": words[:len(train)], "val": words[len(train):]}
    half = len(val) // 2
    choose, score = slice(0, half), slice(half, None)
    heads = {c: fit_text_head(texts["train"], labels[train], genres, c) for c in C_GRID}
    chosen = max(C_GRID, key=lambda c: fast_average_precision(labels[val][choose],
                                                              heads[c].probabilities(texts["val"][choose])))
    p = heads[chosen].probabilities(texts["val"][score])
    return {"side": settings.side, "recogniser_width": settings.recogniser_width, "C": chosen, "read_seconds_this_run": round(seconds, 1),
            "words_per_poster": round(float(np.mean([len(t.split()) for t in words])), 2),
            "text_val_macro_ap": round(fast_average_precision(labels[val][score], p), 4),
            "text_val_top3": round(top_k_hit_rate(labels[val][score], p), 4),
            "constant_val_macro_ap": round(fast_average_precision(
                labels[val][score], np.tile(labels[train].mean(axis=0), (len(p), 1))), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate-posters", type=int, default=200)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--val", type=int, default=800)
    parser.add_argument("--variants", nargs="+", default=["268:320", "268:48", "402:320"])
    args = parser.parse_args()
    folder = require_sample()
    sample = pd.read_csv(folder / "labels.csv", dtype=str, keep_default_na=False)
    sample["poster_path"] = [str(folder / "images" / f"{i}.jpg") for i in sample.id]
    sample = sample.sample(frac=1.0, random_state=0).reset_index(drop=True)
    posters = list(sample.poster_path[-args.rate_posters:])  # not among the posters of the value test

    defaults = rate(posters[:max(20, args.rate_posters // 4)], library_defaults)
    print("library defaults:", defaults, flush=True)
    variants = [OcrSettings(side=int(v.split(":")[0]), recogniser_width=int(v.split(":")[1])) for v in args.variants]
    rates = []
    for settings in variants:
        rates.append({"side": settings.side, "recogniser_width": settings.recogniser_width,
                      **rate(posters, lambda ps, settings=settings: [t.text for t in Reader(settings).read(ps)])})
        print("postergenre settings:", rates[-1], flush=True)

    multi_hot = sample.genres.str.get_dummies("|")
    genres = [g for g in multi_hot if multi_hot[g].sum() >= 20]
    labels = multi_hot[genres].to_numpy(float)
    train, val = np.arange(args.train), np.arange(args.train, args.train + args.val)
    value = [text_head_value(sample, labels, genres, train, val, settings) for settings in variants]
    for row in value:
        print(row, flush=True)
    write_results("ocr", {"package": OCR_PACKAGE, "version": package_version(),
                          "settings": OcrSettings().describe(), "rate_library_defaults": defaults,
                          "rate_postergenre_settings": rates, "text_head_by_settings": value,
                          "train": args.train, "val": args.val,
                          "command": "python benchmarks/bench_ocr.py"})


if __name__ == "__main__":
    main()
