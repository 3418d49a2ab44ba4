"""The real HTTP client behind HttpRequestAction (httpx); tests use a recording fake instead."""

from __future__ import annotations

from collections.abc import Mapping

import httpx


class HttpxClient:
    """Outbound requests for topics, with one pooled connection set per process."""

    def __init__(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False)

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: str | None, timeout_seconds: float
    ) -> tuple[int, str]:
        """Send; a timeout surfaces as ``TimeoutError`` and a network failure as ``OSError``."""
        try:
            response = await self._client.request(
                method, url, headers=dict(headers), content=body, timeout=timeout_seconds
            )
        except httpx.TimeoutException as error:
            raise TimeoutError(str(error)) from error
        except httpx.TransportError as error:
            raise OSError(str(error)) from error
        return response.status_code, response.text

    async def close(self) -> None:
        """Close pooled connections."""
        await self._client.aclose()
