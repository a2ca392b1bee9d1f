"""Label shift: the shipped default model (or --model), with its words, on no shift (the test split and copies
resampled at the training mix), known shifts (the test split resampled to three other mixes), each source's test
posters and ../shared/data/greatest_films: unadapted, adapted with each prior estimator, the constant guess and the
true-mix oracle; calibration error before and after calibration on each collection; and issue 35's targets for
every estimator (`gated` is what `--adapt-prior` does when it meets them).

    python benchmarks/bench_shift.py [--model default] [--root PROJECT]

Run the data stages first (`make all` or `postergenre get-data/clean/encode`): it needs the test split.
"""
import argparse

from common import require_sample, write_results


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="default")
    parser.add_argument("--root", default=None, help="the project whose splits and words' cache to use")
    args = parser.parse_args()
    sample = require_sample()
    from postergenre.config import PRIOR_ESTIMATORS, Paths
    from postergenre.studies.experiments import adaptation_targets, label_shift_study
    outside = sample.parent / "greatest_films"
    tables = label_shift_study(args.model, Paths.default(args.root),
                               outside if (outside / "labels.csv").exists() else None)
    for name, table in tables.items():
        print(f"\n{name}\n{table.round(3).to_string()}")
    targets = {estimator: adaptation_targets(tables, estimator) for estimator in PRIOR_ESTIMATORS}
    for estimator, table in targets.items():
        print(f"\ntargets, {estimator}: {int(table.met.sum())} of {len(table)} met\n{table.to_string()}")
    write_results("shift", {"model": args.model, **{name: table.round(4).to_dict("index")
                                                     for name, table in tables.items()},
                            "targets": {e: t.to_dict("index") for e, t in targets.items()}})


if __name__ == "__main__":
    main()
