"""The words on the poster: reading them (cached, resumable), the text head, its fusion with the image."""
import json
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postergenre.config import UserError
from postergenre.text import ocr
from postergenre.text.head import fit_text_head, fuse, has_text_head, load_text_head, tfidf_row

from tests.conftest import real_posters

WORDS = ["christmas", "terror", "love", "disney", "war", "true", "story", "space", "killer", "family", "the", "of"]
GENRES = ["Family", "Horror", "Romance"]


def toy_corpus(n: int = 120, seed: int = 0):
    """Poster words that say the genre: 'christmas'/'disney' -> Family, 'terror'/'killer' -> Horror, 'love' ->
    Romance, with noise words."""
    rng = np.random.default_rng(seed)
    cue = {0: ["CHRISTMAS", "a Disney film"], 1: ["THE TERROR BEGINS", "killer"], 2: ["love story", "LOVE"]}
    texts, labels = [], np.zeros((n, 3))
    for i in range(n):
        j = i % 3
        labels[i, j] = 1
        words = [rng.choice(cue[j])] + list(rng.choice(WORDS, 2))
        texts.append(" ".join(words) if i % 10 else "")  # every tenth poster has no words
    return texts, labels


texts_strategy = st.lists(st.one_of(st.text(max_size=40), st.sampled_from(["SAAWARIYA", "DisNEp's MIGHTY JOE",
                                                                           "THE  TERROR\tBEGINS", "a", ""])),
                          min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(corpus=st.lists(st.text(alphabet="abcdeXYZ é'-!  ", max_size=30), min_size=3, max_size=15), probe=texts_strategy)
def test_tfidf_in_numpy_equals_scikit_learn(corpus, probe):
    from sklearn.feature_extraction.text import TfidfVectorizer
    for analyzer, ngrams in (("word", (1, 2)), ("char_wb", (2, 4))):
        vectorizer = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, sublinear_tf=True)
        try:
            vectorizer.fit(corpus + ["abc de", "xy zz"])
        except ValueError:  # an empty vocabulary: nothing to compare
            continue
        expected = vectorizer.transform(probe).toarray()
        for row, text in zip(expected, probe):
            ours = np.zeros(len(row))
            columns, values = tfidf_row(text, analyzer, vectorizer.vocabulary_, vectorizer.idf_)
            ours[columns] = values
            np.testing.assert_allclose(ours, row, atol=1e-12, err_msg=f"{analyzer} {text!r}")


def test_text_head_learns_the_cue_words_and_round_trips(tmp_path):
    texts, labels = toy_corpus()
    head = fit_text_head(texts, labels, GENRES, C=3.0)
    p = head.probabilities(["MERRY CHRISTMAS", "The terror", "a love story"])
    assert list(p.argmax(axis=1)) == [0, 1, 2]
    head.weight, head.info = 0.7, {"C": 3.0}
    head.save(tmp_path)
    assert has_text_head(tmp_path)
    loaded = load_text_head(tmp_path, GENRES)
    assert loaded.weight == 0.7
    np.testing.assert_allclose(loaded.evidence(texts[:20]), head.evidence(texts[:20]), atol=1e-5)
    with pytest.raises(UserError, match="other genres"):
        load_text_head(tmp_path, ["Family", "Horror"])


def test_a_poster_without_words_keeps_its_image_probability():
    texts, labels = toy_corpus()
    head = fit_text_head(texts, labels, GENRES)
    image = np.array([[0.2, 0.7, 0.1], [0.5, 0.5, 0.5]])
    np.testing.assert_allclose(head.fuse(image, ["", "!!"], weight=1.5), image, atol=1e-9)
    fused = head.fuse(image, ["CHRISTMAS", ""], weight=1.0)
    assert fused[0, 0] > image[0, 0] and np.allclose(fused[1], image[1])
    assert np.allclose(fuse(image, np.ones_like(image), 0.0), image)


def test_too_few_posters_with_words_is_one_clear_error():
    with pytest.raises(UserError, match="only 2 training posters have readable words"):
        fit_text_head(["love", "killer", "", "!"] + [""] * 40, np.eye(3)[np.arange(44) % 3], GENRES)


