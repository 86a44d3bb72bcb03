"""Reading tables and writing outputs safely.

Outputs are written atomically (a temporary file in the same folder, then ``os.replace``) and never
replace an existing file unless ``force`` is set, so an interrupted or mistaken run loses nothing.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .exceptions import MixplanError, OutputExistsError, ValidationError

if TYPE_CHECKING:  # pandas costs ~0.25 s to import: only the functions that read or write tables load it
    import numpy as np
    import pandas as pd

TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
                 ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV, TSV, Parquet or JSON-lines table, chosen by the file's suffix."""
    import pandas as pd

    path = Path(path)
    fmt = TABLE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValidationError(
            f"{path}: unknown table format {path.suffix!r}; use one of "
            f"{', '.join(sorted(TABLE_FORMATS))}")
    if not path.is_file():
        raise ValidationError(f"{path}: no such file")
    try:
        # Run ids are text: "007" must not become 7 (and collide with "7").
        if fmt in ("csv", "tsv"):
            frame = pd.read_csv(path, sep="," if fmt == "csv" else "\t", dtype={"run_id": str})
            if not isinstance(frame.index, pd.RangeIndex):  # pandas' reading of data rows longer than the header
                raise ValidationError(f"{path}: the data rows have more fields than the header's {len(frame.columns)} "
                                      "column names; name every column in the first line (or remove the extra "
                                      "separators at the ends of the rows)")
            return frame
        if fmt == "parquet":
            return pd.read_parquet(path)
        with open(path, "rb") as fh:
            head = fh.read(4096).lstrip()
        # A .json file may hold one array of records instead of one record per line.
        return pd.read_json(path, lines=not head.startswith(b"["), dtype={"run_id": str})
    except (ValueError, OSError, pd.errors.ParserError, ImportError) as exc:
        # The parsers' own messages are precise (line numbers); keep them, add the file.
        raise ValidationError(f"{path}: cannot be read as {fmt}: {exc}".splitlines()[0]) from exc


def table_columns(path: str | os.PathLike[str]) -> list[str] | None:
    """A table's column names from its header alone (the first line of a CSV, TSV or JSON-lines file, a
    Parquet file's schema): a limit on the columns is checked before a large file is read. None when the
    header cannot be read this way (:func:`read_table` then says why, or reads it)."""
    import csv

    path = Path(path)
    fmt = TABLE_FORMATS.get(path.suffix.lower())
    try:
        if fmt in ("csv", "tsv"):
            with open(path, encoding="utf-8", newline="") as fh:
                return next(csv.reader(fh, delimiter="," if fmt == "csv" else "\t"), [])
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if fmt == "jsonl":
            with open(path, encoding="utf-8") as fh:
                first = json.loads(fh.readline())
            return list(first) if isinstance(first, dict) else None
    except Exception:  # noqa: BLE001 -- any trouble: the full read reports it properly
        return None
    return None


def read_toml(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """Parse a TOML file; a missing file or a syntax error is a ValidationError naming ``what``."""
    import tomllib

    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"{path}: no such {what}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{path}: not valid TOML: {exc}") from exc


def read_json(path: str | os.PathLike[str], hint: str, what: str = "") -> Any:
    """A JSON document; a missing file or invalid JSON is a one-line :class:`ValidationError` that names the
    file, says what was expected there (``hint``, e.g. "a FIT.json from 'mixplan cpt fit'") and, for invalid
    JSON, what the file should have been (``what``, e.g. "not a D-CPT fit")."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"{path}: no such file ({hint})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{path}: {what + ': ' if what else ''}not valid JSON ({exc})") from None


@contextmanager
def saved_artefact(path: str | os.PathLike[str], what: str, remedy: str) -> Iterator[None]:
    """Decode a file mixplan wrote earlier: any failure inside the block becomes one
    :class:`ValidationError` "PATH: not a mixplan WHAT (reason); REMEDY".

    A saved artefact (meta.json, FIT.json, .npz, model files) is only ever read back, so whatever its
    decoding trips over -- a missing key, a string where numbers belong, a binary file, a zip that is not
    one, a model string LightGBM rejects -- is damage to the file, not a bug to show as a traceback.
    MixplanErrors raised inside (already one line) pass through unchanged, and so do OSErrors: a file that
    cannot be opened, or an output that cannot be written inside the block, is not damage to this one (the
    CLI names the file the OSError is about).
    """
    try:
        yield
    except (MixplanError, OSError):
        raise
    except Exception as exc:  # noqa: BLE001 -- see the docstring: every decoding failure is damage
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        if isinstance(exc, KeyError):
            reason = f"missing {reason}"
        raise ValidationError(f"{path}: not a mixplan {what} ({reason}); {remedy}") from exc


def check_writable(paths: Iterable[str | os.PathLike[str]], force: bool) -> None:
    """Refuse, before anything is written, if any output exists and ``force`` is not set."""
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing and not force:
        raise OutputExistsError(
            f"{existing[0]} exists" + (f" (and {len(existing) - 1} more outputs)" if len(existing) > 1 else "")
            + "; choose another output path or pass --force to overwrite")


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; refuse to replace an existing file unless ``force``."""
    path = Path(path)
    check_writable([path], force)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str, force: bool = False) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), force=force)


def dumps_json(obj: Any) -> str:
    """JSON with sorted keys and a trailing newline: byte-identical for identical content. A NaN or
    infinite number is refused, naming where in the document it is (JSON has no such numbers, and a
    result that holds one came from inputs near the float limits or an undefined computation)."""
    try:
        return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=_json_default) + "\n"
    except ValueError:
        found = _nonfinite(obj, "")
        if found is None:
            raise
        raise ValidationError(f"the result is not finite at {found[0] or 'the top'} ({found[1]}): an input near the "
                              "float limits or an undefined step produced it; check the inputs' scale, or rerun "
                              "with --debug") from None


