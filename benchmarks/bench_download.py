"""Poster download rate against a local server with 50 ms latency per request:
a sequential urllib loop (as the seeds did) against our concurrent downloader.

    python benchmarks/bench_download.py [--posters 500] [--latency 0.05]
"""
import argparse
import multiprocessing as mp
import tempfile
import time
import urllib.request
from pathlib import Path

from common import require_sample, write_results

from postergenre.config import DownloadConfig
from postergenre.data.download import Downloader


def serve(names, latency, port_queue):
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.poster_server import PosterServer
    sample = require_sample()
    with PosterServer({n: sample / "images" / n for n in names}, latency_s=latency) as server:
        port_queue.put(server.url)
        server.thread.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posters", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--workers", type=int, nargs="*", default=[16, 32])
    args = parser.parse_args()
    names = sorted(p.name for p in (require_sample() / "images").glob("*.jpg"))[: args.posters]
    queue = mp.Queue()
    server = mp.Process(target=serve, args=(names, args.latency, queue), daemon=True)
    server.start()
    url = queue.get(timeout=30)
    urls = [f"{url}/ok/{n}" for n in names]
    figures = {"posters": len(names), "latency_s": args.latency}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for i, u in enumerate(urls):
            urllib.request.urlretrieve(u, Path(tmp) / f"seq{i}.jpg")
        sequential = len(urls) / (time.perf_counter() - start)
        figures["sequential_posters_per_s"] = round(sequential, 1)
        print(f"sequential urllib loop: {sequential:.1f} posters/s")
        for workers in args.workers:
            import pandas as pd
            jobs = pd.DataFrame({"id": [f"tt{i:07d}" for i in range(len(urls))], "url": urls, "imdb_link": ""})
            downloader = Downloader(Path(tmp) / f"Posters{workers}", DownloadConfig(workers=workers))
            start = time.perf_counter()
            report = downloader.run(jobs, progress=False)
            rate = len(urls) / (time.perf_counter() - start)
            assert (report.status == "ok").all(), report.status.value_counts()
            figures[f"downloader_{workers}_workers_posters_per_s"] = round(rate, 1)
            figures[f"speedup_{workers}_workers"] = round(rate / sequential, 1)
            print(f"postergenre downloader, {workers} workers: {rate:.1f} posters/s "
                  f"({rate / sequential:.1f}x sequential; target 15x)")
    server.terminate()
    write_results("download", figures)


if __name__ == "__main__":
    main()
