"""The stage runner (app/stages.py): a stage is skipped while its key and output stand, re-run when either
changes, resumed after a kill; a file's fingerprint ignores what differs between two saves of the same weights."""
import json
import zipfile
from pathlib import Path

import pytest

from postergenre.app.stages import Stage, StageLog, content_hash, files_fingerprint, run_stages


class Chain:
    """Three stages that hand files on: each writes its section and its input's text into its own file."""

    def __init__(self, folder: Path, sections: dict):
        self.folder, self.sections, self.ran, self.fail_in = folder, sections, [], None

    def file(self, name):
        return self.folder / f"{name}.txt"

    def stages(self):
        names = list(self.sections)

        def run(i):
            name = names[i]
            if self.fail_in == name:
                raise KeyboardInterrupt  # killed in the middle of it
            self.ran.append(name)
            before = self.file(names[i - 1]).read_text() if i else ""
            self.file(name).write_text(before + json.dumps(self.sections[name]))
            return f"{name} wrote"

        return [Stage(name, self.sections[name],
                      (lambda i=i: [files_fingerprint([self.file(names[i - 1])])] if i else []),
                      lambda i=i: run(i), lambda n=name: files_fingerprint([self.file(n)]))
                for i, name in enumerate(names)]


def test_a_second_run_finds_every_stage_current_and_does_nothing(tmp_path):
    chain = Chain(tmp_path, {"a": 1, "b": 2, "c": 3})
    log = StageLog(tmp_path / "stages.json")
    assert set(run_stages(chain.stages(), log, out=lambda _: None).values()) == {"ran"}
    chain.ran.clear()
    lines = []
    assert set(run_stages(chain.stages(), StageLog(tmp_path / "stages.json"), out=lines.append).values()) == {"current"}
    assert chain.ran == []
    assert all("current, skipped" in line for line in lines)


def test_a_changed_value_reruns_from_its_stage_on_and_not_before(tmp_path):
    chain = Chain(tmp_path, {"a": 1, "b": 2, "c": 3})
    run_stages(chain.stages(), StageLog(tmp_path / "stages.json"), out=lambda _: None)
    chain.ran.clear()
    chain.sections["b"] = 20
    done = run_stages(chain.stages(), StageLog(tmp_path / "stages.json"), out=lambda _: None)
    assert done == {"a": "current", "b": "ran", "c": "ran"}
    assert chain.ran == ["b", "c"]


def test_an_output_changed_by_hand_reruns_its_stage(tmp_path):
    chain = Chain(tmp_path, {"a": 1, "b": 2})
    run_stages(chain.stages(), StageLog(tmp_path / "stages.json"), out=lambda _: None)
    chain.file("b").write_text("overwritten by another command")
    chain.ran.clear()
    assert run_stages(chain.stages(), StageLog(tmp_path / "stages.json"), out=lambda _: None)["b"] == "ran"
    assert chain.ran == ["b"]


def test_a_killed_stage_resumes_and_no_earlier_stage_runs_again(tmp_path):
    chain = Chain(tmp_path, {"a": 1, "b": 2, "c": 3})
    chain.fail_in = "b"
    with pytest.raises(KeyboardInterrupt):
        run_stages(chain.stages(), StageLog(tmp_path / "stages.json"), out=lambda _: None)
    assert StageLog(tmp_path / "stages.json").get("b")["status"] == "running"
    chain.fail_in, chain.ran = None, []
    lines = []
    done = run_stages(chain.stages(), StageLog(tmp_path / "stages.json"), out=lines.append)
    assert done == {"a": "current", "b": "ran", "c": "ran"}
    assert any(line.endswith("b: resumed") for line in lines)


def test_a_keras_file_saved_again_with_the_same_weights_keeps_its_fingerprint(tmp_path):
    """Keras writes its save date into a .keras file: two runs that learned the same weights must not differ."""
    def keras_file(name, weights, date):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("metadata.json", f'{{"date_saved": "{date}"}}')
            archive.writestr("model.weights.h5", weights)
        return path

    first = keras_file("a.keras", b"weights", "2026-12-02@06:27:06")
    again = keras_file("b.keras", b"weights", "2026-12-02@07:19:14")
    other = keras_file("c.keras", b"other weights", "2026-12-02@06:27:06")
    assert content_hash(first) == content_hash(again)
    assert content_hash(first) != content_hash(other)
    assert content_hash(tmp_path / "none.keras") == "missing"
