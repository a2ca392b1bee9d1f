"""Stages 1-3 and the words: `get-data`, `clean`, `encode`, `read-text`."""
from __future__ import annotations

import sys
from pathlib import Path

from ..config import CleanConfig, DownloadConfig, SplitConfig, UserError, VocabularyRules
from ..text.ocr import OcrSettings
from .common import add_train_only_option


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for value in values or []:
        if "=" not in value:
            raise UserError(f"{flag} {value!r}: expected FROM=TO")
        key, target = value.split("=", 1)
        out[key.strip()] = target.strip()
    return out


def cmd_get_data(args, paths):
    from ..data.get_data import get_data
    config = DownloadConfig(workers=args.workers, timeout=args.timeout, retries=args.retries,
                            rate_limit=args.rate_limit)
    get_data(args.source, paths, images=args.images, download=config, limit=args.limit,
             progress=not args.no_progress, train_only=args.train_only)


def cmd_clean(args, paths):
    from ..data.clean import clean
    clean(paths, CleanConfig(min_width=args.min_width, min_height=args.min_height), progress=not args.no_progress)


def cmd_encode(args, paths):
    from ..data.encode import encode
    defaults = VocabularyRules()
    rules = VocabularyRules(
        drop=args.drop if args.drop is not None else defaults.drop,
        merge={**defaults.merge, **_pairs(args.merge, "--merge")},
        synonyms={**defaults.synonyms, **_pairs(args.synonym, "--synonym")},
        min_count=args.min_count)
    encode(paths, rules, SplitConfig(val=args.val, test=args.test, seed=args.seed))


def cmd_read_text(args, paths):
    from ..data.encode import load_splits
    from ..text.ocr import Reader
    frames, _ = load_splits(paths)
    reader = Reader(OcrSettings(side=args.side), paths.cache / "text")
    for split, frame in frames.items():
        texts = reader.read(frame.poster_path, progress=not args.no_progress, desc=f"read text ({split})")
        failed = [t.error for t in texts if t.error]
        with_words = sum(bool(t.text.strip()) for t in texts)
        words = sum(len(t.text.split()) for t in texts) / max(1, len(texts))
        print(f"{split}: {len(texts)} posters, {with_words} with words, {words:.1f} words a poster -> "
              f"{reader.cache.path}")
        for error in failed[:5]:
            print(f"  could not read: {error}", file=sys.stderr)


def add(stages) -> None:
    p = stages.add_parser("get-data", help="stage 1: read a source into data/raw/movies.csv (downloads posters)",
                          description="Read the Kaggle MovieGenre.csv (downloading posters), a poster folder "
                                      "(labels.csv + images/) or a one-hot CSV into data/raw/movies.csv.")
    p.add_argument("--source", type=Path, nargs="+", required=True,
                   help="MovieGenre.csv, a poster folder or a one-hot CSV; several are merged (an id once: the first "
                        "source that has it wins, and the others' rows for it are reported)")
    add_train_only_option(p)
    p.add_argument("--images", type=Path, default=None, help="image folder, when not images/ beside the CSV")
    p.add_argument("--workers", type=int, default=DownloadConfig.workers, help="concurrent downloads")
    p.add_argument("--timeout", type=float, default=DownloadConfig.timeout, help="seconds per request")
    p.add_argument("--retries", type=int, default=DownloadConfig.retries, help="retries on transient errors")
    p.add_argument("--rate-limit", type=float, default=None, help="at most this many requests per second")
    p.add_argument("--limit", type=int, default=None, help="only the first N movies (for a quick try)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_get_data)

    p = stages.add_parser("clean", help="stage 2: drop unusable rows and posters, with a report",
                          description="Fully decode every poster; drop missing, duplicate, corrupt, tiny and "
                                      "byte-identical posters into data/interim/clean_report.csv.")
    p.add_argument("--min-width", type=int, default=CleanConfig.min_width, help="narrower posters are dropped (pixels)")
    p.add_argument("--min-height", type=int, default=CleanConfig.min_height, help="lower posters are dropped (pixels)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_clean)

    p = stages.add_parser("encode", help="stage 3: genre vocabulary, multi-hot encoding, stratified split",
                          description="Build the genre vocabulary, multi-hot encode and split train/val/test "
                                      "with iterative stratification.")
    p.add_argument("--drop", nargs="*", default=None, help='genres to drop (default: "TV Movie" "Foreign")')
    p.add_argument("--merge", nargs="*", default=None,
                   help="FROM=TO genre merges (default Musical=Music News=Documentary)")
    p.add_argument("--synonym", nargs="*", default=None, help='FROM=TO names ("Science Fiction=Sci-Fi")')
    p.add_argument("--min-count", type=int, default=VocabularyRules.min_count,
                   help="genres with fewer posters are merged into Other")
    p.add_argument("--val", type=float, default=SplitConfig.val, help="share of the posters for validation")
    p.add_argument("--test", type=float, default=SplitConfig.test, help="share of the posters for the test split")
    p.add_argument("--seed", type=int, default=SplitConfig.seed, help="seed of the split")
    p.set_defaults(func=cmd_encode)

    p = stages.add_parser("read-text", help="stage 5b: read the words on every poster of the splits (cached)",
                          description="Read the words printed on every poster of train/val/test with RapidOCR, "
                                      "cached in data/cache/text/ (a killed run goes on where it stopped).")
    p.add_argument("--side", type=int, default=OcrSettings.side, help="the poster's long side when read (pixels)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_read_text)
