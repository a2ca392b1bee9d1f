"""A genre head on a poster's words, and its late fusion with the image network.

TF-IDF of word (1-2) and character (2-4, within words) n-grams, one logistic regression per genre, fitted with
scikit-learn. A model folder keeps the vocabulary, idf and weights (text_head.json, text_head.npz), and the head
is applied here in numpy: importing scikit-learn's text module alone takes 2.2 s, more than a whole one-poster
prediction may (tests/text/test_text.py holds the two transforms equal).

Fusion adds the text head's evidence to the image's logit, genre by genre: logit(p_fused) = logit(p_image) +
weight * (z_text(words) - z_text(no words)). A poster with no words keeps its image probability exactly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import UserError
from ..data.io import atomic_write_bytes, read_json, write_json
from ..scoring.calibration import logit, sigmoid

HEAD_JSON = "text_head.json"
HEAD_ARRAYS = "text_head.npz"
WORD_PATTERN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern
WHITESPACE = re.compile(r"\s\s+")
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 4)
ANALYZERS = ("word", "char_wb")
C_GRID = (0.3, 1.0, 3.0, 10.0)
WEIGHT_GRID = tuple(np.round(np.arange(0.0, 2.01, 0.1), 2))


def word_grams(text: str) -> list[str]:
    tokens = WORD_PATTERN.findall(text.lower())
    grams = list(tokens)
    for n in range(2, WORD_NGRAMS[1] + 1):
        grams += [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return grams


def char_grams(text: str) -> list[str]:
    """Character n-grams inside each word padded with a space, as scikit-learn's char_wb analyzer makes them."""
    grams = []
    for word in WHITESPACE.sub(" ", text.lower()).split():
        word = f" {word} "
        for n in range(CHAR_NGRAMS[0], CHAR_NGRAMS[1] + 1):
            offset = 0
            grams.append(word[offset:offset + n])
            while offset + n < len(word):
                offset += 1
                grams.append(word[offset:offset + n])
            if offset == 0:  # a word shorter than n is counted once
                break
    return grams


GRAMS = {"word": word_grams, "char_wb": char_grams}


