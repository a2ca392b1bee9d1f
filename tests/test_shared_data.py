"""The CI switch: where the real posters must be there (`.ci/run`), their absence fails the run, never skips."""
import pytest

from tests import conftest


def test_missing_shared_data_skips_here_and_fails_under_the_ci_switch(monkeypatch, tmp_path):
    monkeypatch.setattr(conftest, "SHARED_SAMPLE", tmp_path / "nowhere")
    monkeypatch.delenv(conftest.REQUIRE_SHARED, raising=False)
    with pytest.raises(pytest.skip.Exception, match="real posters not found"):
        conftest.require_shared()
    monkeypatch.setenv(conftest.REQUIRE_SHARED, "1")
    with pytest.raises(pytest.fail.Exception, match="POSTERGENRE_REQUIRE_SHARED is set"):
        conftest.require_shared()


def test_the_ci_script_sets_the_switch():
    script = (conftest.Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert f"export {conftest.REQUIRE_SHARED}=1" in script
