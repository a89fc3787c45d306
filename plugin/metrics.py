"""Prometheus metrics: request latency from hooks; inbox, jobs, sync lag and model age read
from the database at scrape time, so every process (web or worker) reports the same truth."""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from plugin.errors import Unauthorized
from plugin.extensions import db
from plugin.models.types import utcnow
from plugin.openapi import doc

bp = Blueprint("metrics", __name__)

REGISTRY = CollectorRegistry(auto_describe=True)
REQUEST_LATENCY = Histogram(
    "shopkeeper_request_seconds", "Request latency by endpoint", ["endpoint", "method", "status"],
    registry=REGISTRY, buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
JOB_SECONDS = Histogram("shopkeeper_job_seconds", "Scheduled job durations", ["job"],
                        registry=REGISTRY)
JOB_FAILURES = Counter("shopkeeper_job_failures", "Scheduled job failures", ["job"],
                       registry=REGISTRY)


def observe_job(job: str, seconds: float, status: str) -> None:
    """Called by the worker after each job run (worker-process view); a run stopped because
    its worker lost the scheduler lease is no failure (the new leader runs the job), nor
    one stopped at a fence that found the lease row busy (``lease_busy``: it is logged as
    ``lease.lock_timeout``, and the job runs again at its next check)."""
    JOB_SECONDS.labels(job).observe(seconds)
    if status not in ("ok", "lease_lost", "lease_busy"):
        JOB_FAILURES.labels(job).inc()


def _age(ts: datetime | None, now: datetime) -> float:
    return (now - ts).total_seconds() if ts else float("nan")


class DatabaseCollector:
    """Gauges computed from tables on each scrape."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        families = {
            "depth": GaugeMetricFamily("shopkeeper_inbox_deliveries",
                                       "Inbox rows by status (done ones until purged)",
                                       labels=["status"]),
            "age": GaugeMetricFamily("shopkeeper_inbox_oldest_pending_seconds",
                                     "Age of the oldest pending or failed delivery"),
            "job_age": GaugeMetricFamily("shopkeeper_job_last_success_age_seconds",
                                         "Seconds since each job last succeeded",
                                         labels=["job"]),
            "job_fail": GaugeMetricFamily("shopkeeper_job_failures_24h",
                                          "Failed or abandoned runs per job in the last 24 h",
                                          labels=["job"]),
            "lag": GaugeMetricFamily("shopkeeper_sync_lag_seconds",
                                     "Seconds since each shop's resource was last synced",
                                     labels=["shop", "resource"]),
            "model_age": GaugeMetricFamily("shopkeeper_model_age_seconds",
                                           "Age of each shop's active model", labels=["shop"]),
            "reactivated": GaugeMetricFamily(
                "shopkeeper_saleor_webhooks_reactivated_24h",
                "Refreshes in the last 24 h that found a shop's Saleor webhooks deactivated "
                "(events lost meanwhile: resync)", labels=["shop"]),
        }
        up = GaugeMetricFamily("shopkeeper_database_up", "1 when the metrics queries succeed")
        with self.app.app_context():
            try:
                self._read(now, **families)
                up.add_metric([], 1)
            except Exception:  # a scrape must answer even when the database is down
                db.session.rollback()
                up.add_metric([], 0)
            finally:
                db.session.remove()
        yield up
        yield from families.values()

    @staticmethod
    def _read(now: datetime, *, depth: GaugeMetricFamily, age: GaugeMetricFamily,
              job_age: GaugeMetricFamily, job_fail: GaugeMetricFamily,
              lag: GaugeMetricFamily, model_age: GaugeMetricFamily,
              reactivated: GaugeMetricFamily) -> None:
        from plugin.models import AuditLog, JobRun, SyncState, WebhookDelivery

        W = WebhookDelivery
        for status, n in db.session.execute(
                sa.select(W.status, sa.func.count()).group_by(W.status)):
            depth.add_metric([status], n)
        oldest = db.session.scalar(sa.select(sa.func.min(W.received_at))
                                   .where(W.status.in_(("pending", "failed"))))
        age.add_metric([], _age(oldest, now) if oldest else 0.0)
        for job, last in db.session.execute(
                sa.select(JobRun.job, sa.func.max(JobRun.finished_at))
                .where(JobRun.status == "ok").group_by(JobRun.job)):
            job_age.add_metric([job], _age(_aware(last), now))
        for job, n in db.session.execute(
                sa.select(JobRun.job, sa.func.count())
                .where(JobRun.status.in_(("failed", "abandoned")),
                       JobRun.started_at >= now - timedelta(hours=24))
                .group_by(JobRun.job)):
            job_fail.add_metric([job], n)
        for s in db.session.scalars(sa.select(SyncState)):
            lag.add_metric([s.shop_id, s.resource], _age(s.watermark, now))
        for shop, finished in _model_times():
            model_age.add_metric([shop], _age(_aware(finished), now))
        for shop, n in db.session.execute(
                sa.select(AuditLog.shop_id, sa.func.count())
                .where(AuditLog.action == "install.webhooks_reactivated",
                       AuditLog.at >= now - timedelta(hours=24))
                .group_by(AuditLog.shop_id)):
            reactivated.add_metric([shop], n)


def _aware(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=utcnow().tzinfo)


def _model_times():
    from plugin.models import ModelVersion

    return db.session.execute(
        sa.select(ModelVersion.shop_id, sa.func.max(ModelVersion.finished_at))
        .where(ModelVersion.status == "ready").group_by(ModelVersion.shop_id)).all()


def init_app(app: Flask) -> None:
    """Time every request; expose /metrics."""
    collector = DatabaseCollector(app)
    app.extensions["shopkeeper_metrics_collector"] = collector

    @app.before_request
    def _start_timer():
        g._sk_started = time.perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        started = getattr(g, "_sk_started", None)
        if started is not None:
            REQUEST_LATENCY.labels(request.endpoint or "unmatched", request.method,
                                   str(response.status_code)).observe(
                time.perf_counter() - started)
        return response

    app.register_blueprint(bp)


@bp.get("/metrics")
@doc(summary="Prometheus metrics (a bearer token when METRICS_TOKEN is set)", tags=["meta"],
     content_type="text/plain", errors=(401,))
def metrics() -> Response:
    token = current_app.config.get("METRICS_TOKEN") or ""
    if token:  # the series name every shop and run aggregate queries: scrapers only
        offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(offered.encode(), token.encode()):
            raise Unauthorized("Metrics need the scrape token (Authorization: Bearer ...).")
    registry = CollectorRegistry()
    registry.register(current_app.extensions["shopkeeper_metrics_collector"])
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # gunicorn: aggregate all workers
        from prometheus_client import multiprocess

        process_registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(process_registry)
    else:
        process_registry = REGISTRY
    body = generate_latest(process_registry) + generate_latest(registry)
    return Response(body, mimetype="text/plain; version=0.0.4")
