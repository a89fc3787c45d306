"""``shopkeeper train --shop ID``: refit one shop (or all active shops) with a progress bar."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import with_appcontext


@click.command("train")
@click.option("--shop", "shop_ids", multiple=True, help="Shop id (repeatable).")
@click.option("--all", "all_shops", is_flag=True, help="Every active shop.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--wait", is_flag=True,
              help="When another fit of a shop is running, wait for it (default: skip the "
                   "shop and exit 1).")
@with_appcontext
def train(shop_ids: tuple[str, ...], all_shops: bool, quiet: bool, wait: bool) -> None:
    """Fit the recommender, save artifacts and refresh the top-N cache.

    One fit per shop at a time: a shop another fit (the hourly job, another run) is
    fitting is skipped, and the command exits 1, unless ``--wait``.
    """
    from plugin.errors import NotFound
    from plugin.extensions import db
    from plugin.models import Shop
    from plugin.shops import get_shop
    from plugin.training import CleanupFailed, FitInProgress, train_shop

    if all_shops:
        shop_ids = tuple(db.session.scalars(sa.select(Shop.id).where(Shop.status == "active")))
    if not shop_ids:
        raise click.UsageError("give --shop ID or --all")
    for shop_id in shop_ids:  # a typo in the last id must not wait for hours of fits
        try:
            get_shop(shop_id, active_only=True)
        except NotFound:
            raise click.ClickException(
                f"unknown shop {shop_id} (`shopkeeper shops list` shows the ids)") from None
    failed: list[str] = []
    busy: list[str] = []
    unclean: list[str] = []
    for shop_id in shop_ids:
        try:
            version = train_shop(shop_id, show_progress=not quiet, wait=wait,
                                 on_wait=_say_waiting)
        except FitInProgress as err:
            click.echo(f"{shop_id}: not trained: {err}; rerun with --wait to wait for it", err=True)
            busy.append(shop_id)
            continue
        except CleanupFailed as err:  # trained and served: only a step after it failed
            click.echo(f"{shop_id}: version {err.version.version} ({err.version.algorithm}) "
                       f"serves; cleanup failed: {type(err.error).__name__}: {err.error}",
                       err=True)
            unclean.append(shop_id)
            continue
        except Exception as err:  # recorded as a failed version and logged; the others go on
            click.echo(f"{shop_id}: training failed ({type(err).__name__}: {err})", err=True)
            failed.append(shop_id)
            continue
        m = version.metrics
        click.echo(f"{shop_id}: version {version.version} ({version.algorithm}), "
                   f"{m.get('purchases', 0)} purchases, {m.get('shoppers', 0)} shoppers, "
                   f"{m.get('cache_rows', 0)} cached, fit {m.get('fit_seconds', 0)} s")
    problems = ([f"training failed for {', '.join(failed)}"] if failed else []) + (
        [f"another fit was running for {', '.join(busy)}"] if busy else []) + (
        [f"cleanup failed after the new version went live for {', '.join(unclean)}"]
        if unclean else [])
    if problems:
        raise click.ClickException("; ".join(problems))


def _say_waiting(busy: Exception) -> None:
    """``--wait``: say once that the shop is busy, so a silent pause is not a hang."""
    click.echo(f"{getattr(busy, 'shop_id', '?')}: {busy}; waiting for it to end", err=True)
