"""Why the seeds' CNN stays at the genre prior: the seeds' network and one change at a time, trained on
the same slice of the sample for a few epochs, measured after each epoch (and before the first):
validation ROC-AUC (0.5: no better than the prior), the output spread (0: every poster gets the same
scores) and the share of dead units in each ReLU layer (postergenre/networks/probe.py).

    python benchmarks/bench_seed_cnn.py [--train 2000] [--val 600] [--epochs 3]
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

from bench_train import prepare
from common import require_sample, write_results

VARIANTS = {  # one change from the seeds' network at a time
    "seeds' network": {},
    "no dropout": {"conv_dropout": 0.0, "dense_dropout": 0.0},
    "learning rate 1e-4": {"learning_rate": 1e-4},
    "BatchNorm after each conv": {"batch_norm": True},
}
RELU_LAYERS = ["conv1", "conv4", "dense128", "dense64"]  # with batch_norm the conv's ReLU is relu<i>


def run_variant(frames, vocabulary, cache: Path, epochs: int, learning_rate: float = 1e-3, **options) -> list[dict]:
    import keras
    import numpy as np

    from postergenre.config import SEED
    from postergenre.data.dataset import make_dataset
    from postergenre.inference.batches import run_network
    from postergenre.inference.keras_network import KerasNetwork
    from postergenre.studies import probe
    from postergenre.networks.registry import get
    from postergenre.networks.scratch import seed_cnn
    from postergenre.scoring import metrics
    size = get("seed_cnn").input_size
    keras.utils.set_random_seed(SEED)
    model = seed_cnn(len(vocabulary), size, **options)
    model.compile(keras.optimizers.Adam(learning_rate), "binary_crossentropy")
    train = make_dataset(frames["train"], vocabulary, size, 64, training=True, cache_dir=cache)
    probe_images = next(iter(make_dataset(frames["val"].head(256), None, size, 256)))
    y_val = frames["val"][vocabulary].to_numpy()
    relus = [f"relu{n[-1]}" if options.get("batch_norm") and n.startswith("conv") else n for n in RELU_LAYERS]
    network, rows = KerasNetwork(model), []
    for epoch in range(epochs + 1):
        if epoch:
            start = time.perf_counter()
            history = model.fit(train, epochs=1, verbose=0)
            seconds = round(time.perf_counter() - start, 1)
        scores, _ = run_network(network, frames["val"].poster_path, size)
        auc = np.nanmean(metrics.per_genre_auc(y_val, scores))
        row = {"epoch": epoch, "val_roc_auc": round(float(auc), 3),
               "train_loss": round(history.history["loss"][-1], 4) if epoch else None,
               "epoch_s": seconds if epoch else None,
               **{k.replace("relu", "conv"): v for k, v in probe.diagnose(model, probe_images, relus).items()}}
        rows.append(row)
        print(row, flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--val", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    sample = require_sample()
    from postergenre.config import Paths
    from postergenre.data.encode import load_splits
    results = {"train_posters": args.train, "val_posters": args.val, "epochs": args.epochs, "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths.default(prepare(Path(tmp), sample, None))
        frames, vocabulary = load_splits(paths)
        frames = {"train": frames["train"].head(args.train), "val": frames["val"].head(args.val)}
        for name, options in VARIANTS.items():
            print(f"--- {name}", flush=True)
            results["variants"][name] = run_variant(frames, vocabulary, paths.cache / "images", args.epochs,
                                                    **options)
    print(json.dumps(results["variants"], indent=1))
    write_results("seed_cnn", results)


if __name__ == "__main__":
    main()
