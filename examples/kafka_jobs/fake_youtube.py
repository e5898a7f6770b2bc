"""A stand-in for the YouTube Data API, in process: the example runs with no internet.

It answers the two look-ups the scraper makes, from canned data, and refuses keys that do
not look like Google API keys, as the real API would with ``API key not valid``.
"""

from __future__ import annotations

CHANNELS = {
    "UC_jobline_demo": {
        "title": "Jobline Demo Channel",
        "subscribers": 12_400,
        "videos": ["vid-queue-101", "vid-kafka-202", "vid-cron-303"],
    },
}
VIDEOS = {
    "vid-queue-101": {"title": "Database queues explained", "views": 5_310},
    "vid-kafka-202": {"title": "Kafka job messages for a fleet", "views": 8_020},
    "vid-cron-303": {"title": "Cron schedules and time zones", "views": 2_970},
}


class ApiError(Exception):
    """What the API answers instead of data (a bad key, an unknown id)."""


class FakeYouTube:
    def __init__(self, api_key: str):
        if not api_key.startswith("AIza") or len(api_key) < 20:
            raise ApiError("400 API key not valid. Please pass a valid API key.")

    async def channel(self, channel_id: str) -> dict:
        if channel_id not in CHANNELS:
            raise ApiError(f"404 channel {channel_id!r} not found")
        return {"id": channel_id, **CHANNELS[channel_id]}

    async def video(self, video_id: str) -> dict:
        if video_id not in VIDEOS:
            raise ApiError(f"404 video {video_id!r} not found")
        return {"id": video_id, **VIDEOS[video_id]}
