"""Label shift: the shipped default model (or --model) on the test split, the test split resampled to
another genre mix (Drama 0.55, Comedy 0.30, Animation 0.03), and ../shared/data/greatest_films, unadapted,
adapted with each prior estimator, the constant guess and the true-mix oracle; and calibration error before
and after calibration on each collection.

    python benchmarks/bench_shift.py [--model default]

Run the data stages first (`make all` or `postergenre get-data/clean/encode`): it needs the test split.
"""
import argparse

from common import require_sample, write_results


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    sample = require_sample()
    from postergenre.config import Paths
    from postergenre.evaluation.experiments import label_shift_study
    outside = sample.parent / "greatest_films"
    tables = label_shift_study(args.model, Paths.default(), outside if (outside / "labels.csv").exists() else None)
    for name, table in tables.items():
        print(f"\n{name}\n{table.round(3).to_string()}")
    write_results("shift", {"model": args.model, **{name: table.round(4).to_dict("index")
                                                     for name, table in tables.items()}})


if __name__ == "__main__":
    main()
