"""Reading a batch of claimed files with Spark: one strategy on every platform, parallel where a file
allows it, exact everywhere.

Every file is first read *split*: as lines (``spark.read.text``, any number of tasks per file), each line
parsed as one CSV record (``from_csv``, RFC 4180 quoting with ``""``). That is right for every file
without a line break inside a quoted field — nearly all of them. Whether a file has one is decided
exactly in the same pass: such a break leaves a line with an odd number of quote characters (a record
without one has its quotes in pairs: opening, closing, and doubled ones), and every line is checked
(``ODD_QUOTES``). Only a file with such a line is read again, as one multi-line task per file (Spark's
CSV reader with ``multiLine``), and only its rows from that second read are loaded.

All files of a batch that share a header layout are read in one scan; a row knows its file by
``input_file_name()`` (``FILE``: the file's index in the batch) and its place by the split it was read
from (``SPLIT``: the split's byte offset) and ``POSITION``, which increases in file order. In the split
read each file's header comes through as the first row of its split at offset 0; the loader skips it. Lines that
are empty or only whitespace are not records and are skipped, in both reads.

Where Spark reads a file from is the job script's one seam: on AWS Glue a copy of the claimed version
under ``temp/`` through Glue's own S3 filesystem, elsewhere a downloaded copy of it (PyPI's pyspark has
no S3 filesystem); never the mutable ``source/`` key itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from glueline.job import schema
from glueline.job.transform import CORRUPT, WHITESPACE
from glueline.shared import layout
from glueline.shared.audit import AuditRecord
from glueline.shared.contract import FIELDS, HeaderMatch

FILE = schema.FILE_COLUMN  # the file's index in the batch
SPLIT = "_split"  # byte offset of the split (of its file) the row was read from
POSITION = "file_position"  # increases in file order within a file (orders "last occurrence wins")
NEWLINES = "_newlines"  # line breaks inside the record's quoted fields (for line numbers)
ODD_QUOTES = "_odd_quotes"  # a line with an odd number of quotes: the file has a quoted line break

_INDEX_BITS = (1 << 33) - 1  # monotonically_increasing_id() = (partition << 33) + index in partition
_CSV_OPTIONS = {"quote": '"', "escape": '"', "mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}


@dataclass(frozen=True)
class InputFile:
    """One claimed file as Spark reads it."""

    index: int
    file_id: str
    path: str  # s3://bucket/key, or an absolute local path
    header: HeaderMatch


def read_split(spark: SparkSession, files: list[InputFile]) -> DataFrame:
    """Every file, read line by line, each line one record (see the module docstring)."""
    return _union(_read_lines(spark, group) for group in _by_layout(files))


def read_multiline(spark: SparkSession, files: list[InputFile]) -> DataFrame:
    """Every file as one multi-line task: records may hold line breaks inside quoted fields."""
    return _union(_read_records(spark, group) for group in _by_layout(files))


def _read_lines(spark: SparkSession, files: list[InputFile]) -> DataFrame:
    lines = spark.read.text([_literal(f.path) for f in files])
    index = F.monotonically_increasing_id().bitwiseAND(_INDEX_BITS)
    split = F.expr("input_file_block_start()")
    quotes = F.length("value") - F.length(F.replace(F.col("value"), F.lit('"'), F.lit("")))
    parsed = F.from_csv(F.col("value"), csv_schema(files[0].header).simpleString(), _CSV_OPTIONS)
    return (
        lines.select(
            parsed.alias("record"),
            _file_index(lines, files),
            split.alias(SPLIT),
            (split + index).alias(POSITION),
            F.lit(0).alias(NEWLINES),
            # instr first: most lines hold no quote, and counting copies the string
            ((F.instr("value", '"') > 0) & (quotes % 2 == 1)).alias(ODD_QUOTES),
            F.expr(f"trim(BOTH {WHITESPACE} FROM value) = ''").alias("_blank"),
        )
        .where(~F.col("_blank"))
        .select(
            *(F.col(f"record.{c}").alias(c) for c in (*FIELDS, CORRUPT)),
            FILE,
            SPLIT,
            POSITION,
            NEWLINES,
            ODD_QUOTES,
        )
    )


def _read_records(spark: SparkSession, files: list[InputFile]) -> DataFrame:
    raw = (
        spark.read.schema(csv_schema(files[0].header))
        .options(header=True, enforceSchema=True, multiLine=True, encoding="UTF-8", **_CSV_OPTIONS)
        .csv([_literal(f.path) for f in files])
    )
    blank = F.col(CORRUPT).isNotNull() & F.expr(f"trim(BOTH {WHITESPACE} FROM {CORRUPT}) = ''")
    return raw.where(~blank).select(
        *FIELDS,
        CORRUPT,
        _file_index(raw, files),
        F.lit(0).cast("long").alias(SPLIT),
        F.monotonically_increasing_id().bitwiseAND(_INDEX_BITS).alias(POSITION),
        _embedded_line_breaks().alias(NEWLINES),
        F.lit(False).alias(ODD_QUOTES),
    )


def _embedded_line_breaks() -> Column:
    def breaks(column: str) -> Column:  # counted only where there is one: replace() copies the string
        count = F.length(column) - F.length(F.replace(F.col(column), F.lit("\n"), F.lit("")))
        return F.when(F.instr(F.col(column), "\n") > 0, count).otherwise(F.lit(0))

    fields = reduce(lambda a, b: a + b, [breaks(c) for c in FIELDS])
    return F.when(F.col(CORRUPT).isNotNull(), breaks(CORRUPT)).otherwise(fields).cast("int")


def csv_schema(header: HeaderMatch) -> T.StructType:
    """All-text columns named after the contract, in the file's own order (extra columns ignored)."""
    names = [db or f"_ignored_{i}" for i, db in enumerate(header.positions)]
    return T.StructType([T.StructField(n, T.StringType()) for n in names] + [T.StructField(CORRUPT, T.StringType())])


