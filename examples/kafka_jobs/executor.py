"""An executor of the fleet: consumes jobline's job messages and reports back.

It reads the ``jobs`` topic in a consumer group, takes the messages whose ``job_type`` is
``youtube_scraper``, runs them against a stub of the YouTube API (``fake_youtube.py``) and
reports through jobline's REST API: ``running`` first, then ``succeeded`` with the outputs,
or ``failed`` with the error. A message can arrive twice (at-least-once delivery); the
report of a job that already has its result answers 409, so a duplicate is skipped.

    JOBLINE_TOKEN=... python examples/kafka_jobs/executor.py [--api URL] [--topic jobs]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from typing import Literal

import aiohttp
from aiokafka import AIOKafkaConsumer
from fake_youtube import FakeYouTube
from pydantic import BaseModel, SecretStr

log = logging.getLogger("executor")

JOB_TYPE = "youtube_scraper"


class YouTubeJob(BaseModel):
    """The ``configs`` of a ``youtube_scraper`` message."""

    type: Literal["CHANNEL", "VIDEO"]
    id: str
    intention: str = ""
    google_api_key: SecretStr  # kept out of logs and reprs
    labelizer: bool = False


async def scrape(job: YouTubeJob) -> dict:
    """The job itself: look the channel or video up; label its videos if asked to."""
    api = FakeYouTube(job.google_api_key.get_secret_value())
    if job.type == "CHANNEL":
        channel = await api.channel(job.id)
        videos = [await api.video(v) for v in channel["videos"]]
        found = {"title": channel["title"], "subscribers": channel["subscribers"]}
    else:
        videos = [await api.video(job.id)]
        found = {"title": videos[0]["title"]}
    found["videos"] = [{"id": v["id"], "title": v["title"], "views": v["views"]} for v in videos]
    if job.labelizer:  # a stand-in for a model: label what matches the intention's words
        words = set(job.intention.lower().split())
        found["labels"] = {v["id"]: sorted(words & set(v["title"].lower().split())) for v in videos}
    return found


async def report(http: aiohttp.ClientSession, job_id: int, body: dict) -> bool:
    """POST the report; False when jobline has this job's result already (a duplicate)."""
    async with http.post(f"api/v1/jobs/{job_id}/report", json=body) as answer:
        if answer.status == 409:
            return False
        answer.raise_for_status()
        return True


async def handle(http: aiohttp.ClientSession, message: dict) -> None:
    job_id = message["id"]
    if not await report(http, job_id, {"status": "running"}):
        log.info("job %s: reported already, duplicate skipped", job_id)
        return
    try:
        outputs = await scrape(YouTubeJob.model_validate(message["configs"]))
    except Exception as exc:  # the job failed, not the executor: jobline records why
        log.warning("job %s failed: %s", job_id, exc)
        await report(http, job_id, {"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
        return
    await report(http, job_id, {"status": "succeeded", "outputs": outputs})
    log.info("job %s (%s) succeeded", job_id, message["title"])


async def run(args: argparse.Namespace) -> None:
    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap.replace(",", " ").split(),
        group_id=args.group,
        enable_auto_commit=False,  # an offset is committed once its job is reported
        auto_offset_reset="earliest",
    )
    headers = {"Authorization": f"Bearer {args.token}"}
    async with aiohttp.ClientSession(args.api.rstrip("/") + "/", headers=headers) as http:
        await consumer.start()
        log.info("consuming %s from %s as group %s", args.topic, args.bootstrap, args.group)
        try:
            async for record in consumer:
                message = json.loads(record.value)
                if message.get("job_type") == JOB_TYPE:
                    await handle(http, message)
                await consumer.commit()
        finally:
            await consumer.stop()


def main() -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default=env("JOBLINE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=env("JOBLINE_TOKEN"), help="or JOBLINE_TOKEN")
    parser.add_argument("--bootstrap", default=env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    parser.add_argument("--topic", default=env("KAFKA_TOPIC", "jobs"))
    parser.add_argument("--group", default="youtube-executors")
    args = parser.parse_args()
    if not args.token:
        parser.error("an API token is needed: --token or JOBLINE_TOKEN (jobline token create)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
