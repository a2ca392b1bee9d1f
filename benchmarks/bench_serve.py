"""`postergenre serve` under load: 8 clients (gradio_client) send 20 real posters each at once to the one-poster
endpoint, without Grad-CAM or with it (--gradcam); every request must be answered within --deadline seconds.
Reports the server's start time, throughput, p50/p95 latency and the server's memory (resident set, sampled).
--vs OLD: the same on another checkout of the project (its code, its models/default), the two taking turns for
--rounds rounds; the ratios new/old are taken round by round.

    python benchmarks/bench_serve.py [--clients 8] [--posters 20] [--gradcam] [--deadline 150] [--vs OLD --rounds 2]
"""
import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import psutil
from common import REPO, require_sample, write_results

from postergenre.training.cluster import free_ports


def start_server(port: int, gradcam: bool, checkout=REPO) -> subprocess.Popen:
    flags = [] if gradcam else ["--no-gradcam"]
    process = subprocess.Popen([sys.executable, "-m", "postergenre.cli", "serve", "--port", str(port), *flags],
                               cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=2)
            return process
        except OSError:
            time.sleep(0.25)
    process.kill()
    sys.exit("the server did not start within 180 s")


class MemoryWatch(threading.Thread):
    """The server's resident memory, sampled every 0.2 s: (at the first request, peak)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.process, self.peak, self.stop = psutil.Process(pid), 0, threading.Event()

    def rss_mb(self) -> float:
        return self.process.memory_info().rss / 2**20

    def run(self):
        while not self.stop.wait(0.2):
            self.peak = max(self.peak, self.rss_mb())


ONE_POSTER_OUTPUTS = ("label", "bars", "gradcam", "above", "poster", "status", "words", "photo")  # Page.one's, in
# order


def answered(answer, gradcam: bool) -> bool:
    """Whether the one-poster endpoint's answer is a prediction; an answer of another shape stops the benchmark
    (counting it as unanswered would measure the benchmark, not the page)."""
    if not isinstance(answer, (list, tuple)) or len(answer) != len(ONE_POSTER_OUTPUTS):
        raise SystemExit(f"bench_serve: the endpoint answered {type(answer).__name__} of "
                         f"{len(answer) if hasattr(answer, '__len__') else '?'} values, not the page's "
                         f"{len(ONE_POSTER_OUTPUTS)} ({', '.join(ONE_POSTER_OUTPUTS)}): fix the benchmark")
    values = dict(zip(ONE_POSTER_OUTPUTS, answer))
    if not isinstance(values["status"], str):
        raise SystemExit(f"bench_serve: the status is {values['status']!r}, not text: fix the benchmark")
    return values["status"].startswith("Predicted") and bool(values["label"]) and \
        (len(values["gradcam"]) == 3 if gradcam else True)


def client(url: str, posters: list, gradcam: bool, deadline: float) -> list[tuple[float, bool]]:
    from gradio_client import Client, handle_file
    session = Client(url, verbose=False, download_files=False, analytics_enabled=False)  # the answer's images are
    # left on the server: fetching and saving them costs this machine's cores as much as the page's own work
    inputs = len(session.view_api(print_info=False, return_format="dict")["named_endpoints"]["/predict_one"]
                 ["parameters"])  # model, poster, heatmaps[, camera[, find]]: an earlier page took no camera photo
    results = []
    for poster in posters:
        start = time.perf_counter()
        try:
            answer = session.predict(*("default", handle_file(str(poster)), gradcam, None, True)[:inputs],
                                     api_name="/predict_one")
        except Exception:  # noqa: BLE001  an unanswered request is what this counts
            answer = None
        ok = answer is not None and answered(answer, gradcam)
        took = time.perf_counter() - start
        results.append((took, ok and took <= deadline))
    return results


def measure(args, images: list, checkout=REPO) -> dict:
    """One server of `checkout`: started, clicked once, then under load."""
    port = free_ports(1)[0]
    started = time.perf_counter()
    server = start_server(port, args.gradcam, checkout)
    start_s = time.perf_counter() - started
    watch = MemoryWatch(server.pid)
    try:
        url = f"http://127.0.0.1:{port}"
        first = client(url, images[-1:], args.gradcam, args.deadline)[0][0]  # the first click, after start
        idle_mb = watch.rss_mb()
        watch.start()
        batches = [images[i * args.posters:(i + 1) * args.posters] for i in range(args.clients)]
        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = [r for batch in pool.map(lambda b: client(url, b, args.gradcam, args.deadline), batches)
                       for r in batch]
        wall = time.perf_counter() - start
        watch.stop.set()
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies = sorted(t for t, _ in results)
    answered = sum(ok for _, ok in results)
    return {"clients": args.clients, "posters_per_client": args.posters, "gradcam": args.gradcam,
            "server_start_s": round(start_s, 1), "first_request_s": round(first, 2),
            "requests": len(results), "answered": answered, "deadline_s": args.deadline, "wall_s": round(wall, 1),
            "requests_per_s": round(len(results) / wall, 2),
            "p50_s": round(statistics.median(latencies), 3),
            "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3),
            "server_rss_mb_after_first": round(idle_mb), "server_rss_mb_peak": round(max(watch.peak, idle_mb))}


RATIOS = ("p50_s", "p95_s", "server_start_s", "server_rss_mb_peak")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--posters", type=int, default=20)
    parser.add_argument("--gradcam", action="store_true")
    parser.add_argument("--deadline", type=float, default=150.0, help="seconds a request may take to count answered")
    parser.add_argument("--vs", type=os.path.abspath, default=None, help="another checkout, measured in turn")
    parser.add_argument("--rounds", type=int, default=2, help="with --vs: new then old, this many times")
    args = parser.parse_args()
    images = sorted((require_sample() / "images").glob("*.jpg"))
    if args.vs is None:
        figures = measure(args, images)
        print(figures)
    else:
        rounds = []
        for _ in range(args.rounds):
            rounds.append({"new": measure(args, images), "old": measure(args, images, args.vs)})
            print(rounds[-1], flush=True)
        commit = subprocess.run(["git", "-C", args.vs, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        figures = {**rounds[-1]["new"], "old": {**rounds[-1]["old"], "checkout": args.vs, "commit": commit},
                   "rounds": rounds, "ratios": {key: round(statistics.median(r["new"][key] / r["old"][key]
                                                                            for r in rounds), 2) for key in RATIOS}}
        print(figures["ratios"])
    write_results("serve_gradcam" if args.gradcam else "serve", figures)


if __name__ == "__main__":
    main()
