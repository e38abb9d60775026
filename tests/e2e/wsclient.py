"""Minimal real WebSocket clients for both GraphQL subscription protocols (websockets lib)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


class TransportWS:
    """graphql-transport-ws (the graphql-ws library's protocol)."""

    protocol = "graphql-transport-ws"

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.ws.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        return await self.recv()

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] not in ("ping", "pong", "ka"):
                return message
            if message["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self.next_id += 1
        op_id = str(self.next_id)
        await self.ws.send(json.dumps({"id": op_id, "type": self.start_type, "payload": {
            "query": query, "variables": variables or {}}}))
        return op_id

    start_type = "subscribe"

    async def complete(self, op_id: str) -> None:
        await self.ws.send(json.dumps({"id": op_id, "type": "complete"}))


class LegacyWS(TransportWS):
    """The legacy subscriptions-transport-ws protocol (graphql-ws)."""

    protocol = "graphql-ws"
    start_type = "start"

    async def complete(self, op_id: str) -> None:
        await self.ws.send(json.dumps({"id": op_id, "type": "stop"}))


@asynccontextmanager
async def ws_client(url: str, cls: type[TransportWS] = TransportWS,
                    **headers: str) -> AsyncIterator[TransportWS]:
    ws_url = url.replace("http://", "ws://") + "/graphql"
    async with connect(ws_url, subprotocols=[cls.protocol],  # type: ignore[list-item]
                       additional_headers=headers or None) as ws:
        yield cls(ws)
