"""Where a pool's documents are, and how to read them (``mixplan scan``, issue 18).

A pool's ``[pools.NAME.source]`` table names its text. Three kinds:

``type = "files"``
    ``paths``: glob patterns (relative to the manifest's folder), read in sorted order; the format
    from the suffix (``.jsonl``/``.ndjson``/``.json`` lines, ``.jsonl.gz``, ``.jsonl.zst`` with the
    ``zstandard`` package, ``.parquet``, ``.txt`` -- one document per file, or per line with
    ``format = "lines"`` --, ``.arrow`` as written by ``datasets``) or ``format``; ``text_field``
    (default ``"text"``) names the text of a record.
``type = "datasets"``
    ``path``: a folder written by ``Dataset.save_to_disk`` (read with ``datasets.load_from_disk``), or
    ``builder`` (``parquet``, ``json``, ``text``, ``csv`` or ``arrow``) with local ``data_files``
    (globs), ``split`` (default ``"train"``), loaded with ``streaming=True``, one shard per file. Offline
    always: a builder that is not one of these (a Hub dataset) would need the network and is refused.
``type = "package"``
    ``reader = "module:function"``: a function (imported, never evaluated) returning the pool's
    documents, each a ``str``, UTF-8 ``bytes`` or a mapping with the text field (and scores).

A source is cut into *shards* (a file, a data file of a builder, a reader), the unit a scan engine
hands to a worker; :func:`read_shard` yields one :class:`Record` per document, in a fixed order, with
its location (``file:line``) and, for a document that cannot be read (a malformed JSON line, a
missing or non-text field, undecodable bytes), the reason instead of the text: such documents are
counted, not fatal. A source that cannot be opened at all (no files match, an unreadable archive) is
a :class:`~mixplan.exceptions.ValidationError` naming the pool and the file.
"""

from __future__ import annotations

import glob
import gzip
import importlib
import io
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ..exceptions import ValidationError

__all__ = ["Record", "Shard", "list_shards", "read_shard", "import_function", "expand_paths", "FILE_FORMATS", "LOCAL_BUILDERS"]

#: File formats by suffix (the longest matching suffix wins).
FILE_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".jsonl.gz": "jsonl.gz",
                ".json.gz": "jsonl.gz", ".jsonl.zst": "jsonl.zst", ".json.zst": "jsonl.zst", ".parquet": "parquet",
                ".pq": "parquet", ".txt": "txt", ".arrow": "arrow"}
#: ``datasets`` builders that read local files only.
LOCAL_BUILDERS = ("parquet", "json", "text", "csv", "arrow")
_BATCH = 1024  # rows per Arrow batch read


class Record(NamedTuple):
    """One document: its text (``None`` when it could not be read: ``error`` says why), its numeric
    fields by name (for scores), and where it is. (A named tuple: one is made per document.)"""

    text: str | None
    where: str
    fields: Mapping[str, Any] = {}
    error: str | None = None
    #: UTF-8 bytes of the text as stored, when the source gave bytes (counted as they are)
    raw: bytes | None = None


@dataclass(frozen=True)
class Shard:
    """A unit of reading: ``kind`` (a file format, ``disk``, ``builder`` or ``reader``), ``path`` (a file,
    a folder, or ``module:function``), the text field, the other fields to keep, and ``size`` (bytes on
    disk, 0 when unknown)."""

    pool: str
    kind: str
    path: str
    text_field: str = "text"
    fields: tuple[str, ...] = ()
    size: int = 0
    options: tuple[tuple[str, Any], ...] = ()
    #: (score name, built-in name or module:function) computed from each document's text
    scorers: tuple[tuple[str, str], ...] = ()
    #: the shard's name relative to the manifest's folder (what seeded draws hash)
    key: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "bytes": self.size}


