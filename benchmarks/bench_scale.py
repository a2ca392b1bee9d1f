"""How the pipeline scales: poster collections of 8,000, 20,000 and 40,000 posters made from the sample's
images (repeated under new ids, each with a small random crop, so no two files are byte-identical and the
cleaner keeps them all), each run through get-data, clean, encode, train (feature extraction + head) and
evaluate as separate processes: wall time, seconds per 1,000 posters and peak memory of each stage.
Then the downloader at scale: 40,000 URLs on a local server, 2% failing in the ways the fault tests cover;
the report lists every failure, and a second run (the server healed) fetches only those.

    python benchmarks/bench_scale.py [--sizes 8000 20000 40000] [--work DIR] [--skip-pipeline] [--skip-download]

Targets: peak memory at 40,000 within 15% of that at 8,000 and under 2.5 GB; no stage slower per poster as
the collection grows (seconds per 1,000 posters about constant).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import subprocess
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
from common import REPO, RESULTS, require_sample, write_results

STAGES = ["get-data", "clean", "encode", "train", "evaluate"]
# a stage as its own process; its peak resident memory printed last on stderr. VmHWM, not ru_maxrss: Linux
# carries ru_maxrss over fork and exec, so a child's would never read below this script's own memory.
RUNNER = ("import re, sys; from pathlib import Path; from postergenre.cli import main; code = main(sys.argv[1:]); "
          "peak = re.search(r'VmHWM:\\s+(\\d+) kB', Path('/proc/self/status').read_text()).group(1); "
          "print(f'PEAK_RSS_KB {peak}', file=sys.stderr); sys.exit(code)")
FAULTS = ["404", "truncated", "html", "empty", "slow"]  # the permanent ones; flaky500 and reset recover on retry
FAILING_SHARE = 0.02


def cropped_copy(job: tuple[str, str, int]) -> None:
    """The poster at `source` with 1-4 pixels cut from each side (seeded by `seed`), as a JPEG at `target`."""
    from PIL import Image
    source, target, seed = job
    rng = np.random.default_rng(seed)
    with Image.open(source) as image:
        image = image.convert("RGB")
        left, top, right, bottom = rng.integers(1, 5, size=4)
        image = image.crop((left, top, image.width - right, image.height - bottom))
        buffer = BytesIO()
        image.save(buffer, "JPEG", quality=90)
    Path(target).write_bytes(buffer.getvalue())


def build_collection(sample: Path, folder: Path, n: int) -> pd.DataFrame:
    """labels.csv of n posters + images/, the sample's posters repeated under ids tt9000000 and up."""
    labels = pd.read_csv(sample / "labels.csv", dtype=str, keep_default_na=False)
    rows = labels.iloc[np.arange(n) % len(labels)].reset_index(drop=True)
    sources = [str(sample / "images" / f"{i}.jpg") for i in rows.id]
    rows["id"] = [f"tt{9000000 + k}" for k in range(n)]
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    jobs = [(src, str(images / f"{new}.jpg"), k) for k, (src, new) in enumerate(zip(sources, rows.id))
            if not (images / f"{new}.jpg").exists()]
    with mp.Pool() as pool:
        for _ in pool.imap_unordered(cropped_copy, jobs, chunksize=256):
            pass
    rows.to_csv(folder / "labels.csv", index=False)
    return rows


def run_stage(root: Path, args: list[str]) -> dict:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RUNNER, "--root", str(root), *args], cwd=REPO,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    peak_kb = int(done.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_kb / 1024)}


def scale_run(collection: Path, labels: pd.DataFrame, n: int, work: Path) -> dict:
    folder = work / f"collection_{n}"
    folder.mkdir(parents=True, exist_ok=True)
    labels.head(n).to_csv(folder / "labels.csv", index=False)
    if not (folder / "images").exists():
        (folder / "images").symlink_to(collection / "images")
    root = work / f"project_{n}"
    shutil.rmtree(root, ignore_errors=True)
    stages = {}
    for stage, args in [("get-data", ["get-data", "--source", str(folder)]), ("clean", ["clean"]),
                        ("encode", ["encode"]),
                        ("train", ["train", "--model", "efficientnet_lite0"]),
                        ("evaluate", ["evaluate", "--model", "efficientnet_lite0", "--no-figures"])]:
        stages[stage] = run_stage(root, args)
        print(f"{n} posters, {stage}: {stages[stage]['seconds']} s, peak {stages[stage]['peak_rss_mb']} MB", flush=True)
    model_folder = root / "models" / "efficientnet_lite0"
    manifest = json.loads((model_folder / "manifest.json").read_text())
    split = {s: len(pd.read_csv(root / "data" / "processed" / f"{s}.csv", usecols=["id"])) for s in ("train", "val", "test")}
    # train is one process: its features (train + val posters) and head are timed inside it
    stages["features"] = {"seconds": manifest["feature_seconds"], "posters": split["train"] + split["val"]}
    # early stopping ends the head after a different number of epochs at each size: per epoch is comparable
    epochs = pd.read_csv(model_folder / "history.csv").epoch.nunique()
    stages["head"] = {"seconds": manifest["head_seconds"], "posters": split["train"], "epochs": epochs}
    stages["evaluate"]["posters"] = split["test"]
    for figures in stages.values():
        figures["s_per_1000"] = round(1000 * figures["seconds"] / figures.get("posters", n), 2)
    stages["head"]["s_per_1000_per_epoch"] = round(stages["head"]["s_per_1000"] / epochs, 3)
    shutil.rmtree(root / "data" / "cache", ignore_errors=True)
    return {"posters": n, "split": split, "stages": stages,
            "peak_rss_mb": max(s["peak_rss_mb"] for s in stages.values() if "peak_rss_mb" in s)}


