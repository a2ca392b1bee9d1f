"""The README's results are written from the runs' JSON files, and held to them."""
import json

import pytest

from postergenre.config import REPO_ROOT
from postergenre.report import BEGIN, END, SOURCES, replace_block, results_block, update_readme


def test_block_is_rebuilt_from_the_json_files_between_the_markers(tmp_path):
    figures = {m: [0.5, 0.4, 0.6] for m in ("macro_ap", "micro_ap", "top3_hit_rate", "micro_f1@tuned",
                                            "macro_f1@tuned")}
    manifest = {"model": "efficientnet_lite0", "config": {"tta": False}, "full_model": True, "test_posters": 9,
                "test_metrics": {"default": {**figures, "macro_ap": [0.4123, 0.4, 0.43]}},
                "test_calibration": {"method": "platt", "ece_before": 0.0231, "ece_after": 0.0052}}
    (tmp_path / "models" / "default").mkdir(parents=True)
    (tmp_path / SOURCES["default"]).write_text(json.dumps(manifest))
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nkept\n\n{BEGIN}\nstale 0.111\n{END}\n\n## after\n")
    update_readme(tmp_path)
    text = readme.read_text()
    assert "0.412 [0.400, 0.430]" in text and "fine-tuned" in text and "0.0231" in text and "0.0052" in text
    assert "stale" not in text and text.startswith("# title\n\nkept") and text.endswith("## after\n")
    assert "backbones" not in text.lower(), "a section whose file is missing is left out"
    with pytest.raises(ValueError, match="no results markers"):
        replace_block("no markers here", "x")


def test_committed_readme_says_what_its_json_files_say():
    readme = (REPO_ROOT / "README.md").read_text()
    committed = readme.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert committed == results_block(REPO_ROOT).strip(), "run `postergenre report` after changing the results"
    assert all((REPO_ROOT / source).exists() for source in SOURCES.values()), "the sources are committed"
