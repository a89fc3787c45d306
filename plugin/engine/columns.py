"""Feature matrices written by column name, each column exactly once.

The ranker (``pairs.FEATURES``) and the sub-profile detector (``subprofiles.FEATURES``)
build their rows from several parts; a column written twice, or left unset, would be
fitted and scored silently, so both build through here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

__all__ = ["column_index", "named_columns"]


def column_index(names: Sequence[str]) -> Mapping[str, int]:
    """Read-only ``{name: column}`` of ``names`` in order."""
    return MappingProxyType({name: i for i, name in enumerate(names)})


def named_columns(rows: tuple[int, ...], names: Sequence[str], col: Mapping[str, int],
                  *parts: Mapping[str, np.ndarray | float]) -> np.ndarray:
    """A ``rows + (len(names),)`` array of the named values in ``parts``.

    A name in two parts, in none, or not in ``names`` is a ``ValueError``.
    """
    out = np.full((*rows, len(names)), np.nan)
    written: set[str] = set()
    for part in parts:
        for name, values in part.items():
            if name not in col:
                raise ValueError(f"unknown feature {name!r}")
            if name in written:
                raise ValueError(f"feature {name!r} written twice")
            out[..., col[name]] = values
            written.add(name)
    missing = [f for f in names if f not in written]
    if missing:
        raise ValueError(f"features never written: {', '.join(missing)}")
    return out
