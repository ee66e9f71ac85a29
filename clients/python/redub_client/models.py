"""`client.models`: the models a dub can name (`GET /v1/models`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redub_client.types import Model

if TYPE_CHECKING:
    from redub_client._transport import AsyncTransport, SyncTransport


def _models(page: Any) -> list[Model]:
    return [Model.model_validate(item) for item in page.get("data", [])]


class Models:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def list(self) -> list[Model]:
        return _models(self._transport.request("GET", "/v1/models").json())


class AsyncModels:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def list(self) -> list[Model]:
        return _models((await self._transport.request("GET", "/v1/models")).json())
