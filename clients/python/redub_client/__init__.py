"""Typed Python client for the Redub video-dubbing API.

import redub_client
client = redub_client.Redub(api_key="rdb_…", base_url="https://api.example.com")
dub = client.dubs.create(video="talk.mp4", audio="https://…/french.m4a").wait()
dub.download("dubbed.mp4")
"""

from redub_client import webhooks
from redub_client._client import AsyncRedub, Redub
from redub_client._errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    RedubError,
    ServerError,
    Timeout,
)
from redub_client._version import __version__
from redub_client.dubs import AsyncDub, Dub
from redub_client.types import File, Model, PreflightData, Speaker, SpeakerBox, SpeakerPoint
from redub_client.webhooks import WebhookVerificationError

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "AsyncDub",
    "AsyncRedub",
    "AuthenticationError",
    "Dub",
    "File",
    "InvalidRequestError",
    "Model",
    "NotFoundError",
    "PreflightData",
    "RateLimitError",
    "Redub",
    "RedubError",
    "ServerError",
    "Speaker",
    "SpeakerBox",
    "SpeakerPoint",
    "Timeout",
    "WebhookVerificationError",
    "__version__",
    "webhooks",
]
