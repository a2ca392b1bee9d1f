"""The shipped default's network quantized four ways (none: float32 as exported by the converter; float16; dynamic:
int8 weights, float activations; int8: integers throughout, float input and output, ranges from representative
training posters), each in a copy of the model folder: file size, the network's posters per second on decoded
posters (1 and 2 threads), `postergenre predict` on one poster from process start and on a folder of posters, and
the test figures of each source (with the words, as it ships) with a paired bootstrap of the difference against the
float32 export of the same network.

    python benchmarks/bench_quantize.py --root PROJECT --model MODEL [--modes none float16 dynamic int8]

PROJECT: the project the default was trained in (both Kaggle sources: `postergenre rebuild recipes/default.toml
--root PROJECT` makes one), whose train split gives int8's representative posters and whose test split is scored.
MODEL: the default's whole folder, as the rebuild leaves it (PROJECT/models/blend-ft44pp-l1q): the shipped
models/default is lean and holds no float32 network to quantize. Writes quantize.json.

--also NAME=FOLDER scores other folders of the same network beside float32 (e.g. `shipped=models/default`, the lean
int8 folder as it ships), each with its own paired interval; with `--modes` left empty and `--results
quantize_shipped`, that is all it measures.
"""
import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import require_sample, write_results

from postergenre.config import Paths
from postergenre.data.images import load_poster
from postergenre.evaluation.evaluate import map_labels
from postergenre.inference.litert import LiteNetwork
from postergenre.modelfolder.layout import TFLITE_FILE
from postergenre.inference.predictor import load
from postergenre.modelfolder.quantize import QUANTIZATIONS, quantize_folder
from postergenre.scoring import metrics

FIGURES = ("macro_ap", "top3_hit_rate")
BASE = "float32"  # the whole network exported without quantization: what every other row is compared with


def figures(y, p) -> dict:
    return {"macro_ap": metrics.fast_average_precision(y, p, "macro"), "top3_hit_rate": metrics.top_k_hit_rate(y, p)}


def paired_difference(y, base, other, n_boot: int, seed: int = 0) -> dict:
    """{figure: [other - base, low, high]} with a 95% percentile interval over the same resampled posters."""
    rng = np.random.default_rng(seed)
    point = {k: figures(y, other)[k] - figures(y, base)[k] for k in FIGURES}
    samples = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        a, b = figures(y[idx], base[idx]), figures(y[idx], other[idx])
        samples.append({k: b[k] - a[k] for k in FIGURES})
    return {k: [round(point[k], 4), *[round(float(v), 4) for v in np.percentile([s[k] for s in samples], [2.5, 97.5])]]
            for k in FIGURES}


def network_rate(path: Path, images: np.ndarray, threads: int, batch: int = 64) -> float:
    network = LiteNetwork(path, threads=threads)
    network(images[:batch])  # allocation and first run out of the timing
    start = time.perf_counter()
    for i in range(0, len(images), batch):
        network(images[i:i + batch])
    return round(len(images) / (time.perf_counter() - start), 1)


def cli_seconds(arguments: list[str], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "postergenre"), *arguments], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="the default's whole folder (not the lean one)")
    parser.add_argument("--modes", nargs="*", default=list(QUANTIZATIONS), choices=QUANTIZATIONS)
    parser.add_argument("--also", nargs="*", default=[], metavar="NAME=FOLDER", help="other folders scored beside")
    parser.add_argument("--results", default="quantize", help="the results file's name")
    parser.add_argument("--representative", type=int, default=300)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--rate-posters", type=int, default=512)
    args = parser.parse_args()
    require_sample()
    paths = Paths.default(args.root)
    train = pd.read_csv(paths.split_csv("train"), usecols=["poster_path"]).poster_path.tolist()
    test = pd.read_csv(paths.split_csv("test"), dtype=str, keep_default_na=False)
    work = Path(tempfile.mkdtemp(prefix="quantize_"))
    base_folder = work / "float32"  # exported now: the model folder's own model.tflite may be quantized already
    shutil.copytree(args.model, base_folder, ignore=shutil.ignore_patterns("eval_*", "figures_*", "text_gain_*"))
    quantize_folder(base_folder, "none")
    folders = {BASE: base_folder}
    for mode in args.modes:
        folder = work / mode
        shutil.copytree(args.model, folder, ignore=shutil.ignore_patterns("eval_*", "figures_*", "text_gain_*"))
        start = time.perf_counter()
        quantize_folder(folder, mode, train, args.representative)
        print(f"{mode}: {(folder / TFLITE_FILE).stat().st_size / 2**20:.1f} MB in {time.perf_counter() - start:.0f} s",
              flush=True)
        folders[mode] = folder
    for item in args.also:
        name, _, folder = item.partition("=")
        folders[name] = Path(folder)
    shipped = load(args.model, text_cache=paths.cache / "text")
    frame, y, _ = map_labels(test, shipped.vocabulary)
    sources = frame["source"].to_numpy() if "source" in frame else np.array(["test"] * len(frame))
    size = shipped.input_size
    images = np.stack([load_poster(p, size, shipped.fit) for p in frame.poster_path[:args.rate_posters]]
                      ).astype(np.float32)
    one = frame.poster_path.iloc[0]
    folder_of_posters = work / "posters"
    folder_of_posters.mkdir()
    for poster in frame.poster_path[:1000]:
        (folder_of_posters / Path(poster).name).symlink_to(poster)
    scores, rows = {}, {}
    for name, folder in folders.items():
        predictor = load(folder, text_cache=paths.cache / "text")
        scores[name] = predictor.probabilities(list(frame.poster_path))[0]
        tflite = folder / TFLITE_FILE
        rows[name] = {"tflite_mb": round(tflite.stat().st_size / 2**20, 1),
                      "network_posters_per_s_1_thread": network_rate(tflite, images, 1),
                      "network_posters_per_s_2_threads": network_rate(tflite, images, 2),
                      "one_poster_s": cli_seconds(["predict", one, "--model", str(folder)]),
                      "folder_1000_image_alone_s": cli_seconds(["predict", str(folder_of_posters), "--model",
                                                                str(folder), "--no-text"], repeats=1)}
        print(name, rows[name], flush=True)
    base = scores[BASE]
    for name in folders:
        for source in sorted(set(sources)):
            keep = sources == source
            rows[name][f"{source}: macro_ap"] = round(figures(y[keep], scores[name][keep])["macro_ap"], 4)
            if name != BASE:
                rows[name][f"{source}: difference"] = paired_difference(y[keep], base[keep], scores[name][keep],
                                                                        args.bootstrap)
        rows[name]["max_abs_probability_change"] = round(float(np.nanmax(np.abs(scores[name] - base))), 4)
        print(name, {k: v for k, v in rows[name].items() if ":" in k}, flush=True)
    write_results(args.results, {"model": args.model.name, "modes": args.modes, "also": args.also,
                                 "representative_posters": args.representative, "test_posters": len(frame),
                                 "rows": rows})
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
