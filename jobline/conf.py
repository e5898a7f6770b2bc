"""jobline's settings, read from Django settings with documented defaults."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "JOBLINE_WORKER_CONCURRENCY": 100,  # jobs one worker process runs at once
    "JOBLINE_SYNC_THREADS": 16,  # threads for sync (non-async) jobs
    "JOBLINE_CLAIM_BATCH": 500,  # most jobs claimed in one query
    "JOBLINE_LEASE_SECONDS": 30.0,  # a worker silent this long is presumed dead
    "JOBLINE_HEARTBEAT_SECONDS": 5.0,
    "JOBLINE_POLL_SECONDS": 1.0,  # longest idle wait without a wake-up (a lost notification)
    "JOBLINE_SHUTDOWN_GRACE_SECONDS": 30.0,  # time running jobs get on SIGTERM
    # What running jobs report (jobline.current_job().progress, captured logs).
    "JOBLINE_PROGRESS_SECONDS": 0.5,  # at most one progress write per job per this many seconds
    "JOBLINE_JOB_LOG_MAX_LINES": 1000,  # log lines kept per job attempt: the tail
    "JOBLINE_JOB_LOG_MAX_BYTES": 262144,  # bytes of log text kept per job attempt: the tail
    "JOBLINE_CAPTURE_PRINTS": False,  # jobs' print() output goes to their logs too
    # Retention (jobline.services.retention): days finished rows are kept; 0 keeps them forever.
    "JOBLINE_RETENTION_SUCCEEDED": 7.0,  # succeeded jobs and pipeline runs
    "JOBLINE_RETENTION_FAILED": 30.0,
    "JOBLINE_RETENTION_CANCELLED": 30.0,
    "JOBLINE_RETENTION_SCHEDULE_RUNS": 30.0,  # schedules' history entries
    "JOBLINE_PRUNE_INTERVAL": 600.0,  # seconds between a scheduler's prune passes; 0: never
    "JOBLINE_PRUNE_BATCH": 2000,  # rows removed per transaction
    # http jobs: CIDRs they may reach besides public addresses ("127.0.0.0/8 10.1.0.0/16"),
    # and the secrets that ``sign_with`` names ({"name": "secret"} or "name=secret ...").
    "JOBLINE_HTTP_ALLOWED_NETWORKS": "",
    "JOBLINE_HTTP_SIGNING_SECRETS": {},
    # kafka jobs. Disabled, they log their message instead of sending it.
    "JOBLINE_KAFKA_ENABLED": False,
    "JOBLINE_KAFKA_BOOTSTRAP_SERVERS": "localhost:9092",  # "host:port host:port"
    "JOBLINE_KAFKA_TOPIC": "jobs",  # when the job names no topic
    "JOBLINE_KAFKA_IDEMPOTENT": True,  # idempotent producer (needs broker support)
    "JOBLINE_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",  # SSL, SASL_PLAINTEXT, SASL_SSL
    "JOBLINE_KAFKA_SASL_MECHANISM": "PLAIN",  # SCRAM-SHA-256, SCRAM-SHA-512
    "JOBLINE_KAFKA_SASL_USERNAME": "",
    "JOBLINE_KAFKA_SASL_PASSWORD": "",
    "JOBLINE_KAFKA_SSL_CAFILE": "",  # default: the system's CA certificates
    "JOBLINE_KAFKA_SSL_CERTFILE": "",  # client certificate, for mutual TLS
    "JOBLINE_KAFKA_SSL_KEYFILE": "",
    # Event subscriptions (jobline.services.subscriptions): the relay's poll and batch, and
    # the AMQP broker of amqp subscriptions.
    "JOBLINE_EVENTS_POLL_SECONDS": 1.0,
    "JOBLINE_EVENTS_BATCH": 500,
    "JOBLINE_AMQP_URL": "amqp://guest:guest@localhost:5672/",
}


def get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])
