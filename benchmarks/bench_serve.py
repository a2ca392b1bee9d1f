"""`postergenre serve` under load: 4 clients (gradio_client) send 50 real posters each at once to the
one-poster endpoint (without Grad-CAM, and with it for --gradcam); every request must be answered.
Reports throughput and p50/p95 latency.

    python benchmarks/bench_serve.py [--clients 4] [--posters 50] [--gradcam]
"""
import argparse
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from common import REPO, require_sample, write_results

from postergenre.training.cluster import free_ports


def start_server(port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "postergenre.cli", "serve", "--port", str(port)], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=2)
            return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    sys.exit("the server did not start within 120 s")


def client(url: str, posters: list, gradcam: bool) -> list[tuple[float, bool]]:
    from gradio_client import Client, handle_file
    session = Client(url, verbose=False)
    results = []
    for poster in posters:
        start = time.perf_counter()
        try:
            label, *_, status = session.predict("default", handle_file(str(poster)), gradcam, api_name="/predict_one")
            ok = status.startswith("Predicted") and bool(label)
        except Exception:  # noqa: BLE001  an unanswered request is what this counts
            ok = False
        results.append((time.perf_counter() - start, ok))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--posters", type=int, default=50)
    parser.add_argument("--gradcam", action="store_true")
    args = parser.parse_args()
    images = sorted((require_sample() / "images").glob("*.jpg"))
    port = free_ports(1)[0]
    server = start_server(port)
    try:
        url = f"http://127.0.0.1:{port}"
        client(url, images[:1], args.gradcam)  # warm-up: the first heatmap imports TensorFlow
        batches = [images[i * args.posters:(i + 1) * args.posters] for i in range(args.clients)]
        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = [r for batch in pool.map(lambda b: client(url, b, args.gradcam), batches) for r in batch]
        wall = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=20)
    latencies = sorted(t for t, _ in results)
    answered = sum(ok for _, ok in results)
    figures = {"clients": args.clients, "posters_per_client": args.posters, "gradcam": args.gradcam,
               "requests": len(results), "answered": answered, "wall_s": round(wall, 1),
               "requests_per_s": round(len(results) / wall, 2),
               "p50_s": round(statistics.median(latencies), 3),
               "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3)}
    print(figures)
    write_results("serve_gradcam" if args.gradcam else "serve", figures)


if __name__ == "__main__":
    main()
