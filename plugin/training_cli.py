"""``shopkeeper train --shop ID``: refit one shop (or all active shops) with a progress bar."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import with_appcontext


@click.command("train")
@click.option("--shop", "shop_ids", multiple=True, help="Shop id (repeatable).")
@click.option("--all", "all_shops", is_flag=True, help="Every active shop.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@with_appcontext
def train(shop_ids: tuple[str, ...], all_shops: bool, quiet: bool) -> None:
    """Fit the recommender, save artifacts and refresh the top-N cache."""
    from plugin.errors import NotFound
    from plugin.extensions import db
    from plugin.models import Shop
    from plugin.shops import get_shop
    from plugin.training import train_shop

    if all_shops:
        shop_ids = tuple(db.session.scalars(sa.select(Shop.id).where(Shop.status == "active")))
    if not shop_ids:
        raise click.UsageError("give --shop ID or --all")
    for shop_id in shop_ids:  # a typo in the last id must not wait for hours of fits
        try:
            get_shop(shop_id, active_only=True)
        except NotFound:
            raise click.ClickException(f"unknown shop {shop_id}") from None
    failed: list[str] = []
    for shop_id in shop_ids:
        try:
            version = train_shop(shop_id, show_progress=not quiet)
        except Exception as err:  # recorded as a failed version and logged; the others go on
            click.echo(f"{shop_id}: training failed ({type(err).__name__}: {err})", err=True)
            failed.append(shop_id)
            continue
        m = version.metrics
        click.echo(f"{shop_id}: version {version.version} ({version.algorithm}), "
                   f"{m.get('purchases', 0)} purchases, {m.get('shoppers', 0)} shoppers, "
                   f"{m.get('cache_rows', 0)} cached, fit {m.get('fit_seconds', 0)} s")
    if failed:
        raise click.ClickException(f"training failed for {', '.join(failed)}")
