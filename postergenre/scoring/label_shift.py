"""Label-shift adaptation: a new poster collection has its own genre mix.

A calibrated probability p assumes the training share pi of its genre. If a collection's share
is q instead, Bayes' rule per genre gives the probability for that collection:
    p' = (q/pi) p / ((q/pi) p + ((1-q)/(1-pi)) (1-p)).
The mix q is given by the user (--prior FILE) or estimated from the model's own calibrated
probabilities on the collection's unlabelled posters. Estimators (compared in notebook 06):
  cc         probabilistic classify-and-count: the mean calibrated probability;
  em         maximum likelihood by EM (Saerens et al. 2002): re-weight, average, repeat;
  em_shrunk  EM with a Beta prior centred on the training share (MAP-EM), so a genre's estimate
             moves away from the training share only as far as the evidence of many posters carries it;
  bbse       black-box shift estimation with soft confusion rates measured on the validation split:
             q = (mean p - E[p | negative]) / (E[p | positive] - E[p | negative]);
  gated      cc's estimate, only for the genres whose shift is clear: a genre's mean calibrated probability
             must lie GATE_Z standard errors or more from its training share (the error of both means: the
             collection's, and that of the validation split the calibration was fitted on), and its move is shrunk
             toward the training share by the strength of that evidence (1 - (GATE_Z / z)^2, James-Stein's positive
             part); the other genres keep their training share. (EM's estimate behind the same gate ran away on
             the collections measured: notebook 06.)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import DEFAULT_PRIOR_ESTIMATOR as DEFAULT_ESTIMATOR
from ..config import MIN_POSTERS_TO_ADAPT as MIN_POSTERS  # smaller collections keep the training mix
from ..config import PRIOR_ESTIMATORS as ESTIMATORS
from ..config import UserError

if TYPE_CHECKING:  # imported where a table is made: predicting needs none
    import pandas as pd

SHRINK_STRENGTH = 500.0   # em_shrunk: the training share counts as this many pseudo-posters
GATE_Z = 3.0              # gated: a shift this many standard errors away (about a 5% chance over 23 genres, Bonferroni)
BOUNDS = (1e-3, 1 - 1e-3)


def reweight(p, train_prior, new_prior) -> np.ndarray:
    """Bayes' rule per genre: probabilities under the training mix -> under the new mix."""
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    pi = np.clip(np.asarray(train_prior, dtype=float), *BOUNDS)
    q = np.clip(np.asarray(new_prior, dtype=float), *BOUNDS)
    positive, negative = p * (q / pi), (1 - p) * ((1 - q) / (1 - pi))
    return positive / (positive + negative)


def _em(p, train_prior, strength: float = 0.0, iterations: int = 200, tol: float = 1e-7) -> np.ndarray:
    pi = np.clip(np.asarray(train_prior, dtype=float), *BOUNDS)
    q = pi.copy()
    n = len(p)
    for _ in range(iterations):
        expected = reweight(p, pi, q).sum(axis=0)
        new = np.clip((expected + strength * pi) / (n + strength), *BOUNDS)
        if np.abs(new - q).max() < tol:
            return new
        q = new
    return q


def shift_evidence(p, train_prior, z: float = GATE_Z, reference_posters: int | None = None) -> dict:
    """Per genre, how clearly a collection's genre mix moved from the training mix: the mean calibrated
    probability with the interval the gate uses (z standard errors either side: a genre is adapted when its training
    share lies outside), its distance from the training share in standard errors, and the share of the move the
    gated estimator keeps (0: the genre is not adapted).
    reference_posters: the validation split's size; the calibration that makes the mean probability comparable to
    the training share was fitted there, so its sampling error counts too (as if the spread were the same)."""
    p = np.asarray(p, dtype=float)
    pi = np.asarray(train_prior, dtype=float)
    mean = p.mean(axis=0)
    spread = p.std(axis=0, ddof=1) if len(p) > 1 else np.full(p.shape[1], np.inf)
    error = spread * np.sqrt(1 / len(p) + (1 / reference_posters if reference_posters else 0))
    distance = (mean - pi) / np.maximum(error, 1e-9)
    with np.errstate(divide="ignore"):
        kept = np.clip(1 - (z / np.abs(distance)) ** 2, 0, 1)
    return {"mean": mean, "low": mean - z * error, "high": mean + z * error, "z": distance, "kept": kept}