def serve_posters(names: list[str], images: Path, queue, heal) -> None:
    sys.path.insert(0, str(REPO))
    from tests.poster_server import PosterServer
    with PosterServer({n: images / n for n in names}, slow_s=3.0) as server:
        queue.put(server.url)
        while True:
            server.healed = heal.is_set()
            time.sleep(0.05)


def download_at_scale(collection: Path, labels: pd.DataFrame, n: int, work: Path) -> dict:
    """n URLs (every poster of the collection), FAILING_SHARE of them faulty; a second run after the server heals."""
    from postergenre.config import DownloadConfig
    from postergenre.data.download import Downloader
    ids = labels.id.head(n).tolist()
    rng = np.random.default_rng(0)
    faulty = rng.choice(n, size=int(n * FAILING_SHARE), replace=False)
    routes = np.array(["ok"] * n, dtype=object)
    routes[faulty] = [FAULTS[i % len(FAULTS)] for i in range(len(faulty))]
    transient = rng.choice(np.setdiff1d(np.arange(n), faulty), size=int(n * FAILING_SHARE), replace=False)
    routes[transient] = [("flaky500", "reset")[i % 2] for i in range(len(transient))]
    queue, heal = mp.Queue(), mp.Event()
    server = mp.Process(target=serve_posters, args=([f"{i}.jpg" for i in ids], collection / "images", queue, heal),
                        daemon=True)
    server.start()
    url = queue.get(timeout=60)
    jobs = pd.DataFrame({"id": ids, "url": [f"{url}/{r}/{i}/{i}.jpg" for r, i in zip(routes, ids)], "imdb_link": ""})
    posters = work / "download" / "Posters"
    shutil.rmtree(posters.parent, ignore_errors=True)
    config = DownloadConfig(workers=32, timeout=1.0, retries=2, backoff=0.1)
    start = time.perf_counter()
    first = Downloader(posters, config).run(jobs, progress=True)
    first_s = time.perf_counter() - start
    failed = first[~first.status.isin(["ok", "present"])]
    heal.set()
    time.sleep(0.5)
    start = time.perf_counter()
    second = Downloader(posters, config).run(jobs, progress=True)
    second_s = time.perf_counter() - start
    server.terminate()
    fetched_again = second[second.status == "ok"]
    figures = {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "urls": n, "faulty_urls": len(faulty), "transient_urls": len(transient),
               "first_run_s": round(first_s, 1), "first_run_posters_per_s": round(n / first_s, 1),
               "first_run_status": first.status.value_counts().to_dict(),
               "failures_listed": len(failed),
               "failures_match_faulty_urls": sorted(failed.id) == sorted(np.array(ids)[faulty]),
               "second_run_s": round(second_s, 1), "second_run_fetched": len(fetched_again),
               "second_run_fetched_only_failures": sorted(fetched_again.id) == sorted(failed.id),
               "posters_on_disk": sum(1 for _ in posters.glob("*.jpg"))}
    print(json.dumps(figures, indent=1))
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8000, 20000, 40000])
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--skip-download", action="store_true")
    args = parser.parse_args()
    sample = require_sample()
    work = args.work or Path(tempfile.mkdtemp(prefix="postergenre_scale_"))
    collection = work / "collection"
    start = time.perf_counter()
    labels = build_collection(sample, collection, max(args.sizes))
    figures = {"build_collection_s": round(time.perf_counter() - start, 1), "runs": []}
    earlier = RESULTS / "scale.json"  # the part skipped keeps its figures from the last run
    if earlier.exists() and (args.skip_pipeline or args.skip_download):
        kept = json.loads(earlier.read_text())
        keys = ["runs", "peak_growth", "targets"] if args.skip_pipeline else ["download"]
        figures.update({k: kept[k] for k in keys if k in kept})
        if "download" in figures:
            figures["download"].setdefault("when", kept["when"])
    print(f"collection of {max(args.sizes)} cropped posters in {figures['build_collection_s']} s -> {collection}")
    if not args.skip_pipeline:
        for n in sorted(args.sizes):
            figures["runs"].append(scale_run(collection, labels, n, work))
            write_results("scale", figures)
        small, large = figures["runs"][0], figures["runs"][-1]
        figures["peak_growth"] = round(large["peak_rss_mb"] / small["peak_rss_mb"] - 1, 3)
        figures["targets"] = {"peak_growth_max": 0.15, "peak_mb_max": 2560}
        print(f"peak memory {small['peak_rss_mb']} MB at {small['posters']}, {large['peak_rss_mb']} MB at "
              f"{large['posters']} ({100 * figures['peak_growth']:+.0f}%; target +15% and 2,560 MB)")
    if not args.skip_download:
        figures["download"] = download_at_scale(collection, labels, max(args.sizes), work)
    write_results("scale", figures)


if __name__ == "__main__":
    main()
