"""The ``shopkeeper`` command: shops, import, worker, demo, database and evaluation."""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import urlencode

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext

from plugin import create_app
from plugin.training_cli import train as train_command


class ShopkeeperGroup(FlaskGroup):
    """Commands on a database that was never migrated say what to run, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as err:
            text = str(err.orig).lower()
            if ("database" in text and "does not exist" in text) or _unreachable(text):
                # the server answered "no such database" or did not answer at all: a
                # migration cannot help, and the traceback hides the one line that can
                first = str(err.orig).strip().splitlines()[0] if str(err.orig).strip() else ""
                raise click.ClickException(
                    f"cannot use the database {_shown_uri(ctx)}: {first}. Check that the "
                    "server runs and SHOPKEEPER_SQLALCHEMY_DATABASE_URI names it") from None
            if "no such table" in text or "does not exist" in text:
                # name the database: run from another directory, the default SQLite file
                # is a new, empty ./instance/shopkeeper.db, and upgrading that is no fix
                raise click.ClickException(
                    f"the database {_shown_uri(ctx)} has no Shopkeeper tables yet: run "
                    "`shopkeeper db upgrade`, or, if your shops are in another database, run "
                    "this from the directory that holds its instance/ or set "
                    "SHOPKEEPER_SQLALCHEMY_DATABASE_URI") from None
            raise


def _shown_uri(ctx: click.Context) -> str:
    uri = ctx.ensure_object(ScriptInfo).load_app().config["SQLALCHEMY_DATABASE_URI"]
    return sa.engine.make_url(uri).render_as_string(hide_password=True)


def _unreachable(text: str) -> bool:
    """A connection that failed before any SQL ran (server down, wrong host or port)."""
    return any(s in text for s in ("connection refused", "could not connect",
                                   "connection failed", "could not translate host name",
                                   "unable to open database file", "timeout expired"))


@click.group(cls=ShopkeeperGroup, create_app=create_app, add_default_commands=True,
             add_version_option=False)
def main() -> None:
    """Shopkeeper: personalization for headless storefronts."""


# ---------------------------------------------------------------- database
@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Create or migrate the database to the latest schema."""
    from plugin import migrate

    migrate.upgrade()
    click.echo("database is at the latest revision")


@db.command("revision")
@click.option("-m", "--message", required=True)
@with_appcontext
def db_revision(message: str) -> None:
    """Autogenerate a migration from model changes (maintainers)."""
    from plugin import migrate

    migrate.revision(message)


# ---------------------------------------------------------------- shops
@main.group()
def shops() -> None:
    """Install, list and erase shops; their credentials, admin links and token secrets."""


@shops.command("add")
@click.option("--platform", required=True,
              help="Connector key, e.g. generic, vendure (Shopify installs through OAuth).")
@click.option("--domain", required=True, help="The shop's domain, e.g. shop.example.")
@with_appcontext
def shops_add(platform: str, domain: str) -> None:
    """Register a shop; prints its id, webhook URL and secret, and public widget key."""
    from connectors.errors import UnknownConnector
    from plugin import shops as shop_service
    from plugin.errors import BadRequest, Conflict
    from plugin.extensions import db as database

    base = current_app.config["PUBLIC_URL"].rstrip("/")
    if platform == "shopify":  # Shopify signs webhooks with the app's secret, set by OAuth
        url = f"{base}/install/shopify?{urlencode({'shop': domain})}"
        raise click.BadParameter(
            "Shopify stores install through Shopify's OAuth, which also sets the secret "
            f"Shopify signs webhooks with: open {url} (or install from the Shopify App "
            "Store).", param_hint="--platform")
    try:
        shop = shop_service.create_shop(platform, domain)
    except UnknownConnector:
        import connectors

        raise click.BadParameter(
            f"unknown platform {platform!r} (one of: {', '.join(connectors.available())})",
            param_hint="--platform") from None
    except BadRequest as err:
        raise click.BadParameter(err.message, param_hint="--domain") from None
    except Conflict as err:
        raise click.ClickException(err.message) from None
    database.session.commit()
    creds = shop_service.credentials_for(shop)
    click.echo(f"shop id:        {shop.id}")
    click.echo(f"webhook url:    {base}/webhooks/{platform}/{shop.id}")
    click.echo(f"webhook secret: {creds.webhook_secret}")
    click.echo(f"customer-token secret: {creds.extra[shop_service.CUSTOMER_TOKEN_SECRET]}")
    click.echo(f"widget key:     {shop.widget_key}")