def gated_prior(p, train_prior, z: float = GATE_Z, reference_posters: int | None = None) -> np.ndarray:
    """cc's mix where the evidence says the genre's share moved, shrunk by that evidence; the training share
    elsewhere."""
    pi = np.clip(np.asarray(train_prior, dtype=float), *BOUNDS)
    evidence = shift_evidence(p, train_prior, z, reference_posters)
    return np.clip(pi + evidence["kept"] * (evidence["mean"] - pi), *BOUNDS)


def estimate_prior(p, train_prior, method: str = DEFAULT_ESTIMATOR, confusion: dict | None = None,
                   strength: float = SHRINK_STRENGTH, reference_posters: int | None = None) -> np.ndarray:
    """The collection's share of each genre, from calibrated probabilities p (posters x genres).
    reference_posters: the validation split's size (gated)."""
    p = np.asarray(p, dtype=float)
    if method == "gated":
        return gated_prior(p, train_prior, reference_posters=reference_posters)
    if method == "cc":
        return np.clip(p.mean(axis=0), *BOUNDS)
    if method == "em":
        return _em(p, train_prior)
    if method == "em_shrunk":
        return _em(p, train_prior, strength)
    if method == "bbse":
        if not confusion:
            raise UserError("bbse needs the model's validation confusion rates (retrain to record them)")
        positive, negative = np.asarray(confusion["mean_p_positive"]), np.asarray(confusion["mean_p_negative"])
        spread = np.where(positive - negative > 1e-3, positive - negative, np.nan)
        q = (p.mean(axis=0) - negative) / spread
        return np.clip(np.where(np.isnan(q), train_prior, q), *BOUNDS)
    raise UserError(f"unknown prior estimator {method!r}; choose from {', '.join(ESTIMATORS)}")


def confusion_rates(y, p) -> dict:
    """Soft confusion rates on labelled data (validation): what bbse needs."""
    y, p = np.asarray(y, dtype=bool), np.asarray(p, dtype=float)
    with np.errstate(invalid="ignore"):
        positive = np.where(y.any(axis=0), (p * y).sum(axis=0) / y.sum(axis=0), np.nan)
        negative = np.where((~y).any(axis=0), (p * ~y).sum(axis=0) / (~y).sum(axis=0), np.nan)
    return {"mean_p_positive": np.round(positive, 6).tolist(), "mean_p_negative": np.round(negative, 6).tolist()}


def read_prior(path: str | Path, genres: list[str]) -> np.ndarray:
    """A user's genre mix: a CSV of genre,share rows, one for every genre of the model, shares in 0..1."""
    import pandas as pd
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the genre mix ({type(exc).__name__})") from None
    if not {"genre", "share"} <= set(table.columns):
        raise UserError(f"{path}: expected columns genre,share; found {', '.join(map(str, table.columns))}")
    names = table["genre"].astype(str).str.strip().str.lower()
    repeated = names[names.duplicated(keep=False)]
    if len(repeated):
        rows = ", ".join(str(i + 2) for i in repeated.index)
        raise UserError(f"{path}: genre {table['genre'][repeated.index[0]]!r} is listed more than once (rows {rows})")
    shares = pd.to_numeric(table["share"], errors="coerce")
    for row, (genre, share) in enumerate(zip(table["genre"], shares), start=2):
        if not 0 <= share <= 1:
            raise UserError(f"{path}, row {row}: share of {genre!r} must be a number in 0..1")
    lookup = {str(g).strip().lower(): float(s) for g, s in zip(table["genre"], shares)}
    unknown = sorted(set(lookup) - {g.lower() for g in genres})
    if unknown:
        raise UserError(f"{path}: genres the model does not know: {', '.join(unknown)}")
    missing = [g for g in genres if g.lower() not in lookup]
    if missing:
        raise UserError(f"{path}: no share for {', '.join(missing)} (list every genre of the model)")
    return np.array([lookup[g.lower()] for g in genres])


