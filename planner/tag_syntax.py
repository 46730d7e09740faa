"""The grammar of the catalogue's tag rules (``"a=b|c & !d & e~regex"``), with no heavy import.

:class:`planner.catalogue_model.TagRule` parses rules with :data:`CONDITION`;
:mod:`planner.osm_prefetch` reads the keys of a catalogue's rules with
:func:`rule_keys` before pandas is imported.
"""

from __future__ import annotations

import re

#: An OSM key as a rule may name it.
KEY = r"[A-Za-z_][\w:.\-]*"
#: One condition of a rule: ``!key`` (absent), or ``key`` ``=``, ``!=`` or ``~`` a value.
CONDITION = re.compile(
    rf"^(?:!(?P<absent>{KEY})|(?P<key>{KEY})\s*(?P<op>!=|=|~)\s*(?P<value>.+))$")


def rule_keys(text: str) -> set[str]:
    """The keys the conditions of the rule ``text`` read; ValueError when one does not parse."""
    keys = set()
    for part in text.split("&"):
        match = CONDITION.match(part.strip())
        if match is None:
            message = f"cannot parse condition {part.strip()!r}"
            raise ValueError(message)
        keys.add(match["absent"] or match["key"])
    return keys