@shops.command("list")
@with_appcontext
def shops_list() -> None:
    """One line per shop: id, platform, domain, status."""
    from plugin.extensions import db as database
    from plugin.models import Shop

    for shop in database.session.scalars(sa.select(Shop).order_by(Shop.created_at)):
        click.echo(f"{shop.id}\t{shop.platform}\t{shop.domain}\t{shop.status}")


@shops.command("credentials")
@click.argument("shop_id")
@click.option("--api-url", help="The platform API endpoint, e.g. https://shop/admin-api.")
@click.option("--access-token", envvar="SHOPKEEPER_CRED_ACCESS_TOKEN",
              help="API token (or set SHOPKEEPER_CRED_ACCESS_TOKEN to keep it out of ps).")
@click.option("--extra", "extras", multiple=True, metavar="KEY=VALUE",
              help="Platform-specific fields, e.g. username=..., api_key=..., channel_token=...")
@click.option("--extra-secret", "secret_keys", multiple=True, metavar="KEY",
              help="Prompt (hidden) for a secret platform field, e.g. password.")
@with_appcontext
def shops_credentials(shop_id: str, api_url: str | None, access_token: str | None,
                      extras: tuple[str, ...], secret_keys: tuple[str, ...]) -> None:
    """Store API credentials for a shop (encrypted at rest); unspecified fields are kept."""
    from dataclasses import replace

    from plugin import shops as shop_service
    from plugin.errors import NotFound
    from plugin.extensions import db as database

    try:
        shop = shop_service.get_shop(shop_id, active_only=True)
    except NotFound:
        raise click.ClickException(
            f"unknown shop {shop_id} (`shopkeeper shops list` shows the ids)") from None
    creds = shop_service.credentials_for(shop)
    extra = dict(creds.extra)
    if access_token:  # not the expiring token its refresh token renews (Shopify): drop those
        from connectors.shopify import install

        for key in (install.REFRESH_TOKEN, install.ACCESS_EXPIRES_AT,
                    install.REFRESH_TOKEN_EXPIRES_AT):
            extra.pop(key, None)
    for item in extras:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--extra")
        extra[key] = value
    for key in secret_keys:
        extra[key] = click.prompt(key, hide_input=True)
    creds = replace(creds, api_url=api_url or creds.api_url,
                    access_token=access_token or creds.access_token, extra=extra)
    shop_service.save_credentials(shop, creds)
    database.session.commit()
    fields = ["api_url"] * bool(creds.api_url) + ["access_token"] * bool(creds.access_token)
    click.echo(f"credentials saved for {shop.id}: {', '.join(fields + sorted(extra))}")


@shops.command("admin-link")
@click.argument("shop_id")
@with_appcontext
def shops_admin_link(shop_id: str) -> None:
    """Print a single-use sign-in link to the admin (valid 15 minutes) for stores without
    an embedding platform admin."""
    from plugin import shops as shop_service
    from plugin.admin.auth import admin_link
    from plugin.errors import NotFound

    try:
        shop = shop_service.get_shop(shop_id, active_only=True)
    except NotFound:
        raise click.ClickException(
            f"unknown shop {shop_id} (`shopkeeper shops list` shows the ids)") from None
    click.echo(admin_link(shop))