def _format_of(path: str, given: str | None) -> str:
    if given:
        fmt = {"lines": "lines", "jsonl": "jsonl", "parquet": "parquet", "txt": "txt", "arrow": "arrow",
               "jsonl.gz": "jsonl.gz", "jsonl.zst": "jsonl.zst"}.get(given)
        if fmt is None:
            raise ValidationError(f"format {given!r} is not known; use one of jsonl, jsonl.gz, jsonl.zst, parquet, "
                                  "txt, lines, arrow")
        return fmt
    name = path.lower()
    for suffix in sorted(FILE_FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return FILE_FORMATS[suffix]
    raise ValidationError(f"{path}: unknown format (suffix); use one of {', '.join(sorted(FILE_FORMATS))} or set "
                          "format in the pool's source table")


def expand_paths(patterns: Any, root: Path, where: str, key: str = "paths") -> list[str]:
    """The files ``patterns`` (a glob or a list of globs, relative to ``root``) name, sorted, each once;
    a pattern that matches no file is an error naming ``where`` and ``key``."""
    patterns = [patterns] if isinstance(patterns, str) else patterns
    if not isinstance(patterns, list | tuple) or not patterns or not all(isinstance(p, str) for p in patterns):
        raise ValidationError(f"{where}, field {key!r}: a path or a list of paths (globs), e.g. [\"data/*.jsonl\"]")
    found: list[str] = []
    for pattern in patterns:
        # root_dir: the manifest's folder is a folder, not a pattern (a name like "run[1]" must not glob)
        hits = sorted(p if os.path.isabs(p) else os.path.join(root, p)
                      for p in glob.glob(pattern, root_dir=root, recursive=True))
        hits = [p for p in hits if os.path.isfile(p)]
        if not hits:
            raise ValidationError(f"{where}: no file matches {pattern!r} (relative to {root}); fix the path in the "
                                  "pool's source table")
        found += [h for h in hits if h not in found]
    return found


def list_shards(name: str, source: Mapping[str, Any], root: str | os.PathLike[str], *, fields: Sequence[str] = ()
                ) -> list[Shard]:
    """The shards of pool ``name``'s ``source`` (a manifest source table; paths relative to ``root``),
    in reading order. ``fields``: numeric fields to keep per document (scores)."""
    from dataclasses import replace

    table = source.get("scorers", {})
    if not isinstance(table, Mapping) or not all(isinstance(v, str) for v in table.values()):
        raise ValidationError(f"pool {name!r}, source, field 'scorers': a table of score name = \"prose\" or "
                              "\"module:function\"")
    scorers = tuple((str(k), str(v)) for k, v in table.items())
    # An absolute root, and each shard keyed by its path relative to it: the same files give the same
    # shards (and samples) however the manifest's path was typed.
    root = Path(os.path.abspath(root))
    shards = _shards(name, source, root, tuple(dict.fromkeys(str(f) for f in fields if f not in dict(scorers))))
    return [replace(s, scorers=scorers, key=s.path if s.kind == "reader" else Path(os.path.relpath(s.path, root)).as_posix())
            for s in shards]


def _shards(name: str, source: Mapping[str, Any], root: Path, keep: tuple[str, ...]) -> list[Shard]:
    where = f"pool {name!r}, source"
    kind = source.get("type")
    text_field = str(source.get("text_field", "text"))
    if kind == "files":
        given = source.get("format")
        return [Shard(name, _format_of(p, given), p, text_field, keep, os.path.getsize(p))
                for p in expand_paths(source["paths"], root, where)]
    if kind == "datasets":
        if "path" in source:
            folder = Path(source["path"])
            folder = folder if folder.is_absolute() else root / folder
            if not folder.is_dir():
                raise ValidationError(f"{where}: {folder} is not a folder written by Dataset.save_to_disk")
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            return [Shard(name, "disk", str(folder), text_field, keep, size)]
        builder = str(source.get("builder", ""))
        if builder not in LOCAL_BUILDERS:
            raise ValidationError(f"{where}: datasets builder {builder!r} would need the network (mixplan never "
                                  f"downloads); use a local builder ({', '.join(LOCAL_BUILDERS)}) with data_files, or "
                                  "a save_to_disk folder (path = ...)")
        if "data_files" not in source:
            raise ValidationError(f"{where}: builder {builder!r} needs data_files (local paths or globs)")
        split = str(source.get("split", "train"))
        opts = (("builder", builder), ("split", split))
        return [Shard(name, "builder", p, text_field, keep, os.path.getsize(p), opts)
                for p in expand_paths(source["data_files"], root, where, "data_files")]
    if kind == "package":
        reader = source.get("reader")
        if not reader:
            raise ValidationError(f"{where}: a package source needs reader = \"module:function\" to be scanned")
        return [Shard(name, "reader", str(reader), text_field, keep)]
    raise ValidationError(f"{where}: pool {name!r} has no source table to scan (add [pools.{name}.source])")


# ----------------------------------------------------------------------------------------- records


def _from_value(value: Any, shard: Shard, where: str) -> Record:
    """A record from one stored document: a mapping (text field + fields), a str or UTF-8 bytes."""
    fields: dict[str, Any] = {}
    if isinstance(value, Mapping):
        fields = {f: value.get(f) for f in shard.fields}
        if shard.text_field not in value:
            return Record(None, where, fields, f"no field {shard.text_field!r}")
        value = value[shard.text_field]
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return Record(raw.decode("utf-8"), where, fields, raw=raw)
        except UnicodeDecodeError as exc:
            return Record(None, where, fields, f"not UTF-8 ({exc.reason} at byte {exc.start})")
    if not isinstance(value, str):
        return Record(None, where, fields, f"field {shard.text_field!r} is {type(value).__name__}, not text")
    if not value.isascii():
        try:  # JSON may escape an unpaired surrogate ("\\ud83d"): not text any tokenizer can read
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return Record(None, where, fields, f"not valid Unicode ({exc.reason} at character {exc.start})")
    return Record(value, where, fields)


def _json_lines(stream: io.BufferedIOBase, shard: Shard) -> Iterator[Record]:
    for n, line in enumerate(stream, start=1):
        where = f"{shard.path}:{n}"
        if not line.strip():
            continue  # blank lines are not documents
        try:
            value = json.loads(line)
        except ValueError as exc:
            yield Record(None, where, {}, f"malformed JSON ({str(exc).splitlines()[0]})")
            continue
        if not isinstance(value, Mapping):
            yield Record(None, where, {}, f"a JSON {type(value).__name__}, not an object")
            continue
        yield _from_value(value, shard, where)


def _open_compressed(shard: Shard) -> Any:
    if shard.kind == "jsonl.gz":
        return gzip.open(shard.path, "rb")
    try:
        import zstandard
    except ImportError:
        raise ValidationError(f"{shard.path}: reading .zst needs the 'zstandard' package (pip install zstandard)"
                              ) from None
    fh = open(shard.path, "rb")  # closed by the stream reader
    return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(fh, closefd=True))


