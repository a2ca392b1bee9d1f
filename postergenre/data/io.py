"""Small, atomic file I/O shared by every stage."""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import UserError, describe

if TYPE_CHECKING:  # pandas is imported where a table is read or written: a one-poster prediction needs none
    import pandas as pd


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file whole or not at all (a temporary file beside it, renamed over it).

    Only a regular file is ever replaced: a device, a folder or a symlink at `path` is refused, so that a rename
    never swaps, say, /dev/full for a plain file. A write that fails is one UserError naming the path."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        kind = "a symlink" if path.is_symlink() else "a folder" if path.is_dir() else "not a regular file"
        raise UserError(f"{path}: {kind}; refusing to write over it (give a file path)")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; artefacts are meant to be shared
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({describe(exc)})") from None
    finally:
        if tmp is not None and Path(tmp).exists():
            Path(tmp).unlink(missing_ok=True)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may read as the start of a formula


def spreadsheet_cell(value):
    """A text cell a spreadsheet would run as a formula, prefixed with a single quote (OWASP's advice for CSV
    injection); a text that starts with a quote gets one more, so that plain_cell gives it back as it was; anything
    else, numbers written as text included ("-3.5"), as it is."""
    if not isinstance(value, str) or not value.startswith((*FORMULA_STARTS, "'")):
        return value
    try:
        float(value)
        return value  # a negative number is not a formula
    except ValueError:
        return "'" + value


def plain_cell(value):
    """spreadsheet_cell undone: the text as it was before the quote."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith((*FORMULA_STARTS, "'")):
        return value[1:]
    return value


def spreadsheet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Every text cell through spreadsheet_cell: for a CSV a person opens (predictions, reports)."""
    import pandas as pd
    safe = df.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(spreadsheet_cell)
    return safe


def write_csv(df: pd.DataFrame, path: Path, for_people: bool = False) -> Path:
    """Atomically; for_people: a CSV a person opens in a spreadsheet, its formula-like text cells quoted."""
    atomic_write_bytes(Path(path), (spreadsheet_safe(df) if for_people else df).to_csv(index=False).encode("utf-8"))
    return Path(path)


def write_json(obj, path: Path) -> Path:
    atomic_write_bytes(Path(path), (json.dumps(obj, indent=2, default=str) + "\n").encode("utf-8"))
    return Path(path)


def read_json(path: Path):
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None


def read_csv(path: Path, required: list[str] | tuple[str, ...] = (), encoding: str = "utf-8",
             hint: str = "", encoding_errors: str = "strict") -> pd.DataFrame:
    """Read a CSV as strings, or stop with one line naming the file and the problem."""
    import pandas as pd
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found{hint}")
    try:
        df = pd.read_csv(path, encoding=encoding, dtype=str, keep_default_na=False, encoding_errors=encoding_errors)
    except UnicodeDecodeError:
        raise UserError(f"{path}: cannot decode as {encoding} ({undecodable(path, encoding)})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"{path}: not a readable CSV ({str(exc).strip()})") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing required column(s) {', '.join(missing)} "
                        f"(has {', '.join(df.columns)})")
    return df


def record_lines(path: Path, rows: int, encoding: str = "utf-8") -> list[int]:
    """The line of the file on which each of a CSV's `rows` data rows starts (a quoted title may hold line
    breaks, so row k is not always on line k + 2); rows k + 2 where the file cannot be read the same way."""
    try:
        with open(path, encoding=encoding, newline="") as f:
            reader, starts = csv.reader(f), []
            next(reader, None)  # the header
            previous = reader.line_num
            for record in reader:
                if record:  # pandas skips blank lines
                    starts.append(previous + 1)
                previous = reader.line_num
    except (csv.Error, UnicodeDecodeError, OSError):
        starts = []
    return starts if len(starts) == rows else list(range(2, rows + 2))


def undecodable(path: Path, encoding: str) -> str:
    """Where a file first fails to decode: 'invalid start byte at line 2, column 31 (byte 38 of the file)'."""
    data = Path(path).read_bytes()
    try:
        data.decode(encoding)
        return "it decodes"
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return f"{exc.reason} at line {line}, column {column} (byte {exc.start} of the file)"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def frame_hash(df: pd.DataFrame) -> str:
    """A short, stable hash of a table's content (for cache keys and manifests)."""
    return hashlib.sha256(df.to_csv(index=False).encode("utf-8")).hexdigest()[:16]


@contextlib.contextmanager
def native_info_silenced():
    """Drop the runtime's native `INFO:` lines ("Created TensorFlow Lite XNNPACK delegate"), which C++ writes
    straight to file descriptor 2 when tensors are first allocated; anything else it writes is passed on."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                    if not line.startswith("INFO: ")]
            if kept:
                sys.stderr.write("".join(kept))
