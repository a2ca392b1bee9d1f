"""The README's headline and the docs' results pages are written from the runs' JSON files, and held to them."""
import json

import pytest

from postergenre.app.report import (
    BEGIN,
    END,
    NETWORKS_BEGIN,
    NETWORKS_END,
    PAGES,
    SECTIONS,
    SOURCES,
    readme_block,
    replace_block,
    results_block,
    results_page,
    write_report,
)
from postergenre.config import REPO_ROOT


def test_block_is_rebuilt_from_the_json_files_between_the_markers(tmp_path):
    figures = {m: [0.5, 0.4, 0.6] for m in ("macro_ap", "micro_ap", "top3_hit_rate", "micro_f1@tuned",
                                            "macro_f1@tuned")}
    guess = {m: [0.1, 0.09, 0.11] for m in figures}
    manifest = {"model": "efficientnet_lite0", "config": {"tta": False}, "full_model": True, "test_posters": 9,
                "test_metrics": {"default": {**figures, "macro_ap": [0.4123, 0.4, 0.43]},
                                 "baseline: 3 most frequent genres": guess},
                "test_calibration": {"method": "platt", "ece_before": 0.0231, "ece_after": 0.0052}}
    (tmp_path / "models" / "default").mkdir(parents=True)
    (tmp_path / SOURCES["default"]).write_text(json.dumps(manifest))
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nkept\n\n{BEGIN}\nstale 0.111\n{END}\n\n## after\n")
    written = write_report(tmp_path)
    text = readme.read_text()
    assert "| test | 0.412 [0.400, 0.430] | 0.100 |" in text, "the default beside the constant guess"
    assert "stale" not in text and text.startswith("# title\n\nkept") and text.endswith("## after\n")
    page = (tmp_path / "docs" / "results" / "index.md").read_text()
    assert "0.412 [0.400, 0.430]" in page and "fine-tuned" in page and "0.0231" in page and "0.0052" in page
    assert "backbones" not in page.lower(), "a section whose file is missing is left out"
    assert set(written) >= {readme, *(tmp_path / "docs" / "results" / name for name in PAGES)}
    with pytest.raises(ValueError, match="no results markers"):
        replace_block("no markers here", "x")

    manifest["sources"] = {"kaggle_posters_8k": {"train": 5467}, "kaggle_posters_extra": {"train": 6982}}
    manifest["test_metrics_by_source"] = {"test_kaggle_posters_extra": {"default": {**figures,
                                                                                    "macro_ap": [0.2871, 0.27, 0.3]},
                                                                        "baseline: 3 most frequent genres": guess}}
    (tmp_path / SOURCES["default"]).write_text(json.dumps(manifest))
    write_report(tmp_path)
    page = (tmp_path / "docs" / "results" / "index.md").read_text()
    assert "kaggle_posters_8k (5,467 training posters), kaggle_posters_extra (6,982 training posters)" in page
    extra = page.split("*test_kaggle_posters_extra*", 1)[1]
    assert "0.287 [0.270, 0.300]" in extra and "0.412" in page.split("*test_kaggle_posters_extra*", 1)[0]
    assert "| the extra posters' test posters | 0.287 [0.270, 0.300] | 0.100 |" in readme.read_text()


def test_committed_readme_and_results_pages_say_what_their_json_files_say():
    readme = (REPO_ROOT / "README.md").read_text()
    committed = readme.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert committed == readme_block(REPO_ROOT).strip(), "run `postergenre report` after changing the results"
    for name in PAGES:
        page = (REPO_ROOT / "docs" / "results" / name).read_text()
        assert page == results_page(REPO_ROOT, name), f"docs/results/{name}: run `postergenre report`"
    assert all((REPO_ROOT / source).exists() for source in SOURCES.values()), "the sources are committed"
    every = "".join((REPO_ROOT / "docs" / "results" / name).read_text() for name in PAGES)
    assert all(f"`{source}`" in every for source in SOURCES.values()), "every results file has its section"
    paged = {key for _, _, keys in PAGES.values() for key in keys}
    assert set(SECTIONS) == set(SOURCES) and paged <= set(SOURCES), "every section has its file, every page's too"


def test_committed_docs_list_the_registered_networks():
    from postergenre.networks.registry import BACKBONES, markdown_table
    page = (REPO_ROOT / "docs" / "models.md").read_text()
    table = page.split(NETWORKS_BEGIN, 1)[1].split(NETWORKS_END, 1)[0].strip()
    assert table == markdown_table(), "run `postergenre report` after changing postergenre/networks/registry.py"
    assert all(f"`{name}`" in table for name in BACKBONES)