def _arrow_batches(batches: Any, shard: Shard, label: str) -> Iterator[Record]:
    """Records of Arrow record batches (parquet, arrow files, datasets): the text column and fields."""
    row = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        cols = set(batch.schema.names)
        if shard.text_field not in cols:
            raise ValidationError(f"{label}: no column {shard.text_field!r} (the pool's text_field); columns are "
                                  f"{sorted(cols)}")
        texts = batch.column(shard.text_field).to_pylist()
        extra = {f: batch.column(f).to_pylist() for f in shard.fields if f in cols}
        for i, text in enumerate(texts):
            row += 1
            rec = _from_value({shard.text_field: text} | {f: v[i] for f, v in extra.items()}, shard,
                              f"{label}:row {row}")
            if text is None:
                rec = Record(None, rec.where, rec.fields, "missing text (null)")
            yield rec


def import_function(ref: str, what: str, fix: str = "") -> Callable[..., Any]:
    """The function ``module:function`` names, imported (never evaluated); ``what`` names it in errors and
    ``fix`` ends them."""
    module, sep, func = ref.partition(":")
    if not (sep and module and func):
        raise ValidationError(f"{what} is not module:function{fix}")
    try:
        fn = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        raise ValidationError(f"{what} cannot be imported ({exc}){fix}") from None
    if not callable(fn):
        raise ValidationError(f"{what} is not a function{fix}")
    return fn


def _reader_records(shard: Shard) -> Iterator[Record]:
    fn = import_function(shard.path, f"pool {shard.pool!r}: reader {shard.path!r}",
                         '; give reader = "module:function" of an installed module')
    for i, value in enumerate(fn(), start=1):
        yield _from_value(value, shard, f"{shard.path}:doc {i}")


