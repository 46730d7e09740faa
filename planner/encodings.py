"""Text encodings of the planner's files: UTF-8 (with or without BOM), GBK, GB18030.

Chinese Excel saves CSV in the system's "ANSI" code page, which on a Chinese
Windows is code page 936 (GBK); Chinese agencies' shapefiles carry a ``.cpg``
of ``GBK``, ``936`` or ``ANSI 936``, or none at all. Detection tries UTF-8
(a BOM is dropped) and then GB18030, a superset of GBK and GB2312: GBK text is
almost never valid UTF-8, so the order is safe. An explicit encoding always
wins.
"""

from __future__ import annotations

import codecs
import io
import re
from pathlib import Path

import geopandas as gpd
import pandas as pd

from planner.errors import PlannerError
from planner.i18n import message as _text

#: Tried in this order when no encoding is given. ``cp936`` last: Windows' GBK
#: also maps byte 0x80 to the euro sign, which GB18030 refuses.
DETECTED_ENCODINGS = ("utf-8-sig", "gb18030", "cp936")
TEXT_SUFFIXES = frozenset({".csv", ".txt", ".tsv"})


def check_encoding(encoding: str, *, option: str = "--encoding") -> str:
    """The codec's canonical name, or PlannerError naming ``option`` for an unknown one."""
    try:
        return codecs.lookup(encoding).name
    except (LookupError, TypeError, ValueError) as error:
        message = _text(f"{option}: unknown encoding {encoding!r} (e.g. utf-8, gbk, gb18030)",
                        f"{option}: 未知编码 {encoding!r} (如 utf-8, gbk, gb18030)")
        raise PlannerError(message) from error


def decode_bytes(data: bytes, path: str | Path, encoding: str | None = None) -> tuple[str, str]:
    """Decode a file's bytes: the given encoding, else the first of :data:`DETECTED_ENCODINGS`.

    Returns
    -------
    text, encoding
        The text (without a BOM) and the encoding used.

    Raises
    ------
    PlannerError
        The bytes are not valid in ``encoding`` (the message gives the byte
        offset), or in none of the detected ones.
    """
    if encoding is not None:
        name = check_encoding(encoding)
        name = "utf-8-sig" if name == "utf-8" else name  # a BOM is never part of the data
        try:
            return data.decode(name), name
        except UnicodeDecodeError as error:
            message = _text(f"not valid {encoding} text (byte {error.start}); "
                            "check the encoding (e.g. --encoding gbk)",
                            f"不是有效的 {encoding} 文本 (第 {error.start} 字节); "
                            "请检查编码 (如 --encoding gbk)")
            raise PlannerError(message, path) from error
    for name in DETECTED_ENCODINGS:
        try:
            return data.decode(name), name
        except UnicodeDecodeError:
            continue
    message = _text("text is neither UTF-8 nor GBK/GB18030; give its encoding "
                    "(e.g. --encoding big5)",
                    "文本既不是 UTF-8 也不是 GBK/GB18030; 请指定编码 (如 --encoding big5)")
    raise PlannerError(message, path)


def detect_encoding(path: str | Path, encoding: str | None = None) -> str:
    """The encoding of a text file (see :func:`decode_bytes`)."""
    return decode_bytes(Path(path).read_bytes(), path, encoding)[1]


def read_text_table(path: str | Path, encoding: str | None = None, **read_csv) -> pd.DataFrame:
    """Read a CSV/TSV/TXT table in UTF-8, GBK or GB18030 (detected) as strings.

    ``.txt`` and ``.tsv`` files may be separated by tabs, commas or semicolons
    (sniffed); ``.csv`` by commas unless ``sep`` is given.

    Parameters
    ----------
    path
        The file.
    encoding
        Its encoding; detected when None.
    **read_csv
        Passed to :func:`pandas.read_csv` (default ``dtype=str``).

    Raises
    ------
    PlannerError
        Undecodable text or a malformed table, naming the file.
    """
    text, _ = decode_bytes(Path(path).read_bytes(), path, encoding)
    read_csv.setdefault("dtype", str)
    if Path(path).suffix.lower() in {".txt", ".tsv"} and "sep" not in read_csv:
        read_csv.update(sep=None, engine="python")
    try:
        return pd.read_csv(io.StringIO(text), **read_csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        message = _text(f"cannot read the table ({first})", f"无法读取表格 ({first})")
        raise PlannerError(message, path) from error


def _cpg_encoding(cpg: str) -> str | None:
    """A ``.cpg``'s content as a codec name GDAL understands (None: leave it to GDAL)."""
    value = cpg.strip().upper()
    if re.fullmatch(r"(ANSI\s*|CP|WINDOWS-?)?936", value):
        return "CP936"
    if value in {"GBK", "GB2312", "GB18030", "EUC-CN"}:
        return "GB18030"  # a superset: a GBK file read as GB18030 is the same text
    return None


def _dbf_encoding(dbf: Path) -> str | None:
    """Sniff the records of a ``.dbf`` without a ``.cpg``: UTF-8, else GB18030."""
    data = dbf.read_bytes()
    if len(data) < 32:
        return None
    if data[29] == 0x4D:  # language driver id of code page 936
        return "CP936"
    header_bytes = int.from_bytes(data[8:10], "little")
    # field names live in the header, values in the records; both may be Chinese
    body = data[32:header_bytes] + data[header_bytes:]
    if body.isascii():
        return None
    for name in ("utf-8", "gb18030"):
        try:
            body.decode(name)
        except UnicodeDecodeError:
            continue
        return name.upper()
    return None


def vector_encoding(path: str | Path, encoding: str | None = None) -> str | None:
    """The ``encoding=`` to give pyogrio for a vector file (None: GDAL's own choice).

    For a shapefile: the explicit encoding; else its ``.cpg`` when GDAL would
    misread it (``ANSI 936``); else, with no ``.cpg``, the code page in the
    ``.dbf`` header or the text of its records (UTF-8, else GB18030). Other
    formats (GeoPackage, GeoJSON) declare UTF-8 and get the explicit encoding
    only.
    """
    if encoding is not None:
        return check_encoding(encoding)
    path = Path(path)
    if path.suffix.lower() != ".shp":
        return None
    cpg = path.with_suffix(".cpg")
    if not cpg.exists():
        cpg = path.with_suffix(".CPG")
    if cpg.exists():
        return _cpg_encoding(cpg.read_text(encoding="ascii", errors="replace"))
    dbf = next((path.with_suffix(s) for s in (".dbf", ".DBF") if path.with_suffix(s).exists()),
               None)
    return None if dbf is None else _dbf_encoding(dbf)


def read_vector(path: str | Path, encoding: str | None = None, **read_file) -> gpd.GeoDataFrame:
    """:func:`geopandas.read_file` with the text encoding of :func:`vector_encoding`."""
    chosen = vector_encoding(path, encoding)
    if chosen is not None:
        read_file["encoding"] = chosen
    return gpd.read_file(path, engine="pyogrio", **read_file)
