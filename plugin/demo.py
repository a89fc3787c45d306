"""Serves the demo storefront page and the widget files (demo and browser tests only)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, redirect, send_from_directory

WIDGETS_DIR = Path(__file__).resolve().parent.parent / "widgets"

bp = Blueprint("demo", __name__)


@bp.get("/")
def index():
    return redirect("/demo/")


@bp.get("/demo/")
def storefront():
    if not (WIDGETS_DIR / "demo" / "index.html").exists():
        abort(404)
    return send_from_directory(WIDGETS_DIR / "demo", "index.html")


@bp.get("/widgets/<path:filename>")
def widget_file(filename: str):
    response = send_from_directory(WIDGETS_DIR, filename, max_age=300)
    response.headers["Access-Control-Allow-Origin"] = "*"  # public, static, no credentials
    return response

