"""The notebooks run headless, top to bottom, on a small slice of the real sample."""
import json

import nbformat
import pandas as pd
import pytest

from postergenre.app.notebooks import NOTEBOOKS_DIR, inject_parameters, run_pipeline


def test_parameters_are_injected_after_the_tagged_cell():
    notebook = nbformat.read(NOTEBOOKS_DIR / "01_get_data.ipynb", as_version=4)
    tagged = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    inject_parameters(notebook, {"LIMIT": 5})
    assert notebook.cells[tagged + 1].source.endswith("LIMIT = 5")


def test_committed_notebooks_have_no_outputs():
    for path in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs"


@pytest.mark.slow
def test_data_notebooks_run_headless(small_folder, project):
    notebooks = [NOTEBOOKS_DIR / n for n in ("01_get_data.ipynb", "02_clean_data.ipynb", "03_encode_and_split.ipynb")]
    times = run_pipeline(notebooks, project.reports, {"ROOT": str(project.root), "SOURCE": str(small_folder),
                                                      "LIMIT": 200})
    assert list(times) == [n.stem for n in notebooks]
    written = json.loads((project.reports / "pipeline.json").read_text())
    assert written["stages"] == times and written["cpus"] >= 1
    assert all(t["wall_s"] > 0 and t["peak_rss_mb"] > 50 for t in times.values()), times  # a kernel's memory
    assert len(pd.read_csv(project.movies_csv)) == 200
    assert sum(len(pd.read_csv(project.split_csv(s))) for s in ("train", "val", "test")) == 200
    executed = nbformat.read(project.reports / "03_encode_and_split.ipynb", as_version=4)
    images = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) >= 3, "the three figures are shown inline"


@pytest.mark.slow
@pytest.mark.trains
def test_model_notebooks_run_headless(encoded_project, tmp_path):
    """Notebooks 04-07: train both models, evaluate them, predict one poster with Grad-CAM."""
    from tests.conftest import SHARED_DATA, clone_project
    paths = clone_project(encoded_project, tmp_path)
    outside = SHARED_DATA / "greatest_films"
    if not (outside / "labels.csv").exists():
        pytest.skip(f"{outside} not found (the shared data folder beside the repo)")
    few_outside = tmp_path / "greatest_films"  # its first 150 posters: the label-shift study runs, quicker
    few_outside.mkdir()
    pd.read_csv(outside / "labels.csv", dtype=str, keep_default_na=False).head(150).to_csv(
        few_outside / "labels.csv", index=False)
    (few_outside / "images").symlink_to(outside / "images")
    params = {"ROOT": str(paths.root), "EPOCHS": 1, "LIMIT": 64, "BOOTSTRAP": 20, "OUTSIDE": str(few_outside),
              "MODELS": ["efficientnet_lite0", "custom_cnn"]}  # not the repository's models/default
    notebooks = sorted(NOTEBOOKS_DIR.glob("0[4-7]_*.ipynb"))
    assert [n.name[:2] for n in notebooks] == ["04", "05", "06", "07"]
    run_pipeline(notebooks, paths.reports, params)
    trained = {p.name for p in paths.models.iterdir()}
    assert trained == {"custom_cnn", "efficientnet_lite0"}, "imbalance options compared without model folders"
    executed = nbformat.read(paths.reports / "05_finetune_pretrained.ipynb", as_version=4)
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                   for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert "best on validation macro AP" in text and "baseline: 3 most frequent genres" in text
    assert all(v in text for v in ("focal", "asymmetric", "oversample")), "every imbalance option in the table"
    evaluated = nbformat.read(paths.reports / "06_evaluate.ipynb", as_version=4)
    comparison_cell = next(c for c in evaluated.cells if "compare_models(" in c.source)
    table = comparison_cell.outputs[-1]["data"]["text/plain"]
    assert "custom_cnn" in table and "baseline: 3 most frequent genres" in table and "[" in table
    assert (paths.models / "efficientnet_lite0" / "eval_test.json").exists()
    printed = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                      for c in evaluated.cells if c.cell_type == "code" for o in c.outputs)
    assert "ece_before" in printed and "ece_after" in printed, "calibration error before and after"
    assert "test resampled" in printed and "greatest_films" in printed and "oracle (true mix)" in printed
    predicted = nbformat.read(paths.reports / "07_predict.ipynb", as_version=4)
    outputs = [o for c in predicted.cells if c.cell_type == "code" for o in c.outputs]
    assert any("above thresholds" in o.get("text", "") for o in outputs)
    assert any("running headless: the page is not started" in o.get("text", "") for o in outputs)
    assert any("image/png" in o.get("data", {}) for o in outputs), "poster, bars and Grad-CAM shown inline"
