"""The event store: page views in a DynamoDB table, read back by time window.

An item's partition key is its UTC day and its sort key ``"<timestamp>#<request id>"``, so a
window is one Query per day it touches rather than a Scan of the whole table. Timestamps are
fixed-width ISO 8601 strings to the millisecond, so they sort as text in time order.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from django.conf import settings

EVENTS_FILE = Path(__file__).resolve().parent.parent / "events.csv"


def stamp(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def table() -> Any:
    dynamodb = boto3.resource(
        "dynamodb",
        endpoint_url=settings.DYNAMODB_ENDPOINT_URL,
        region_name=settings.DYNAMODB_REGION,
    )
    return dynamodb.Table(settings.DYNAMODB_TABLE)


def create_table() -> None:
    """Create the table unless it exists (on-demand capacity: nothing to size)."""
    t = table()
    client = t.meta.client
    if settings.DYNAMODB_TABLE in client.list_tables()["TableNames"]:
        return
    client.create_table(
        TableName=settings.DYNAMODB_TABLE,
        KeySchema=[
            {"AttributeName": "day", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "day", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=settings.DYNAMODB_TABLE)


def read_file(path: Path = EVENTS_FILE) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def put_events(rows: Iterable[dict[str, str]], shift: timedelta = timedelta(0)) -> int:
    """Write the events, their timestamps moved by ``shift``; returns how many.

    The same request id on the same day overwrites its item, so loading twice is harmless.
    """
    count = 0
    with table().batch_writer(overwrite_by_pkeys=["day", "sk"]) as batch:
        for row in rows:
            ts = stamp(parse_stamp(row["timestamp"]) + shift)
            batch.put_item(
                Item={
                    "day": ts[:10],
                    "sk": f"{ts}#{row['request_id']}",
                    "request_id": row["request_id"],
                    "visitor_id": row["visitor_id"],
                    "page": row["page"],
                    "timestamp": ts,
                }
            )
            count += 1
    return count


def events_between(start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """The events at or after ``start`` and before ``end`` (to the millisecond)."""
    low, high = stamp(start), stamp(end)
    day = start.astimezone(UTC).date()
    last_day = (end - timedelta(milliseconds=1)).astimezone(UTC).date()
    t = table()
    while day <= last_day:
        # BETWEEN is inclusive, but an event at exactly `end` has the sort key
        # "<end>#<request id>", which sorts after "<end>": the window stays half-open.
        query = {
            "KeyConditionExpression": Key("day").eq(day.isoformat()) & Key("sk").between(low, high)
        }
        while True:
            page = t.query(**query)
            yield from page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        day += timedelta(days=1)