def _nonfinite(obj: Any, path: str) -> tuple[str, str] | None:
    """The first NaN or infinite number in a JSON-bound document, as (key path, value)."""
    import math

    import numpy as np

    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if isinstance(obj, (float, np.floating)) and not math.isfinite(float(obj)):
        return path, repr(float(obj))
    if isinstance(obj, dict):
        for key in sorted(obj, key=str):
            found = _nonfinite(obj[key], f"{path}.{key}" if path else str(key))
            if found:
                return found
    if isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            found = _nonfinite(item, f"{path}[{i}]")
            if found:
                return found
    return None


def write_json_atomic(path: str | os.PathLike[str], obj: Any, force: bool = False) -> None:
    write_text_atomic(path, dumps_json(obj), force=force)


def table_csv(frame: pd.DataFrame, sep: str = ",") -> str:
    """A table as CSV text (TSV with ``sep="\\t"``): 10 significant digits, "\\n" line ends (byte-stable outputs).

    The text is pandas' ``to_csv(index=False, float_format="%.10g")``; frames of plain float, integer,
    boolean and string columns are formatted here instead (10x faster: pandas formats every float
    through several Python-level calls, 1.7 s for a plan's 350,000 candidate weights)."""
    import csv

    columns = []
    for name in frame.columns if len(frame) else ():
        values = frame[name].to_numpy()
        kind = values.dtype.kind
        if kind == "f":
            columns.append(["" if v != v else "%.10g" % v for v in values.tolist()])
        elif kind in "iub":
            columns.append([str(v) for v in values.tolist()])
        elif kind == "O" and all(isinstance(v, str) for v in values):
            columns.append(values.tolist())
        else:  # dates, categories, nullable or mixed columns: pandas' own formatting
            break
    if not len(frame) or len(columns) < len(frame.columns):
        return frame.to_csv(index=False, sep=sep, float_format="%.10g", lineterminator="\n")
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep, lineterminator="\n")
    writer.writerow([str(c) for c in frame.columns])
    writer.writerows(zip(*columns))
    return out.getvalue()


#: What a table is written as, by the output file's suffix (a .json file is one array of records, which
#: :func:`read_table` reads back; .jsonl one record per line).
TABLE_WRITERS = TABLE_FORMATS | {".json": "json"}


def table_format_out(path: str | os.PathLike[str]) -> str:
    """The format a table written to ``path`` takes, by its suffix: an unknown suffix, or Parquet without
    pyarrow, is refused -- before the work, when a command calls this up front -- instead of CSV text
    landing in a file whose name promises something else."""
    suffix = Path(path).suffix.lower()
    fmt = TABLE_WRITERS.get(suffix)
    if fmt is None:
        raise ValidationError(f"{path}: cannot write a table as {suffix or 'a file without a suffix'!r}; name the "
                              f"file {', '.join(TABLE_WRITERS)}")
    if fmt == "parquet":
        import importlib.util

        if importlib.util.find_spec("pyarrow") is None:
            raise ValidationError(f"{path}: writing Parquet needs pyarrow (pip install pyarrow); or name the file .csv")
    return fmt


def check_table_writable(path: str | os.PathLike[str], force: bool) -> None:
    """:func:`check_writable` for one table output, whose suffix must name a format (:func:`table_format_out`)."""
    table_format_out(path)
    check_writable([path], force)


def table_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """``frame`` in ``fmt`` (a value of :data:`TABLE_WRITERS`), byte-stable for the same frame."""
    if fmt in ("csv", "tsv"):
        return table_csv(frame, sep="," if fmt == "csv" else "\t").encode("utf-8")
    if fmt == "parquet":
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        return buf.getvalue()
    import numpy as np

    # JSON has no infinity: pandas would write null, indistinguishable from a missing value.
    for name in frame.columns:
        values = frame[name].to_numpy()
        if values.dtype.kind == "f" and np.isinf(values).any():
            row = int(np.flatnonzero(np.isinf(values))[0]) + 1
            raise ValidationError(f"column {name!r}, row {row}: {values[row - 1]} cannot be written as JSON; write "
                                  "the table as .csv or .parquet")
    text = frame.to_json(orient="records", lines=fmt == "jsonl", double_precision=15)
    return (text if text.endswith("\n") or not text else text + "\n").encode("utf-8")


def write_table_atomic(path: str | os.PathLike[str], frame: pd.DataFrame, force: bool = False) -> None:
    """Write a table in the format its suffix names (:data:`TABLE_WRITERS`; CSV as :func:`table_csv`)."""
    write_bytes_atomic(path, table_bytes(frame, table_format_out(path)), force=force)


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour a saved model or plan depends on."""
    import platform

    import lightgbm
    import numpy as np
    import pandas as pd
    import sklearn

    return {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
            "lightgbm": lightgbm.__version__, "scikit-learn": sklearn.__version__}


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


#: Fixed zip member timestamp (the earliest a zip can hold) for byte-identical ``.npz`` files.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` (deflate zip of ``.npy`` members) whose bytes depend only on the arrays.

    ``np.savez_compressed`` stamps each member with the current time, so two saves a second apart differ.
    """
    import numpy as np

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3  # unix, whatever the writing platform
            zf.writestr(info, member.getvalue())
    return buf.getvalue()