def test_a_missing_recogniser_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)
    with pytest.raises(UserError, match="rapidocr-onnxruntime.*--no-text"):
        ocr.new_engine(ocr.OcrSettings())


@pytest.mark.shared
def test_reads_the_title_of_a_real_poster(tmp_path):
    poster = next(p for p in real_posters(5) if p.stem == "tt0089885")  # Re-Animator
    text = ocr.Reader(threads=1).read([poster])[0]
    assert "RE-ANIMATOR" in text.text.upper() and not text.error
    assert all(0.5 <= score <= 1 for _, score in text.lines)


@pytest.mark.shared
def test_an_unreadable_poster_is_reported_and_the_others_read(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(real_posters(1)[0].read_bytes()[:300])
    texts = ocr.Reader(threads=2).read([broken, tmp_path / "missing.jpg", real_posters(2)[1]])
    assert "broken.jpg: cannot decode" in texts[0].error and not texts[0].lines
    assert "missing.jpg: file not found" in texts[1].error
    assert texts[2].text and not texts[2].error


@pytest.mark.shared
def test_the_cache_survives_a_kill_and_is_not_read_twice(tmp_path, monkeypatch):
    posters = real_posters(6)
    reader = ocr.Reader(threads=2, cache_dir=tmp_path)
    first = reader.read(posters[:4])
    cache_file = reader.cache.path
    with open(cache_file, "a") as f:
        f.write('{"sha256": "abc", "lines": [["HALF')  # a run killed mid-line
    calls = []
    real = ocr.read_poster
    monkeypatch.setattr(ocr, "read_poster", lambda engine, poster, s, *more: calls.append(poster) or real(engine, poster, s, *more))
    again = ocr.Reader(threads=2, cache_dir=tmp_path).read(posters)
    assert [t.text for t in again[:4]] == [t.text for t in first], "the cached words come back as read"
    assert sorted(map(str, calls)) == sorted(map(str, posters[4:])), "only the posters not cached are read"
    lines = cache_file.read_text().splitlines()
    assert len(lines) == 6 and all(json.loads(line)["sha256"] for line in lines), "the partial line was cut off"
    cache_file.write_text("not json\n")
    with pytest.raises(UserError, match="line 1: not a cache record"):
        ocr.Reader(cache_dir=tmp_path)


def test_words_read_from_a_crop_are_read_again_when_the_finder_crops_elsewhere(tmp_path, monkeypatch):
    """The words of a photo are read from the poster found in it, so they are cached under the crop's corners: the
    same crop is read once, and a finder that crops elsewhere (a new version of it) reads the words again instead of
    taking the old crop's."""
    poster = real_posters(1)[0]
    found = {"corners": np.float32([[10, 12], [150, 12], [150, 230], [10, 230]])}
    monkeypatch.setattr(ocr, "poster_corners", lambda image: found["corners"])
    calls = []
    monkeypatch.setattr(ocr, "read_poster", lambda engine, poster, settings, *more: calls.append(poster)
                        or ocr.PosterText([("CROP " + str(len(calls)), 0.9)]))
    monkeypatch.setattr(ocr, "new_engine", lambda settings: None)
    first = ocr.Reader(threads=1, cache_dir=tmp_path, find_poster=True).read([poster])[0].text
    assert ocr.Reader(threads=1, cache_dir=tmp_path, find_poster=True).read([poster])[0].text == first
    assert len(calls) == 1, "the same crop is read once"
    found["corners"] = found["corners"] + np.float32([0, 20])  # the finder now takes the top side lower
    assert ocr.Reader(threads=1, cache_dir=tmp_path, find_poster=True).read([poster])[0].text != first
    assert len(calls) == 2, "another crop is read again"
    found["corners"] = None  # taken whole: the poster file's own key, as without the finder
    reader = ocr.Reader(threads=1, cache_dir=tmp_path, find_poster=True)
    assert reader.key(poster) == ocr.Reader(threads=1, cache_dir=tmp_path).key(poster)


def test_settings_change_the_cache_key():
    assert ocr.OcrSettings().key != ocr.OcrSettings(side=402).key
    assert ocr.OcrSettings.from_json(ocr.OcrSettings(side=402).describe()) == ocr.OcrSettings(side=402)


def test_prediction_with_text_imports_neither_tensorflow_nor_scikit_learn():
    import subprocess
    code = ("import sys; import postergenre.text.head, postergenre.text.ocr, postergenre.inference.predictor; "
            "print(any(m.split('.')[0] in ('tensorflow', 'keras', 'sklearn') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False", "prediction with a text head imports neither TensorFlow nor scikit-learn"


@pytest.mark.slow
def test_a_text_head_joins_a_trained_model_everywhere_it_predicts(trained_project, tmp_path, monkeypatch):
    import shutil
    import subprocess

    from PIL import Image

    from postergenre.evaluation.evaluate import evaluate
    from postergenre.modelfolder.layout import read_manifest
    from postergenre.inference.predictor import load
    from postergenre.training.text_head import train_text_head

    from tests.conftest import clone_project
    paths = clone_project(trained_project, tmp_path)
    shutil.copytree(trained_project.models / "efficientnet_lite0", paths.models / "lite0")
    folder = train_text_head("lite0", paths, progress=False)
    text = read_manifest(folder)["text"]
    assert text["ocr"]["package"] == "rapidocr-onnxruntime" and text["ocr"]["version"] == ocr.package_version()
    assert set(text["validation"]) == {"image", "text", "fused"} and 0 <= text["weight"] <= 2

    head = load_text_head(folder, json.loads((folder / "genres.json").read_text())["genres"])
    head.weight = 1.0  # 300 posters may choose weight 0 (the image alone); the fusion path is what is tested here
    head.save(folder)
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (182, 268), (90, 40, 40)).save(blank)  # a poster with no words at all
    worded = real_posters(2)[1]
    fused, image = load(folder, text_cache=paths.cache / "text"), load(folder, text=False)
    assert fused.text_head is not None and image.text_head is None
    fused_raw, _ = fused.network_outputs([blank, worded])
    image_raw, _ = image.network_outputs([blank, worded])
    np.testing.assert_allclose(fused_raw[0], image_raw[0], atol=1e-5, err_msg="no words: the image alone")
    assert not np.allclose(fused_raw[1], image_raw[1], atol=1e-4), "words move the scores"
    table = fused.predict([blank, worded, tmp_path / "missing.jpg"]).table
    assert "no words read" in table.text_note[0] and "image alone" in table.text_note[0]
    assert table.words[1] and table.text_note[1] == "" and "file not found" in table.error[2]
    assert "words" not in image.predict([worded]).table
    reads = []
    original = ocr.Reader._read_one
    monkeypatch.setattr(ocr.Reader, "_read_one", lambda self, poster: reads.append(poster) or original(self, poster))
    uncached = load(folder, find_poster=False)  # no words' cache: every poster is read by the engine
    uncached.predict([blank, worded])
    assert sorted(map(str, reads)) == sorted(map(str, [blank, worded])), "each poster's words read once"
    from postergenre.data import photo
    searches = []
    monkeypatch.setattr(photo, "colour_corners", lambda rgb: searches.append(rgb.shape) or None)
    photo._searches.clear()
    load(folder, text_cache=tmp_path / "fresh cache").predict([blank, worded])
    assert len(searches) == 2, "each picture searched once for its poster: for the network, the words and their key"

    cli = [sys.executable, "-m", "postergenre.cli", "--root", str(paths.root), "predict", "--model", str(folder),
           "--json", str(worded)]
    with_words = json.loads(subprocess.run(cli, capture_output=True, text=True, check=True).stdout)[0]
    without = json.loads(subprocess.run(cli + ["--no-text"], capture_output=True, text=True, check=True).stdout)[0]
    assert with_words["words"] and "words" not in without

    fused_result = evaluate(folder, paths=paths, figures=False, progress=False, n_boot=20)
    image_result = evaluate(folder, paths=paths, figures=False, progress=False, n_boot=20, text=False)
    assert fused_result["text"] and not image_result["text"]
    assert (folder / "eval_test.json").exists() and (folder / "eval_test_image.json").exists()
