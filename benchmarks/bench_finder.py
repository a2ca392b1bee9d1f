"""The poster finder on photos of posters in rooms (rooms.py, fixed before any finder change) and on poster files:
on each room setting, the share of pictures where it found the poster, the share with every corner within 3% of the
poster's height of the true one, the time a picture on one core; on every poster file of the sample's test split and
of greatest_films, how many it cropped (a poster file should be taken whole) and what the crops cost the shipped
model there: macro AP, top-3 hit rate and micro-F1 with the finder off and on, with its words, paired on the same
bootstrap resamples.

    python benchmarks/bench_finder.py [--root .] [--posters 600] [--split test] [--results finder] [--model M]

--split val measures on the validation posters (for trying a finder without looking at the test photos).
"""
import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from common import REPO, paired, require_sample, write_results
from rooms import ROOMS, room_photo
from tqdm import tqdm

from postergenre.config import Paths
from postergenre.data.images import open_rgb
from postergenre.data.photo import poster_corners
from postergenre.evaluation.evaluate import load_eval_data, map_labels
from postergenre.inference.predictor import load

WITHIN = 0.03  # of the poster's height: a corner found this close to the true one is right


def seed_of(poster: str) -> int:
    return int(hashlib.sha256(Path(poster).name.encode()).hexdigest()[:8], 16)


def room_photos(posters: list[str], folder: Path, settings: dict) -> list[tuple[str, np.ndarray]]:
    """Each poster's photo in a room (drawn once and kept in `folder` with its true corners), beside another poster
    that clutter may show."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for index, poster in enumerate(tqdm(posters, desc="rooms", leave=False)):
        target, truth = folder / (Path(poster).stem + ".jpg"), folder / (Path(poster).stem + ".json")
        if not (target.exists() and truth.exists()):
            other = open_rgb(posters[(index + 1) % len(posters)])
            image, corners, quality = room_photo(open_rgb(poster), seed_of(poster), **settings, other=other)
            image.save(target, "JPEG", quality=quality)
            truth.write_text(json.dumps(corners.tolist()))
        out.append((str(target), np.array(json.loads(truth.read_text()), np.float32)))
    return out


def rooms_folder(paths: Paths, settings: dict) -> Path:
    return paths.cache / "rooms" / hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def corner_error(found: np.ndarray, truth: np.ndarray) -> float:
    """The farthest corner's distance from the true one, over the poster's height."""
    height = (np.linalg.norm(truth[3] - truth[0]) + np.linalg.norm(truth[2] - truth[1])) / 2
    return float(np.linalg.norm(found - truth, axis=1).max() / height)


def measure(photos: list[tuple[str, np.ndarray]]) -> dict:
    errors, times = [], []
    for path, truth in tqdm(photos, desc="finder", leave=False):
        image = open_rgb(path)
        start = time.perf_counter()
        corners = poster_corners(image)
        times.append(time.perf_counter() - start)
        errors.append(None if corners is None else corner_error(corners, truth))
    found = [e for e in errors if e is not None]
    return {"pictures": len(photos), "found": round(len(found) / len(photos), 4),
            "within_3pct": round(sum(e <= WITHIN for e in found) / len(photos), 4),
            "median_error_when_found": round(statistics.median(found), 4) if found else None,
            "ms_median": round(1000 * statistics.median(times), 1),
            "ms_p95": round(1000 * float(np.percentile(times, 95)), 1)}


def crops_of_poster_files(posters: list[str]) -> list[str]:
    return [p for p in tqdm(posters, desc="poster files", leave=False) if poster_corners(open_rgb(p)) is not None]


def cost_of_crops(model: str, posters: pd.DataFrame, cropped: list[str], paths: Paths, n_boot: int) -> dict:
    """The shipped model with its words on labelled poster files, finder off then on. A poster the finder leaves
    whole is scored the same either way (same image, same words), so only the cropped ones are scored again."""
    off, on = (load(model, text=True, text_cache=paths.cache / "text", find_poster=mode) for mode in (False, True))
    frame, y, _ = map_labels(posters, off.vocabulary)
    files = list(frame.poster_path)
    first = off.probabilities(files)[0]
    second = first.copy()
    rows = [i for i, path in enumerate(files) if path in set(cropped)]
    if rows:
        second[rows] = on.probabilities([files[i] for i in rows])[0]
    return paired(y, first, second, off.thresholds, n_boot)


def poster_files(label: str, posters: pd.DataFrame, model: str, paths: Paths, n_boot: int) -> dict:
    cropped = crops_of_poster_files(posters.poster_path.tolist())
    result = {"posters": len(posters), "cropped": len(cropped), "examples": [Path(p).name for p in cropped[:10]],
              "off -> on": cost_of_crops(model, posters, cropped, paths, n_boot)}
    print(label, json.dumps({k: result[k] for k in ("posters", "cropped")}),
          json.dumps(result["off -> on"]["difference"]), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO)
    parser.add_argument("--posters", type=int, default=600)
    parser.add_argument("--split", default="test", choices=["test", "val"])
    parser.add_argument("--settings", nargs="*", default=list(ROOMS))
    parser.add_argument("--results", default="finder")
    parser.add_argument("--model", default=str(REPO / "models" / "default"))
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    require_sample()
    cv2.setNumThreads(1)
    paths = Paths.default(args.root)
    split = pd.read_csv(paths.split_csv(args.split), dtype=str, keep_default_na=False)
    sample = split.sample(n=min(args.posters, len(split)), random_state=0).poster_path.tolist()
    results = {"split": args.split, "posters": len(sample), "within": WITHIN, "settings": {}, "rooms": ROOMS}
    for name in args.settings:
        results["settings"][name] = measure(room_photos(sample, rooms_folder(paths, ROOMS[name]), ROOMS[name]))
        print(name, json.dumps(results["settings"][name]), flush=True)
    greatest = REPO.parent / "shared" / "data" / "greatest_films"
    label = f"the sample's {args.split} split"
    results["poster_files"] = {label: poster_files(label, split, args.model, paths, args.bootstrap)}
    if greatest.exists():
        results["poster_files"]["greatest_films"] = poster_files(
            "greatest_films", load_eval_data(greatest, paths)[0], args.model, paths, args.bootstrap)
    write_results(args.results, results)


if __name__ == "__main__":
    main()