def test_the_readme_is_a_short_front_page():
    readme = (REPO_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    commands = [line.split("#")[0].strip() for line in readme.split("## Set-up: two commands", 1)[1]
                .split("```bash", 1)[1].split("```", 1)[0].strip().splitlines()]
    assert commands == ["make all SOURCE=../shared/data/kaggle_posters_8k", "make test"]
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text(), "CI runs the README's test command"


def test_timings_and_scratch_cnns_come_with_cores_and_date(tmp_path):
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    pipeline = {"when": "2026-11-24T10:00:00", "cpus": 2, "commit": "abc1234", "install_s": 95.0, "total_s": 690.0,
                "target_s": 720, "stages": {"01_get_data": {"wall_s": 6.2, "peak_rss_mb": 180},
                                            "04_train_custom_cnn": {"wall_s": 222.0, "peak_rss_mb": 1660}}}
    scratch = {"when": "2026-11-23T09:00:00", "cpus": 2, "same_seed_largest_difference": 0.0003,
               "rows": {"custom_cnn, seed 42, run 1": {"macro_ap": 0.3161, "top3_hit_rate": 0.8502,
                                                       "training_seconds": 211.4, "epochs": 6}}}
    (tmp_path / SOURCES["pipeline"]).write_text(json.dumps(pipeline))
    (tmp_path / SOURCES["custom_cnn"]).write_text(json.dumps(scratch))
    block = results_block(tmp_path)
    assert "11.5 minutes** (target 12) on 2 cores on 2026-11-24, commit abc1234: install 95 s" in block
    assert "| 04_train_custom_cnn | 3.7 | 222 | 1660 |" in block
    assert "| custom_cnn, seed 42, run 1 | 0.316 |  | 0.850 |  | 6 | 211.4 |" in block
    assert "on 2 cores on 2026-11-23" in block and "at most 0.0003" in block
    both = {**pipeline, "source": "/data/kaggle_posters_8k /data/kaggle_posters_extra", "total_s": 1800.0}
    (tmp_path / SOURCES["pipeline_sources"]).write_text(json.dumps(both))
    block = results_block(tmp_path)
    assert "**`make all` on 2 sources merged (kaggle_posters_8k, kaggle_posters_extra) from a fresh clone**, install " \
           "included: **30.0 minutes** on 2 cores" in block and "from `benchmarks/results/pipeline_sources.json`" in block


def test_scale_table_has_a_column_per_collection_size(tmp_path):
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    runs = [{"posters": n, "peak_rss_mb": peak,
             "stages": {"clean": {"seconds": n / 1000 * 1.5, "s_per_1000": 1.5, "peak_rss_mb": 90},
                        "features": {"seconds": 0.7 * n, "s_per_1000": per_1000},
                        "head": {"seconds": 3.0 * n / 1000, "s_per_1000": 3.0, "epochs": epochs,
                                 "s_per_1000_per_epoch": round(3.0 / epochs, 3)}}}
            for n, peak, per_1000, epochs in [(8000, 1300, 18.61, 20), (40000, 1400, 18.94, 40)]]  # +7.7%
    download = {"urls": 40000, "faulty_urls": 800, "transient_urls": 800, "first_run_posters_per_s": 250.4,
                "failures_listed": 800, "second_run_fetched": 800, "second_run_fetched_only_failures": True,
                "second_run_s": 61.2}
    scale = {"when": "2026-11-24T12:00:00", "cpus": 2, "runs": runs, "download": download}
    (tmp_path / SOURCES["scale"]).write_text(json.dumps(scale))
    block = results_block(tmp_path)
    assert "| stage | 8,000 posters | 40,000 posters |" in block
    assert "| head, per epoch | 0.150 | 0.075 |" in block and "| head epochs (early stopping) | 20 | 40 |" in block
    assert "| features | 18.6 | 18.9 |" in block and "| peak memory (MB) | 1300 | 1400 |" in block
    assert "(growth from the smallest to the largest: +8%)" in block and "on 2 cores on 2026-11-24" in block
    assert "40,000 URLs" in block and "250 posters/s, 800 failures listed" in block and "fetched 800" in block


def test_litert_training_table_gives_both_runtimes_and_their_difference(tmp_path):
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    results = {"when": "2026-11-26T19:00:00", "cpus": 2, "model": "efficientnet_lite0", "fine_tuned_layers": 44,
               "features": {"output": [1280], "posters": 1536, "keras_posters_per_s": 34.2,
                            "litert_export_s": 13.1, "litert_posters_per_s": 120.5, "speed_ratio_with_export": 1.51,
                            "max_relative_difference": 3.49e-06}}
    (tmp_path / SOURCES["litert_training"]).write_text(json.dumps(results))
    block = results_block(tmp_path)
    assert "| features [1280] | 1536 | 34.2 | 13.1 | 120.5 | 1.510 | 3.5e-06 |" in block
    assert "below its top 44 layers" in block and "on 2 cores on 2026-11-26" in block


def test_the_recompressed_answers_table_names_each_model_and_how_far_its_mix_moved(tmp_path):
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    results = {"when": "2026-11-26T22:30:00", "posters": 1183, "set": "test split, kaggle_posters_8k posters",
               "stored_jpeg_quality": {"sample": 75.0, "extra": 50.0}, "re_saved_quality": 50,
               "models": {"lite1 (stored JPEG)": {"macro_ap_stored": 0.41, "macro_ap_re_saved": 0.4, "top3_changed": 0.05,
                                                  "mix_moved_toward_extra": 0.12, "shift Documentary": 0.0213}}}
    (tmp_path / SOURCES["source_answers"]).write_text(json.dumps(results))
    block = results_block(tmp_path)
    assert "| lite1 (stored JPEG) | 0.410 | 0.400 | 0.120 | 0.050 | 0.021 |" in block
    assert "re-saved at quality 50" in block and "about 75" in block and "1,183 posters" in block


def test_a_timing_names_the_processor_that_took_it(tmp_path):
    from postergenre.modelfolder.provenance import machine

    here = machine()
    assert here["cpu"] and here["cpus"] >= 1
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    pipeline = {"when": "2026-11-27T10:00:00", "cpus": 2, "cpu": "AMD EPYC", "commit": "abc1234", "install_s": 30.0,
                "total_s": 240.0, "stages": {"04_train_custom_cnn": {"wall_s": 50.0, "peak_rss_mb": 1100}}}
    (tmp_path / SOURCES["pipeline"]).write_text(json.dumps(pipeline))
    assert "**4.0 minutes** on 2 cores (AMD EPYC) on 2026-11-27" in results_block(tmp_path)
    del pipeline["cpu"]  # the runs recorded before the processor was
    (tmp_path / SOURCES["pipeline"]).write_text(json.dumps(pipeline))
    assert "**4.0 minutes** on 2 cores on 2026-11-27" in results_block(tmp_path)


def _project_with_results(tmp_path, manifest: dict):
    """A copy of the repository's results files and README with `manifest` as the shipped default's."""
    for relative in SOURCES.values():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        if relative != SOURCES["default"]:
            (tmp_path / relative).write_bytes((REPO_ROOT / relative).read_bytes())
    (tmp_path / SOURCES["default"]).write_text(json.dumps(manifest))
    (tmp_path / "README.md").write_bytes((REPO_ROOT / "README.md").read_bytes())
    write_report(tmp_path)
    return {path.name: path.read_text() for path in [tmp_path / "README.md",
                                                      *(tmp_path / "docs" / "results").glob("*.md")]}


def test_every_page_states_the_shipped_defaults_figures_from_its_manifest(tmp_path):
    from postergenre.app.report import _ci, shipped_figure
    manifest = json.loads((REPO_ROOT / SOURCES["default"]).read_text())
    real = _ci(shipped_figure(manifest, "greatest_films", "macro_ap"))
    assert real in (REPO_ROOT / "README.md").read_text()
    for row in ("default", "default (adapted: gated)"):
        manifest["outside_metrics"]["greatest_films"][row]["macro_ap"] = [0.777, 0.766, 0.788]
    manifest["test_metrics"]["default"]["macro_ap"] = [0.555, 0.544, 0.566]
    pages = _project_with_results(tmp_path, manifest)
    rare_measured_on_it = json.loads((REPO_ROOT / SOURCES["rare_genres"]).read_text())["when"] >= manifest["created"]
    for name in ("README.md", "index.md", "words.md", *(["rare-genres.md"] if rare_measured_on_it else [])):
        assert "0.777 [0.766, 0.788]" in pages[name], f"{name} states greatest_films' figure from the manifest"
    assert "0.555 [0.544, 0.566]" in pages["words.md"], "the fused test figure of the words page is the manifest's"
    rebuilt = next(row["rebuilt"] for row in json.loads((REPO_ROOT / SOURCES["rebuild"]).read_text())["check"]["rows"]
                   if row["set"] == "greatest_films" and row["figure"] == "macro_ap")
    assert f"| greatest_films: macro_ap | {rebuilt:.3f} | 0.777 | [0.766, 0.788] | **no** |" in pages["index.md"], \
        "the rebuild is checked against the default shipped now"
    stale = [name for name, text in pages.items() if real in text]
    assert not stale, f"{stale} still state the figure the manifest no longer holds"


def test_a_words_page_measured_on_another_default_is_refused(tmp_path):
    manifest = json.loads((REPO_ROOT / SOURCES["default"]).read_text())
    manifest["created"] = "2030-01-01T00:00:00+0000"
    with pytest.raises(ValueError, match="text.json measured a default made .* not the one shipped now"):
        _project_with_results(tmp_path, manifest)


def test_the_rare_genres_page_names_an_earlier_default_and_keeps_the_figures_measured_on_it():
    from postergenre.app.report import _ci, rare_genres_section
    results = json.loads((REPO_ROOT / SOURCES["rare_genres"]).read_text())
    old = next(iter(results["models"]))
    manifest = json.loads((REPO_ROOT / SOURCES["default"]).read_text())
    manifest["outside_metrics"]["greatest_films"]["default"]["macro_ap"] = [0.777, 0.766, 0.788]
    measured = _ci(results["sets"]["greatest_films"]["headline"][old]["model"]["macro_ap"])
    manifest["created"] = "2000-01-01T00:00:00+0000"  # the page measured this default
    page = "\n".join(rare_genres_section(results, SOURCES["rare_genres"], manifest))
    assert f"greatest_films (never trained on): {old} | " in page and "0.777 [0.766, 0.788]" in page
    manifest["created"] = "2999-01-01T00:00:00+0000"  # a default shipped after the page was measured
    page = "\n".join(rare_genres_section(results, SOURCES["rare_genres"], manifest))
    assert "0.777" not in page and measured in page, "the figures are the default's it measured"
    assert "greatest_films (never trained on): default shipped then | " in page and f": {old} |" not in page


def test_the_rare_genres_page_says_how_each_network_is_stored():
    """The rebuild is often compared as trained (float32) with the default as shipped (int8): the page says which."""
    from postergenre.app.report import rare_genres_section
    results = json.loads((REPO_ROOT / SOURCES["rare_genres"]).read_text())
    old, new = results["models"]
    manifest = json.loads((REPO_ROOT / SOURCES["default"]).read_text())
    results["network"] = {old: "int8", new: "float32"}
    heading = rare_genres_section(results, SOURCES["rare_genres"], manifest)[0]
    assert f" (int8) and the rebuild {new} (float32)**" in heading, heading
    del results["network"]  # measured before the networks were named
    assert "(int8)" not in rare_genres_section(results, SOURCES["rare_genres"], manifest)[0]


def test_the_rooms_table_says_what_true_corners_are_only_when_it_has_them():
    """`after -> true corners` (what a finder that is never wrong would add) is a row of the rooms' table, explained
    in its heading; the table of the default shipped before, measured without it, does not explain a row it lacks."""
    from postergenre.app.report import photos_rooms_section
    change = {"first": {"macro_ap": [0.43, 0.41, 0.45]}, "second": {"macro_ap": [0.44, 0.42, 0.46]},
              "difference": {"macro_ap": [0.0021, -0.0078, 0.0133], "top3_hit_rate": [-0.0067, -0.0217, 0.0067],
                             "micro_f1": [0.001, -0.01, 0.012]}}
    results = {"when": "2026-12-07T14:00:00", "cpus": 2, "model": "default", "posters": 600, "bootstrap": 1000,
               "settings": {"clutter": {}}, "sets": {"with its words: clutter, before -> after": change}}
    assert "true corners" not in "\n".join(photos_rooms_section(results, "photos_rooms.json"))
    results["sets"]["with its words: clutter, after -> true corners"] = change
    lines = "\n".join(photos_rooms_section(results, "photos_rooms.json"))
    assert "`true corners`: each photo straightened from the poster's true corners" in lines
    assert "| with its words: clutter, after -> true corners | +0.002 [-0.008, +0.013] |" in lines
