"""OPL text (osmium's line format, written with ``locations_on_ways``) to columns.

:func:`read_opl` turns the nodes and ways that :mod:`planner.osm_reader`
selected in C++ into numpy columns (ids, one object array per wanted tag,
locations) without Python code per object: pyarrow's CSV reader parses the
lines, way-node lists and tag lists after a byte translation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pacsv


@dataclass
class Objects:
    """Nodes or ways read from OPL: ids, tags (a column per wanted key) and locations.

    For nodes ``xy`` is one location per node (NaN when invalid); for ways
    it is per way node, with ``refs`` (node ids), ``way`` (the way of each
    way node), ``valid`` (the node has a valid location) and ``n_refs``.
    """

    ids: np.ndarray
    tags: dict[str, np.ndarray]
    xy: np.ndarray
    refs: np.ndarray | None = None
    way: np.ndarray | None = None
    valid: np.ndarray | None = None
    n_refs: np.ndarray | None = None
    #: which objects carry each key of ``tags`` (kept from parsing: no scan for None)
    present: dict[str, np.ndarray] = field(default_factory=dict)

    def tag(self, key: str) -> np.ndarray:
        return self.tags.get(key, np.full(len(self.ids), None, dtype=object))

    def has(self, key: str) -> np.ndarray:
        """Which objects carry the key."""
        found = self.present.get(key)
        return np.zeros(len(self.ids), dtype=bool) if found is None else found.copy()

    def equals(self, key: str, value: str) -> np.ndarray:
        """Which objects carry the key with this value."""
        result = self.has(key)
        rows = np.flatnonzero(result)
        if len(rows):
            result[rows] = self.tags[key][rows] == value
        return result


def read_opl(text: bytes, wanted: list[str]) -> tuple[Objects, Objects]:
    """Nodes and ways of an OPL text written with ``locations_on_ways``, column by column.

    A node line is ``n<id> T<tags> x<lon> y<lat>``, a way line
    ``w<id> T<tags> N<n<id>x<lon>y<lat>,...>``; tags are ``key=value`` pairs
    joined by commas, with ``%hex%`` escapes (:func:`_unescape`). No field
    holds a raw space, so each kind of line is a space-separated table for
    pyarrow's CSV reader.
    """
    tables = _kind_tables(text)
    parts = []
    for letter in "nw":
        table = tables[letter]
        n_objects = len(table["id"])
        ids = pc.cast(pc.utf8_slice_codeunits(table["id"], 1), pa.int64()).to_numpy()
        tags, present = _opl_tags(table["tags"], wanted, n_objects)
        if letter == "n":
            lon = _coordinate(pc.utf8_slice_codeunits(table["x"], 1))
            lat = _coordinate(pc.utf8_slice_codeunits(table["y"], 1))
            parts.append(Objects(ids, tags, _valid_xy(lon, lat), present=present))
            continue
        node_ids, xy, way = _way_nodes(table["refs"])
        parts.append(Objects(ids, tags, xy, refs=node_ids, way=way,
                              valid=~np.isnan(xy[:, 0]),
                              n_refs=np.bincount(way, minlength=n_objects), present=present))
    return parts[0], parts[1]


#: The columns of node and way lines.
_NAMES = {"n": ["id", "tags", "x", "y"], "w": ["id", "tags", "refs"]}


def _kind_tables(text: bytes) -> dict[str, dict]:
    """The node lines and the way lines of an OPL text as tables of text columns.

    libosmium writes objects in the order of the input, nodes before ways in
    any ordinary extract: the text is cut before the first way, and the
    ways' table tells whether a node came later (a line of four fields, or an
    id not opening with ``w``); then the lines are partitioned one by one
    (:func:`_split_kinds`).
    """
    view = memoryview(text)
    if text.startswith(b"w"):
        start = 0
    else:
        found = text.find(b"\nw")
        start = len(text) if found < 0 else found + 1
    try:
        ways = _csv(view[start:], _NAMES["w"], dict.fromkeys(_NAMES["w"], pa.string()), " ")
        grouped = not len(ways["id"]) or pc.all(pc.starts_with(ways["id"], "w")).as_py()
    except pa.ArrowInvalid:  # a node line among the ways
        grouped = False
    if grouped:
        parts = {"n": view[:start]}
    else:
        parts = dict(zip("nw", _split_kinds(text), strict=True))
        ways = _csv(parts["w"], _NAMES["w"], dict.fromkeys(_NAMES["w"], pa.string()), " ")
    nodes = _csv(parts["n"], _NAMES["n"], dict.fromkeys(_NAMES["n"], pa.string()), " ")
    return {"n": nodes, "w": ways}


def _split_kinds(text: bytes) -> tuple[memoryview, memoryview]:
    """The node lines and the way lines of an OPL text, partitioned line by line
    (keeping the order within each kind)."""
    lines = _csv(memoryview(text), ["line"], {"line": pa.string()}, "\t")["line"]
    kind = pc.utf8_slice_codeunits(lines, 0, 1)
    return tuple(memoryview(_text_bytes(pc.binary_join_element_wise(
        pc.filter(lines, pc.equal(kind, letter)), "", "\n"))[0].tobytes()) for letter in "nw")


def _csv(body, names: list[str], types: dict,
         delimiter: str) -> dict[str, pa.Array | pa.ChunkedArray]:
    """Columns of a delimited text with no quoting (an empty text gives empty columns)."""
    if not len(body):
        return {name: pa.array([], type=types[name]) for name in names}
    # one thread: pyarrow's block-parallel parse costs more CPU (~30% on a city) for
    # little wall time on two busy cores
    table = pacsv.read_csv(pa.BufferReader(pa.py_buffer(body)), read_options=pacsv.ReadOptions(
        column_names=names, block_size=1 << 24, use_threads=False),
        parse_options=pacsv.ParseOptions(
        delimiter=delimiter, quote_char=False, escape_char=False),
        convert_options=pacsv.ConvertOptions(column_types=types))
    # the text columns in one piece (their characters are read as one buffer)
    return {name: table.column(name).combine_chunks() if types[name] == pa.string()
            else table.column(name) for name in names}


def _text_bytes(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The characters of a string array back to back (a read-only view) and where each starts."""
    start, stop = strings.offset, strings.offset + len(strings)
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)[start:stop + 1]
    if not len(strings):
        return np.zeros(0, dtype=np.uint8), np.zeros(1, dtype=np.int64)
    data = np.frombuffer(strings.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    return data, (offsets - offsets[0]).astype(np.int64)


def _translation(pairs: dict[str, str]) -> bytes:
    table = bytearray(range(256))
    for old, new in pairs.items():
        table[ord(old)] = ord(new)
    return bytes(table)


#: A way's node list ``Nn<id>x<lon>y<lat>,n...`` as CSV rows ``<id>,<lon>,<lat>`` (the
#: empty lines between rows are skipped); an unknown location is an empty field.
_REFS_AS_CSV = _translation({"N": "\n", "n": "\n", ",": "\n", "x": ",", "y": ","})
#: A tag list ``key=value,key=value`` as CSV rows ``key,value`` (raw ``,`` and ``=``
#: inside keys and values are escaped in OPL).
_TAGS_AS_CSV = _translation({",": "\n", "=": ","})


def _way_nodes(refs: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node ids, ``(n, 2)`` locations (NaN where unknown) and way of each way node."""
    data, offsets = _text_bytes(refs)
    # every way node opens with "n", the only one in the list
    way = np.searchsorted(offsets, np.flatnonzero(data == ord("n")), side="right") - 1
    table = _csv(data.tobytes().translate(_REFS_AS_CSV), ["id", "x", "y"],
                 {"id": pa.int64(), "x": pa.float64(), "y": pa.float64()}, ",")
    if len(table["id"]) != len(way):
        message = "unexpected node list in the OPL text"
        raise ValueError(message)
    lon, lat = (table[axis].to_numpy(zero_copy_only=False) for axis in ("x", "y"))
    return table["id"].to_numpy(), _valid_xy(lon, lat), way.astype(np.int64)


def _coordinate(text: pa.Array) -> np.ndarray:
    """Decimal degrees from OPL text, NaN where empty (an unknown location)."""
    empty = pc.equal(text, "")
    number = pc.cast(pc.if_else(empty, "nan", text), pa.float64())
    return number.to_numpy(zero_copy_only=False)


def _valid_xy(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """``(n, 2)`` locations, NaN where unknown or out of range (osmium's ``valid()``)."""
    xy = np.column_stack([lon, lat])
    with np.errstate(invalid="ignore"):
        bad = ~((np.abs(lon) <= 180) & (np.abs(lat) <= 90))
    xy[bad] = np.nan
    return xy


def _opl_tags(text: pa.Array, wanted: list[str],
              n_objects: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A column per wanted key (object array, None where absent) from OPL tag lists.

    Also which objects carry each key (boolean arrays).
    """
    data, offsets = _text_bytes(text)
    # every pair holds one raw "=", so the equals signs tell each pair's object
    owner = np.searchsorted(offsets, np.flatnonzero(data == ord("=")), side="right") - 1
    csv = np.frombuffer(bytearray(data.tobytes().translate(_TAGS_AS_CSV)), dtype=np.uint8)
    csv[offsets[:-1][offsets[:-1] < len(csv)]] = ord("\n")  # the "T" opening each list
    pairs = _csv(csv, ["key", "value"], {"key": pa.string(), "value": pa.string()}, ",")
    if len(pairs["key"]) != len(owner):
        message = "unexpected tag list in the OPL text"
        raise ValueError(message)
    key = pairs["key"]
    if pc.any(pc.match_substring(key, "%")).as_py():
        key = pa.array(_unescape(key), type=pa.string())
    code = pc.index_in(key, value_set=pa.array(wanted, type=pa.string()))
    chosen = pc.is_valid(code)
    owner = owner[chosen.to_numpy(zero_copy_only=False)]
    code = pc.filter(code, chosen).to_numpy()
    value = _unescape(pc.filter(pairs["value"], chosen))
    columns, present = {}, {}
    for index in np.unique(code):
        column = np.full(n_objects, None, dtype=object)
        carried = np.zeros(n_objects, dtype=bool)
        hit = code == index
        column[owner[hit]] = value[hit]
        carried[owner[hit]] = True
        columns[wanted[index]] = column
        present[wanted[index]] = carried
    return columns, present


_ESCAPE = re.compile(r"%([0-9a-fA-F]+)%")


def _unescape(text: pa.Array) -> np.ndarray:
    """OPL text with its ``%hex%`` escapes (spaces, commas, most non-Latin text) decoded.

    An object array; each distinct text is made a Python string (and decoded) once.
    """
    if not len(text):
        return np.empty(0, dtype=object)
    encoded = pc.dictionary_encode(text)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    distinct = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    rows = np.flatnonzero(pc.match_substring(encoded.dictionary, "%").to_numpy(
        zero_copy_only=False))
    if len(rows):
        distinct[rows] = [_ESCAPE.sub(lambda found: chr(int(found[1], 16)), value)
                          for value in distinct[rows]]
    return distinct[encoded.indices.to_numpy(zero_copy_only=False)]
