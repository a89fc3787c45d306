"""Load ``manifest.yaml`` (app identity, scopes, topics, URLs, privacy) and resolve its URLs."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

__all__ = ["absolute_url", "load_manifest", "manifest_path"]


def manifest_path() -> Path:
    """``$SHOPKEEPER_MANIFEST`` or the repository's ``manifest.yaml``."""
    override = os.environ.get("SHOPKEEPER_MANIFEST")
    return Path(override) if override else Path(__file__).resolve().parents[1] / "manifest.yaml"


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict) or "platforms" not in data or "app" not in data:
        raise ValueError(f"{path} is not a Shopkeeper manifest")
    return data


def load_manifest(path: str | Path | None = None) -> dict[str, Any]:
    """The parsed manifest (cached per path; treat it as read-only)."""
    return _load(str(path or manifest_path()))


def absolute_url(base_url: str, value: str, **params: str) -> str:
    """Join a manifest URL ("/x/{shop_id}") to the public base URL, filling placeholders."""
    filled = value.format(**params) if params else value
    if filled.startswith(("https://", "http://")):
        return filled
    return base_url.rstrip("/") + "/" + filled.lstrip("/")
