"""The notebooks run headless, top to bottom, on a small slice of the real sample."""
import json
import re

import nbformat
import pandas as pd
import pytest

from postergenre.app.notebooks import NOTEBOOKS_DIR, inject_parameters, quiet_outputs, run_pipeline

# what a reader of a saved notebook should never see: TensorFlow's log lines (issue 32's list)
TF_NOISE = re.compile(r"absl::InitializeLog|oneDNN|port\.cc|INFO:tensorflow|WARNING:tensorflow|WARNING:absl|retracing")


def noise_and_widgets(path) -> tuple[list[str], int]:
    """TensorFlow's log lines in a saved notebook's outputs, and how many progress widgets (saved at 0%) it holds."""
    notebook = nbformat.read(path, as_version=4)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    lines = [line for o in outputs for line in o.get("text", "").splitlines() if TF_NOISE.search(line)]
    widgets = sum("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    return lines, widgets


def test_tensorflow_log_lines_leave_the_outputs_and_the_work_stays():
    noisy = "\n".join([
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796200705.113162    2222 port.cc:153] oneDNN custom operations are on.",
        "E0000 00:00:1796200711.432069    2222 util.cc:131] oneDNN supports DT_BOOL only on platforms with AVX-512.",
        "INFO:tensorflow:Assets written to: /tmp/tmpmp7jubg6/assets",
        "WARNING:absl:You are saving your model as an HDF5 file via `model.save()`.",
        "WARNING:tensorflow:5 out of the last 5 calls to <function f at 0x7f> triggered tf.function retracing.",
        "Epoch 1/4", "86/86 - 16s - 187ms/step - loss: 0.4721", ""])
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("train()"),
                                               nbformat.v4.new_code_cell("import tensorflow")])
    notebook.cells[0].outputs = [nbformat.v4.new_output("stream", name="stderr", text=noisy)]
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", name="stderr", text=noisy.split("Epoch")[0])]
    assert quiet_outputs(notebook) == 12
    assert notebook.cells[0].outputs[0].text == "Epoch 1/4\n86/86 - 16s - 187ms/step - loss: 0.4721\n"
    assert notebook.cells[1].outputs == [], "a stream of nothing but log lines goes"


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
    for notebook in notebooks:
        assert noise_and_widgets(project.reports / notebook.name) == ([], 0), notebook.name


@pytest.mark.slow
@pytest.mark.trains
def test_model_notebooks_run_headless(encoded_project, tmp_path):
    """Notebooks 04-07: train both models, evaluate them, predict one poster with Grad-CAM."""
    from tests.conftest import SHARED_DATA, clone_project, missing_shared
    paths = clone_project(encoded_project, tmp_path)
    outside = SHARED_DATA / "greatest_films"
    if not (outside / "labels.csv").exists():
        missing_shared(f"{outside} not found (the shared data folder beside the repo)")
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
    assert any("true genres" in o.get("text", "") for o in outputs), "the example's true genres beside its prediction"
    assert "best of this run's models" in printed and "The shipped default, apart" in "".join(
        c.source for c in evaluated.cells), "the default is not ranked with models of other data"
    for notebook in notebooks:
        assert noise_and_widgets(paths.reports / notebook.name) == ([], 0), notebook.name
