"""Delete applied inbox rows once no platform will redeliver them.

A done row is kept only to answer a redelivery with "duplicate"; platforms stop retrying
within hours (Shopify 4 h, Saleor minutes, BigCommerce about 48 h), so after
``INBOX_DONE_RETENTION_DAYS`` the row is dead weight in a table that takes every delivery.
A redelivery of a purged id is stored and applied again, which is harmless: every upsert
is monotonic by the record's own ``updated_at`` (``plugin.ingestion.mapping``).

Rows not applied stay: pending, processing and failed rows are still in flight, and dead
ones keep their payload for the admin's retry until the shop's privacy retention closes
them (``inbox.expire_dead``), after which they are done rows and go like the others.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import WebhookDelivery

#: rows deleted per transaction: a large backlog never holds one long transaction or lock
PURGE_BATCH_SIZE = 1000


def purge_done(before: datetime, *, batch_size: int = PURGE_BATCH_SIZE) -> int:
    """Delete done rows processed before ``before``, committing every ``batch_size``."""
    W = WebhookDelivery
    old = sa.and_(W.status == "done", sa.or_(
        W.processed_at < before, sa.and_(W.processed_at.is_(None), W.received_at < before)))
    purged = 0
    while True:
        batch = sa.select(W.id).where(old).order_by(W.id).limit(batch_size)
        n = db.session.execute(
            sa.delete(W).where(W.id.in_(batch), old)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        purged += n
        if n < batch_size:
            return purged
