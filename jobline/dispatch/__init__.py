"""Built-in job types that reach other services: ``http`` (call a URL) and ``kafka``.

Both are ordinary job types, so they get what every job gets: schedules, retries with
backoff, timeouts, terminate, the admin and the API. Their clients (one HTTP client and
one Kafka producer) are shared by all the jobs of a worker.
"""
