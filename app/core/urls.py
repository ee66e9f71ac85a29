"""Customer URLs (media and webhooks) as the API admits them, under this deployment's settings."""

from __future__ import annotations

from app.core.config import get_settings
from app.core.fetch import vet_url


def vet_customer_url(url: str) -> None:
    """Raise FetchError unless the worker may fetch (or post to) `url`; name resolution is bounded by
    `DNS_TIMEOUT_S`, and a host that cannot be used gets one answer whatever the reason."""
    settings = get_settings()
    hint = (
        ""
        if settings.allow_private_urls or settings.environment == "production"
        else " Private and loopback addresses are allowed in development with REDUB_ALLOW_PRIVATE_URLS=true."
    )
    vet_url(url, allow_private=settings.allow_private_urls, dns_timeout_s=settings.dns_timeout_s, hint=hint)