def tfidf_row(text: str, analyzer: str, vocabulary: dict, idf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(columns, values) of one text's l2-normalised sublinear TF-IDF vector."""
    counts: dict[int, int] = {}
    for gram in GRAMS[analyzer](text):
        column = vocabulary.get(gram)
        if column is not None:
            counts[column] = counts.get(column, 0) + 1
    if not counts:
        return np.zeros(0, int), np.zeros(0)
    columns = np.fromiter(counts, int, len(counts))
    values = (1.0 + np.log(np.fromiter(counts.values(), float, len(counts)))) * idf[columns]
    return columns, values / np.linalg.norm(values)


@dataclass
class TextHead:
    genres: list[str]
    vocabularies: dict[str, dict[str, int]]  # analyzer -> n-gram -> column within that analyzer's block
    idf: dict[str, np.ndarray]
    coef: np.ndarray  # genres x (word columns + character columns)
    intercept: np.ndarray
    weight: float = 1.0  # the fusion weight, chosen on validation
    info: dict | None = None  # how it was made: C, OCR settings, validation figures

    def evidence(self, texts: list[str]) -> np.ndarray:
        """posters x genres: the text head's logit minus its logit for a poster with no words (0 there)."""
        out = np.zeros((len(texts), len(self.genres)))
        for i, text in enumerate(texts):
            offset = 0
            for analyzer in ANALYZERS:
                columns, values = tfidf_row(text or "", analyzer, self.vocabularies[analyzer], self.idf[analyzer])
                if len(columns):
                    out[i] += self.coef[:, offset + columns] @ values
                offset += len(self.vocabularies[analyzer])
        return out

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """The text head alone: its own sigmoid outputs."""
        return sigmoid(self.evidence(texts) + self.intercept)

    def fuse(self, image_probabilities: np.ndarray, texts: list[str], weight: float | None = None) -> np.ndarray:
        weight = self.weight if weight is None else weight
        return fuse(image_probabilities, self.evidence(texts), weight)

    def save(self, folder: Path) -> None:
        import io
        buffer = io.BytesIO()
        np.savez_compressed(buffer, coef=self.coef.astype(np.float32), intercept=self.intercept,
                            **{f"idf_{a}": self.idf[a] for a in ANALYZERS})
        atomic_write_bytes(Path(folder) / HEAD_ARRAYS, buffer.getvalue())
        write_json({"genres": self.genres, "weight": self.weight, "info": self.info or {},
                    "vocabularies": {a: sorted(v, key=v.get) for a, v in self.vocabularies.items()}},
                   Path(folder) / HEAD_JSON)


def has_text_head(folder: Path) -> bool:
    return (Path(folder) / HEAD_JSON).exists() and (Path(folder) / HEAD_ARRAYS).exists()


def load_text_head(folder: Path, genres: list[str]) -> TextHead:
    folder = Path(folder)
    data = read_json(folder / HEAD_JSON)
    try:
        with np.load(folder / HEAD_ARRAYS) as arrays:
            coef, intercept = arrays["coef"].astype(float), arrays["intercept"].astype(float)
            idf = {a: arrays[f"idf_{a}"].astype(float) for a in ANALYZERS}
        vocabularies = {a: {gram: i for i, gram in enumerate(data["vocabularies"][a])} for a in ANALYZERS}
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"{folder / HEAD_ARRAYS}: not a text head ({exc}); train it again with "
                        f"`postergenre train-text`") from None
    columns = sum(len(v) for v in vocabularies.values())
    if data.get("genres") != list(genres) or coef.shape != (len(genres), columns):
        raise UserError(f"{folder / HEAD_JSON}: a text head for other genres or n-grams than this model's "
                        f"({coef.shape[0]} genres, {coef.shape[1]} columns); train it again with "
                        f"`postergenre train-text`")
    return TextHead(list(genres), vocabularies, idf, coef, intercept, float(data.get("weight", 1.0)),
                    data.get("info"))


def fuse(image_probabilities: np.ndarray, evidence: np.ndarray, weight: float) -> np.ndarray:
    return sigmoid(logit(image_probabilities) + weight * evidence)


def fit_text_head(texts: list[str], labels: np.ndarray, genres: list[str], C: float = 1.0,
                  seed: int = 0) -> TextHead:
    """TF-IDF n-grams of the training posters' words and one logistic regression per genre (posters without
    words teach it nothing and are left out)."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    keep = np.array([bool(WORD_PATTERN.search(t or "")) for t in texts])
    if keep.sum() < 20:
        raise UserError(f"only {keep.sum()} training posters have readable words: too few for a text head")
    texts = [t for t, k in zip(texts, keep) if k]
    labels = np.asarray(labels)[keep]
    vectorizers = {"word": TfidfVectorizer(analyzer="word", ngram_range=WORD_NGRAMS, min_df=2, sublinear_tf=True),
                   "char_wb": TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, min_df=3,
                                              sublinear_tf=True)}
    features = hstack([vectorizers[a].fit_transform(texts) for a in ANALYZERS]).tocsr()
    coef = np.zeros((len(genres), features.shape[1]))
    intercept = np.zeros(len(genres))
    for j in range(len(genres)):
        y = labels[:, j]
        if 0 < y.sum() < len(y):
            model = LogisticRegression(C=C, solver="liblinear", random_state=seed).fit(features, y)
            coef[j], intercept[j] = model.coef_[0], model.intercept_[0]
        else:  # a genre no training poster (or every one) has: its prior, no evidence from words
            intercept[j] = np.log((y.sum() + 0.5) / (len(y) - y.sum() + 0.5))
    return TextHead(list(genres), {a: {g: int(i) for g, i in vectorizers[a].vocabulary_.items()} for a in ANALYZERS},
                    {a: vectorizers[a].idf_.copy() for a in ANALYZERS}, coef, intercept, info={"C": C})