def read_shard(shard: Shard) -> Iterator[Record]:
    """Every document of ``shard`` as a :class:`Record`, in its stored order (streaming: memory does not
    grow with the shard)."""
    try:
        yield from _read(shard)
    except ValidationError:
        raise
    except Exception as exc:  # a damaged file: gzip, zstandard, Arrow and datasets each raise their own types
        why = (str(exc).splitlines() or [""])[0]
        raise ValidationError(f"pool {shard.pool!r}: {shard.path}: cannot be read ({type(exc).__name__}: {why})"
                              ) from exc


def _read(shard: Shard) -> Iterator[Record]:
    kind = shard.kind
    if kind == "jsonl":
        with open(shard.path, "rb") as fh:
            yield from _json_lines(fh, shard)
    elif kind in ("jsonl.gz", "jsonl.zst"):
        with _open_compressed(shard) as fh:
            yield from _json_lines(fh, shard)
    elif kind == "txt":
        with open(shard.path, "rb") as fh:
            yield _from_value(fh.read(), shard, shard.path)
    elif kind == "lines":
        with open(shard.path, "rb") as fh:
            for n, line in enumerate(fh, start=1):
                if line.strip():
                    yield _from_value(line.rstrip(b"\r\n"), shard, f"{shard.path}:{n}")
    elif kind == "parquet":
        import pyarrow.parquet as pq

        yield from _arrow_batches(pq.ParquetFile(shard.path).iter_batches(batch_size=_BATCH), shard, shard.path)
    elif kind == "arrow":
        yield from _arrow_batches(_arrow_file_batches(shard.path), shard, shard.path)
    elif kind == "disk":
        yield from _datasets_records(shard)
    elif kind == "builder":
        yield from _datasets_records(shard)
    elif kind == "reader":
        yield from _reader_records(shard)
    else:  # pragma: no cover - list_shards makes only the kinds above
        raise ValidationError(f"shard kind {kind!r} is not known")


def _arrow_file_batches(path: str) -> Iterator[Any]:
    """Record batches of an Arrow file as ``datasets`` writes it (a stream), or of an Arrow IPC file."""
    import pyarrow as pa

    with pa.memory_map(path, "r") as source:
        try:
            reader = pa.ipc.open_stream(source)
        except pa.ArrowInvalid:
            reader = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)
            return
        yield from reader


def _datasets_records(shard: Shard) -> Iterator[Record]:
    """A save_to_disk folder, or one data file through a local builder, streamed (never downloaded)."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import datasets
    except ImportError:  # pragma: no cover - a declared dependency
        raise ValidationError("reading a datasets source needs the 'datasets' package") from None
    label = shard.path
    if shard.kind == "disk":
        try:
            ds = datasets.load_from_disk(shard.path)
        except (FileNotFoundError, ValueError) as exc:
            raise ValidationError(f"pool {shard.pool!r}: {shard.path}: not a datasets folder ({exc})") from exc
        if isinstance(ds, datasets.DatasetDict):
            raise ValidationError(f"pool {shard.pool!r}: {shard.path} holds several splits "
                                  f"({', '.join(ds)}); point path at one split's folder")
        batches = ds.with_format("arrow").iter(batch_size=_BATCH)
    else:
        opts = dict(shard.options)
        # data_files keyed by the split: a bare list would be filed under "train" whatever split says
        ds = datasets.load_dataset(opts["builder"], data_files={opts["split"]: [shard.path]}, split=opts["split"],
                                   streaming=True)
        batches = ds.with_format("arrow").iter(batch_size=_BATCH)
    yield from _arrow_batches((_as_batch(b) for b in batches), shard, label)


def _as_batch(table: Any) -> Any:
    """``datasets`` yields Arrow tables per batch: one record batch (combined chunks)."""
    import pyarrow as pa

    if isinstance(table, pa.RecordBatch):
        return table
    return table.combine_chunks().to_batches()[0] if table.num_rows else pa.record_batch([], schema=table.schema)