def adapt(p, train_prior, prior=None, method: str = DEFAULT_ESTIMATOR, confusion: dict | None = None,
          min_posters: int = MIN_POSTERS,
          reference_posters: int | None = None) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(adapted probabilities, the mix used, where it came from in a word or two, a one-line account of that)."""
    p = np.asarray(p, dtype=float)
    if prior is not None:
        return reweight(p, train_prior, prior), np.asarray(prior, dtype=float), "given mix", \
            "genre mix given by the user"
    if len(p) < min_posters:
        return p, np.asarray(train_prior, dtype=float), "training mix", \
            f"only {len(p)} posters (fewer than {min_posters}): too few to estimate their genre mix; " \
            "kept the training mix"
    estimated = estimate_prior(p, train_prior, method, confusion, reference_posters=reference_posters)
    return reweight(p, train_prior, estimated), estimated, method, \
        f"genre mix estimated from {len(p)} posters ({method})"


def mix_table(genres, train_prior, used_prior, true_prior=None, evidence: dict | None = None,
              adapted=None) -> pd.DataFrame:
    """The training mix beside the collection's (estimated or given), per genre, most frequent first; with the
    evidence of a shift, the mean calibrated probability with the gate's interval (GATE_Z standard errors) and
    whether the genre was adapted (`adapted`, one bool a genre)."""
    import pandas as pd
    table = pd.DataFrame({"genre": genres, "training mix": np.round(train_prior, 3),
                          "collection mix": np.round(used_prior, 3)})
    if evidence is not None:
        table[f"mean p [±{GATE_Z:g} s.e.]"] = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in
                                          zip(evidence["mean"], evidence["low"], evidence["high"])]
        table["adapted"] = np.where(adapted, "yes", "no")
    if true_prior is not None:
        table["true mix"] = np.round(true_prior, 3)
    return table.sort_values("collection mix", ascending=False).reset_index(drop=True)


@dataclass
class Adaptation:
    """A model's calibrated probabilities and thresholds moved to a collection's genre mix, and how."""
    probabilities: np.ndarray
    thresholds: np.ndarray
    genres: list[str]
    training_mix: np.ndarray
    mix: np.ndarray
    source: str  # given mix | training mix | the estimator's name
    note: str    # one line saying how the mix was found
    evidence: dict | None = None  # shift_evidence() where the mix was estimated

    def to_json(self) -> dict:
        out = {"genres": list(self.genres), "training_mix": np.asarray(self.training_mix).tolist(),
               "mix": np.asarray(self.mix).round(4).tolist(), "note": self.note, "source": self.source}
        if self.evidence is not None:
            out["evidence"] = {k: np.asarray(v, dtype=float).round(4).tolist() for k, v in self.evidence.items()}
        return out

    @property
    def adapted(self) -> np.ndarray | None:
        """Per genre, whether its share was moved: the gated estimator's own decision; every genre for the others."""
        if self.evidence is None:
            return None
        return self.evidence["kept"] > 0 if self.source == "gated" else np.ones(len(self.genres), dtype=bool)

    def mix_table(self, true_mix=None) -> pd.DataFrame:
        return mix_table(self.genres, self.training_mix, self.mix, true_mix, self.evidence, self.adapted)


def adapt_to_collection(probabilities, genres: list[str], train_prior, thresholds, prior: str | Path | None = None,
                        estimator: str = DEFAULT_ESTIMATOR, confusion: dict | None = None,
                        reference_posters: int | None = None) -> Adaptation:
    """Calibrated probabilities and the tuned thresholds moved to a collection's genre mix: the mix in the
    genre,share CSV `prior`, or estimated from the probabilities (MIN_POSTERS of them at least).
    reference_posters: the size of the validation split the calibration was fitted on (gated)."""
    train_prior = np.asarray(train_prior, dtype=float)
    given = read_prior(prior, genres) if prior is not None else None
    adapted, mix, source, note = adapt(probabilities, train_prior, given, estimator, confusion,
                                       reference_posters=reference_posters)
    evidence = shift_evidence(probabilities, train_prior, reference_posters=reference_posters) \
        if source == estimator else None
    adaptation = Adaptation(adapted, np.asarray(thresholds, dtype=float), list(genres),
                            train_prior, mix, source, note, evidence)
    if source == "gated":
        adaptation.note += f": {int(adaptation.adapted.sum())} of {len(genres)} genres moved clearly and were adapted"
    return adaptation
