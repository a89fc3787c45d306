"""Registry of named recommendation sources the blenders chain (unknown names raise)."""

from __future__ import annotations

from importlib import import_module

from plugin.engine.base import BaseRecommender

__all__ = ["SOURCES", "make_source"]

# name -> "module:Class"; imported on use so the registry has no import cycles
SOURCES: dict[str, str] = {
    "repurchase_due": "plugin.engine.repurchase:RepurchaseModel",
    "itemknn": "plugin.engine.itemknn:ItemKNNRecommender",
    "content": "plugin.engine.content:ContentRecommender",
    "collaborative": "plugin.engine.collaborative:EASERecommender",
    "segment": "plugin.engine.segments:SegmentRecommender",
    "trending": "plugin.engine.trending:TrendingRecommender",
}


def make_source(name: str, **params) -> BaseRecommender:
    """A fresh, unfitted estimator for a source name; ``ValueError`` for unknown names."""
    try:
        module, cls = SOURCES[name].split(":")
    except KeyError:
        raise ValueError(f"unknown source {name!r}; choose from {', '.join(SOURCES)}") from None
    return getattr(import_module(module), cls)(**params)
