"""Does a member that learned from phone photos of its posters lose less on photos? Two EfficientNet-Lite1 heads,
the default's second member (two feature variants of each training poster) and the same with one of the two
variants photographed by training's generator (`photo_variants = 1`, postergenre/data/photo_views.py), each scored
on test posters as stored and photographed in rooms by benchmarks/rooms.py (another generator, never trained on),
with the finder off and on, the image alone; every change with a paired 95% bootstrap interval.

    python benchmarks/bench_photo_variants.py [--root .] [--posters 600] [--bootstrap 1000] [--settings ...]

--root: a project whose splits are made (after `make all`: this repository; features are cached there, so a second
run trains only the heads). Writes photo_variants.json.
"""
import argparse
from pathlib import Path

import pandas as pd
from bench_finder import room_photos, rooms_folder
from common import REPO, paired, require_sample, write_results
from rooms import ROOMS

from postergenre.config import Paths
from postergenre.evaluation.evaluate import map_labels
from postergenre.inference.predictor import load
from postergenre.training.train import TrainConfig, train

HEADS = {"stored": 0, "photos": 1}  # photo_variants of the two heads: everything else is the default's lite1-q2
SETTINGS = ("textured + clutter + turned", "all together")


def trained_heads(paths: Paths) -> dict[str, Path]:
    return {name: train(TrainConfig(model="efficientnet_lite1", name=f"bench_photo_variants/{name}",
                                    input_size=(240, 160), fit="crop", loss="bce", epochs=40, learning_rate=0.001,
                                    feature_variants=2, photo_variants=photos, seed=42), paths)
            for name, photos in HEADS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO)
    parser.add_argument("--posters", type=int, default=600)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(ROOMS))
    args = parser.parse_args()
    require_sample()
    paths = Paths.default(args.root)
    heads = trained_heads(paths)
    test = pd.read_csv(paths.split_csv("test"), dtype=str, keep_default_na=False)
    sizes = {"test_posters": len(test), "train_posters": len(pd.read_csv(paths.split_csv("train"), usecols=[0]))}
    test = test.sample(n=min(args.posters, len(test)), random_state=0).reset_index(drop=True)
    results = {"posters": len(test), **sizes, "bootstrap": args.bootstrap, "heads": HEADS, "rooms": {s: ROOMS[s] for s in
                                                                                             args.settings},
               "sets": {}}
    scores, y, thresholds = {}, None, {}
    for name, folder in heads.items():
        for find in (False, True):
            predictor = load(folder, text=False, find_poster=find)
            frame, y, _ = map_labels(test, predictor.vocabulary)
            thresholds[name] = predictor.thresholds
            originals = list(frame.poster_path)
            scores[(name, find, "originals")] = predictor.probabilities(originals, progress=True)[0]
            for setting in args.settings:
                photos = [path for path, _ in room_photos(originals, rooms_folder(paths, ROOMS[setting]),
                                                          ROOMS[setting])]
                scores[(name, find, setting)] = predictor.probabilities(photos, progress=True)[0]
    for find in (False, True):
        finder = "finder on" if find else "finder off"
        for setting in args.settings:
            for name in heads:
                key = f"{name} head, {finder}: originals -> photos {setting}"
                results["sets"][key] = paired(y, scores[(name, find, "originals")], scores[(name, find, setting)],
                                              thresholds[name], args.bootstrap)
                print(key, results["sets"][key]["difference"], flush=True)
        for setting in ("originals", *args.settings):  # the same posters, one head against the other
            key = f"{finder}: {setting}, stored head -> photos head"
            results["sets"][key] = paired(y, scores[("stored", find, setting)], scores[("photos", find, setting)],
                                          thresholds["stored"], args.bootstrap, second_thresholds=thresholds["photos"])
            print(key, results["sets"][key]["difference"], flush=True)
    write_results("photo_variants", results)


if __name__ == "__main__":
    main()
