"""Running the service: who holds the scheduler lease, and what each job run did."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from plugin.extensions import db
from plugin.models.types import UTCDateTime, utcnow


class SchedulerLease(db.Model):
    """A named lease: only its holder runs scheduled jobs; it expires unless renewed."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # one more each time the lease changes holder: the fencing token a job's commits check
    # (``lease.fence``), so a worker that lost the lease mid-unit commits nothing
    generation: Mapped[int] = mapped_column(default=0, server_default="0")


class JobRun(db.Model):
    """One execution of a scheduled job (durations and failures for metrics and admin)."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    # the scheduler lease's holder id (``scheduler_leases.holder``) that ran it
    worker: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # running|ok|failed|abandoned|lease_lost (its worker lost the scheduler lease mid-job)
    # |lease_busy (a commit's fence found the lease row locked too long: stopped, rerun)
    status: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # renewed on the database's clock while the job runs: a run whose worker was killed
    # stops renewing it and is recorded as abandoned (``plugin.jobs.mark_abandoned_runs``)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_job_runs_job_started", "job", "started_at"),)
