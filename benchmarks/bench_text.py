"""What the words on the poster add to a model with a text head: image alone, text alone and fused, with the paired
gain and its 95% interval, per genre, and the posters where the words changed the answer, on the validation split
(where the fusion weight was chosen: optimistic), the test split and other poster collections. Also one poster from
process start with and without text (`postergenre predict`, LiteRT), the median of --repeats runs.

    python benchmarks/bench_text.py --root PROJECT --model NAME [--collections ../shared/data/greatest_films]
        [--results text]

PROJECT is the project the model was trained in (its data/processed splits).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from common import REPO, write_results

from postergenre.config import Paths
from postergenre.studies.text_gain import text_gain
from postergenre.modelfolder.layout import resolve_model


def one_poster_seconds(model: Path, poster: Path, root: Path, no_text: bool, repeats: int) -> float:
    command = [str(Path(sys.executable).parent / "postergenre"), "--root", str(root), "predict", "--model", str(model),
               "--json", str(poster), *(["--no-text"] if no_text else [])]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--model", default="default")
    parser.add_argument("--collections", type=Path, nargs="*", default=[REPO.parent / "shared" / "data" /
                                                                       "greatest_films"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--results", default="text")
    args = parser.parse_args()
    paths = Paths.default(args.root)
    folder = resolve_model(args.model, paths)
    sets = {}
    for name, data in [("validation", paths.split_csv("val")), ("test", None),
                       *[(c.name, c) for c in args.collections if (c / "labels.csv").exists()]]:
        result = text_gain(folder, data, paths)
        sets[name] = {k: result[k] for k in ("posters", "posters_with_words", "words_per_poster", "metrics", "gain",
                                             "per_genre", "changed_answers", "mapping")}
        print(name, json.dumps(result["gain"]), flush=True)
    manifest = json.loads((folder / "manifest.json").read_text())
    poster = Path(pd.read_csv(paths.split_csv("test")).poster_path.iloc[0])
    timing = {"with_text_s": one_poster_seconds(folder, poster, paths.root, False, args.repeats),
              "without_text_s": one_poster_seconds(folder, poster, paths.root, True, args.repeats),
              "repeats": args.repeats}
    print("one poster from process start:", timing)
    write_results(args.results, {"model": folder.name, "model_created": manifest.get("created"),
                                 "text": manifest.get("text"), "sets": sets, "one_poster": timing,
                                 "command": f"python benchmarks/bench_text.py --root PROJECT --model {args.model}"})


if __name__ == "__main__":
    main()