def _file_index(frame: DataFrame, files: list[InputFile]) -> Column:
    """The FILE column: each row's file, from the path Spark read it from (``inputFiles()`` names the
    paths as ``input_file_name()`` does: URL-encoded URIs)."""
    by_path = {_normalized(f.path): f.index for f in files}
    spark_paths = {uri: by_path[_normalized(uri)] for uri in frame.inputFiles()}
    # The same expression for one file as for many: one plan to compile and warm up (see glueline.job.warmup).
    index = F.element_at(F.create_map(*(F.lit(v) for kv in spark_paths.items() for v in kv)), F.input_file_name())
    return index.cast("int").alias(FILE)


_GLOB_CHARACTERS = re.compile(r"([\\*?\[\]{}])")


def _literal(path: str) -> str:
    """The path as Spark must be given it to read that one file: Spark expands ``*``, ``?``, ``[…]`` and
    ``{…}`` in a path as a (Hadoop) glob, and a backslash makes each such character literal."""
    return _GLOB_CHARACTERS.sub(r"\\\1", path)


def _normalized(path: str) -> str:
    """``s3://b/k`` or an absolute path, from a path as we name it or as Spark names it."""
    parts = urlsplit(unquote(path))
    if parts.scheme in ("", "file"):
        return os.path.abspath(parts.path)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _by_layout(files: list[InputFile]) -> Iterable[list[InputFile]]:
    """Files grouped by header layout (same columns in the same order): one scan per group."""
    groups: dict[tuple, list[InputFile]] = {}
    for f in files:
        groups.setdefault(f.header.positions, []).append(f)
    return groups.values()


def _union(frames: Iterable[DataFrame]) -> DataFrame:
    return reduce(DataFrame.unionByName, frames)


class S3Snapshots:
    """Spark reads, with Glue's S3 filesystem, a copy of exactly the claimed version under ``temp/``.

    Spark reads an object in ranges, from many tasks: an object replaced meanwhile could give a run the
    new bytes, or a mix of both versions, under the old FileID. A server-side copy conditional on the
    claimed ETag is atomic and immutable; a file replaced before it is copied fails the copy
    (PreconditionFailed) and stays for its own FileID. A loaded file's copy is kept until its move: a file
    replaced after its load is moved from it (``layout.move_object``)."""

    def __init__(self, s3):
        self.s3 = s3

    def path(self, record: AuditRecord) -> str:
        key = f"{layout.TEMP}claimed/{record.file_id}.csv"
        source = {"Bucket": record.bucket, "Key": record.source_key}
        if record.size > layout.SINGLE_COPY_MAX_BYTES:
            self.s3.copy(source, record.bucket, key, ExtraArgs={"CopySourceIfMatch": record.etag})
        else:
            self.s3.copy_object(Bucket=record.bucket, Key=key, CopySource=source, CopySourceIfMatch=record.etag)
        return f"s3://{record.bucket}/{key}"

    def discard(self, path: str) -> None:
        bucket, key = path.removeprefix("s3://").split("/", 1)
        self.s3.delete_object(Bucket=bucket, Key=key)


class LocalCopies:
    """Spark reads a downloaded copy of exactly the claimed version (plain PySpark has no S3 filesystem),
    kept, once loaded, until the file's move, as ``S3Snapshots`` keeps theirs."""

    def __init__(self, s3, directory: str | Path):
        self.s3 = s3
        self.directory = Path(directory)

    def path(self, record: AuditRecord) -> str:
        target = self.directory / f"{record.file_id}.csv"
        body = self.s3.get_object(Bucket=record.bucket, Key=record.source_key, IfMatch=record.etag)["Body"]
        with open(target, "wb") as out:
            for chunk in iter(lambda: body.read(8 << 20), b""):
                out.write(chunk)
        return str(target)

    def discard(self, path: str) -> None:
        Path(path).unlink(missing_ok=True)
