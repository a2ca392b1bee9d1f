"""Training's inference passes on Keras and on LiteRT, on the same real posters: a backbone's pooled features
(the head's cache) and the lower blocks' output below the fine-tuned ones (fine-tuning's activation cache, each
poster re-saved at a random JPEG quality first, as training does). Posters per second on each, the seconds LiteRT's
export costs first, the ratio of the two times with the export, and the largest difference between the outputs.

    python benchmarks/bench_litert_training.py [--model efficientnet_lite0] [--posters 2048] [--layers 44]
"""
import argparse
import time

import numpy as np
from common import require_sample, write_results

from postergenre.data.images import fit_image, open_rgb, recompress
from postergenre.inference.batches import run_network
from postergenre.inference.keras_network import fast_network
from postergenre.networks import registry
from postergenre.networks.pretrained import backbone, unfreeze_top
from postergenre.training import top_blocks


def timed(network, images, size, litert: bool) -> tuple[np.ndarray, float, float]:
    """(outputs, seconds to get the runner: LiteRT's export, seconds to run the posters)."""
    start = time.perf_counter()
    with fast_network(network, len(images), min_posters=1 if litert else len(images) + 1) as runner:
        ready = time.perf_counter()
        outputs = run_network(runner, images, size, batch_size=64)[0]
        done = time.perf_counter()
    return outputs, ready - start, done - ready


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--posters", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=44, help="fine-tuned layers: the cut for the activations")
    args = parser.parse_args()
    sample = require_sample()
    size = registry.get(args.model).input_size
    posters = sorted((sample / "images").glob("*.jpg"))[: args.posters]
    qualities = np.random.default_rng(0).integers(*top_blocks.JPEG_QUALITIES, len(posters))
    extractor = backbone(args.model, size)
    unfreeze_top(extractor, args.layers)
    lower, _ = top_blocks.split_at_trainable(extractor)
    images = {"features": [fit_image(open_rgb(p), size, "crop") for p in posters],
              "activations": [fit_image(recompress(open_rgb(p), int(q)), size, "crop")
                              for p, q in zip(posters, qualities)]}
    rows = {}
    for name, network in (("features", extractor), ("activations", lower)):
        keras_out, _, keras_s = timed(network, images[name], size, litert=False)
        lite_out, export_s, lite_s = timed(network, images[name], size, litert=True)
        rows[name] = {"output": list(network.output.shape[1:]), "posters": len(posters),
                      "keras_posters_per_s": round(len(posters) / keras_s, 1),
                      "litert_export_s": round(export_s, 1),
                      "litert_posters_per_s": round(len(posters) / lite_s, 1),
                      "speed_ratio_with_export": round(keras_s / (export_s + lite_s), 2),
                      "max_relative_difference": float(np.abs(lite_out - keras_out).max() / np.abs(keras_out).max())}
        row = rows[name]
        print(f"{name} {row['output']}: Keras {row['keras_posters_per_s']}/s; LiteRT {row['litert_posters_per_s']}/s "
              f"after a {row['litert_export_s']} s export, x{row['speed_ratio_with_export']} with it for "
              f"{len(posters)} posters; largest relative difference {row['max_relative_difference']:.1e}", flush=True)
    write_results("litert_training", {"model": args.model, "fine_tuned_layers": args.layers,
                                      "note": "images decoded beforehand: the networks alone", **rows})


if __name__ == "__main__":
    main()
