"""Research beside the pipeline: studies that notebooks and benchmarks run (the class-imbalance options, learning
curves, the label-shift estimators compared, what the words add, why a CNN stays at the prior). Nothing that
`predict`, `serve`, `rebuild` or a CLI stage runs imports them (an import-linter contract holds it)."""
