"""Connection settings for PostgreSQL that need no driver: Django's settings read them in
every process, SQLite ones too, and importing psycopg there costs a worker ~13 MB."""

from __future__ import annotations

#: libpq settings that make the kernel give up on a dead peer in seconds, not hours; a
#: DATABASE_URL that sets them wins.
TCP_OPTIONS = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",  # ms without an acknowledgement of data we sent
}