@shops.command("token-secret")
@click.argument("shop_id")
@with_appcontext
def shops_token_secret(shop_id: str) -> None:
    """Print the shop's current customer-token secret (what its storefront's backend signs
    customer tokens with), e.g. after a rotation on the settings page."""
    from plugin import shops as shop_service
    from plugin.errors import NotFound
    from plugin.extensions import db as database

    try:
        shop = shop_service.get_shop(shop_id, active_only=True)
        secret, created = shop_service.ensure_customer_token_secret(shop)
    except NotFound:
        raise click.ClickException(f"unknown or uninstalled shop {shop_id}") from None
    if created:  # installed before the secret existed
        database.session.commit()
    click.echo(secret)
    previous = shop_service.previous_customer_token_secret(shop_service.credentials_for(shop))
    if previous is not None:
        click.echo(f"(the previous secret is still accepted until {previous[1]:%Y-%m-%d %H:%M} "
                   "UTC)", err=True)


@shops.command("erase")
@click.argument("shop_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def shops_erase(shop_id: str, yes: bool) -> None:
    """Delete a shop and all its data now."""
    from plugin import shops as shop_service
    from plugin.errors import NotFound
    from plugin.extensions import db as database

    try:
        shop_service.get_shop(shop_id)
    except NotFound:
        raise click.ClickException(
            f"unknown shop {shop_id} (`shopkeeper shops list` shows the ids)") from None
    if not yes:
        click.confirm(f"Erase shop {shop_id} and all its data?", abort=True)
    shop_service.erase_shop(shop_id)
    database.session.commit()
    click.echo(f"erased {shop_id}")


# ---------------------------------------------------------------- data
@main.command("import")
@click.option("--shop", "shop_id", required=True,
              help="The shop's id (shp_...), as `shopkeeper shops list` shows it.")
@click.option("--orders", "orders_path", required=True, type=click.Path(exists=True,
              dir_okay=False),
              help="Order lines CSV (or .csv.gz): customer_id,item_id,timestamp and optional "
                   "basket_id,quantity,price, as for `shopkeeper evaluate`.")
@click.option("--catalog", "catalog_path", type=click.Path(exists=True, dir_okay=False),
              help="Catalog CSV: item_id and optional title,description,category,price.")
@click.option("--currency", default="GBP", show_default=True,
              help="ISO 4217 code of the prices in the orders file.")
@with_appcontext
def import_cmd(shop_id: str, orders_path: str, catalog_path: str | None, currency: str) -> None:
    """Load a purchase history CSV (and catalog CSV) as a shop's history."""
    from plugin import shops as shop_service
    from plugin.errors import NotFound
    from plugin.ingestion.importer import ImportError_, import_history

    try:
        shop = shop_service.get_shop(shop_id)
    except NotFound:
        raise click.ClickException(
            f"unknown shop {shop_id} (`shopkeeper shops list` shows the ids)") from None
    try:
        stats = import_history(shop.id, orders_path, catalog_path, currency=currency,
                               progress=True)
    except ImportError_ as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    click.echo(f"imported {stats.products} products, {stats.customers} customers, "
               f"{stats.orders} orders, {stats.lines} lines")


@main.command("sync")
@click.option("--shop", "shop_id", required=True,
              help="The shop's id (shp_...), as `shopkeeper shops list` shows it.")
@click.option("--resource", "resources", multiple=True,
              type=click.Choice(["products", "customers", "orders"]),
              help="Repeat to pick; default all three.")
@with_appcontext
def sync_cmd(shop_id: str, resources: tuple[str, ...]) -> None:
    """Backfill from the platform's API, resuming from the stored cursor."""
    from connectors.errors import NotSupported
    from plugin.errors import NotFound
    from plugin.ingestion.sync import run_sync

    failed = False
    for resource in resources or ("products", "customers", "orders"):
        try:
            result = run_sync(shop_id, resource, progress=True)
        except NotFound:
            raise click.ClickException(f"unknown or uninstalled shop {shop_id}") from None
        except NotSupported as err:
            click.echo(f"{resource}: skipped ({err})")
            continue
        if result.error:
            failed = True
            click.echo(f"{resource}: failed after {result.records} records: {result.error}",
                       err=True)
        else:
            skipped = (f", {result.skipped} unreadable and skipped (see the dashboard)"
                       if result.skipped else "")
            click.echo(f"{resource}: {result.records} records{skipped}"
                       f"{'' if result.finished else ' (paused, will resume)'}")
    if failed:
        sys.exit(1)


# ---------------------------------------------------------------- processes
@main.command("worker")
@click.option("--once", is_flag=True, help="Drain the inbox once and exit.")
@with_appcontext
def worker(once: bool) -> None:
    """Run the background jobs (the only process that runs the scheduler)."""
    import os

    from plugin import check_production_secrets, is_on, jobs

    # Like `shopkeeper serve` (gunicorn_conf.py): the worker hashes emails with SECRET_KEY,
    # decrypts credentials and re-registers Saleor webhooks at PUBLIC_URL, so it never runs
    # on the development defaults unless SHOPKEEPER_REQUIRE_PRODUCTION_SECRETS=false says so.
    required = os.environ.get("SHOPKEEPER_REQUIRE_PRODUCTION_SECRETS", "true")
    if not once and not current_app.testing and is_on(required):
        try:
            check_production_secrets(current_app.config)
        except RuntimeError as err:
            raise click.ClickException(
                f"{err}. For a local trial on the development defaults, set "
                "SHOPKEEPER_REQUIRE_PRODUCTION_SECRETS=false (`make demo` runs its own "
                "worker).") from None
    if once:
        result = jobs.drain_inbox()
        click.echo(f"processed {result.total}: {result.done} done, {result.failed} failed, "
                   f"{result.dead} dead")
        return
    jobs.run_worker(current_app._get_current_object())


@main.command("serve")
@click.option("--bind", default=None, help="host:port (default $SHOPKEEPER_BIND or 0.0.0.0:8000)")
@click.option("--workers", type=int, default=None, help="gunicorn workers (default 2*cores+1)")
def serve_cmd(bind: str | None, workers: int | None) -> None:
    """Production server: gunicorn with plugin/gunicorn_conf.py (run migrations first)."""
    import os

    args = [sys.executable, "-m", "gunicorn", "-c", "python:plugin.gunicorn_conf"]
    if bind:
        args += ["--bind", bind]
    if workers:
        args += ["--workers", str(workers)]
    os.execvp(args[0], [*args, "plugin:create_app()"])


@main.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--no-serve", is_flag=True, help="Prepare the demo shop, then exit.")
@with_appcontext
def demo_cmd(host: str, port: int, no_serve: bool) -> None:
    """Create the database, load the demo shop and serve the demo storefront."""
    from plugin import demo_setup

    shop = demo_setup.prepare_demo(progress=True, host=host, port=port)
    click.echo(f"demo shop {shop.id} ready")
    app = current_app._get_current_object()
    app.config.update(SESSION_COOKIE_SECURE=False, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_PARTITIONED=False)  # local admin over plain http
    if no_serve:
        return
    click.echo(f"demo storefront: http://{host}:{port}/demo/")
    with app.test_request_context(base_url=f"http://{host}:{port}"):
        from plugin.admin.auth import admin_link

        app.config["PUBLIC_URL"] = f"http://{host}:{port}"
        click.echo(f"admin (single-use sign-in link, 15 min): {admin_link(shop)}")
    demo_setup.serve(app, host=host, port=port)


def _attach_optional_commands() -> None:
    try:
        from plugin.evaluation_cli import evaluate
    except ImportError:  # pragma: no cover - only while the module is absent
        return
    main.add_command(evaluate)


_attach_optional_commands()
main.add_command(train_command)


if __name__ == "__main__":  # ``python -m plugin.cli`` (used by benchmarks)
    main()
