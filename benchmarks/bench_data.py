"""Clean + encode of the whole sample, with a full decode of every poster (target: 60 s).

    python benchmarks/bench_data.py
"""
import tempfile
import time

from common import peak_rss_mb, require_sample, write_results

from postergenre.data.clean import clean
from postergenre.config import Paths
from postergenre.data.encode import encode
from postergenre.data.get_data import get_data


def main():
    sample = require_sample()
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths.default(tmp)
        start = time.perf_counter()
        movies = get_data(sample, paths, progress=False)
        read = time.perf_counter()
        kept, _ = clean(paths, progress=False)
        cleaned = time.perf_counter()
        encode(paths)
        done = time.perf_counter()
    figures = {"posters": len(movies), "kept": len(kept), "get_data_s": round(read - start, 2),
               "clean_s": round(cleaned - read, 2), "encode_s": round(done - cleaned, 2),
               "clean_plus_encode_s": round(done - read, 2), "target_s": 60, "peak_rss_mb": round(peak_rss_mb())}
    print(f"clean {figures['clean_s']}s + encode {figures['encode_s']}s = {figures['clean_plus_encode_s']}s "
          f"for {len(movies)} posters (target 60 s)")
    write_results("data", figures)


if __name__ == "__main__":
    main()
