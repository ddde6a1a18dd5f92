"""Signed webhook POSTs of any channel, sent concurrently, and how the engine answered each."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from api.demo.errors import DemoError
from engine.events import ChannelType


@dataclass(frozen=True)
class Post:
    """One webhook as the provider would send it, signature included.

    `message_ids` are the provider ids of the customer messages in it: each must become
    exactly one message, however often it is delivered.
    """

    channel: ChannelType
    label: str
    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    message_ids: tuple[str, ...] = ()
    expect_status: int = 200


@dataclass(frozen=True)
class Answer:
    """How the engine answered one POST (`stored`/`duplicates` as its JSON body reports;
    Twilio's webhooks are answered with TwiML, which reports neither)."""

    post: Post
    status_code: int
    stored: int = 0
    duplicates: int = 0

    @property
    def accepted(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def as_expected(self) -> bool:
        return self.status_code == self.post.expect_status


async def _send(client: httpx.AsyncClient, post: Post, gate: asyncio.Semaphore) -> Answer:
    async with gate:
        try:
            response = await client.post(post.url, content=post.body, headers=dict(post.headers))
        except httpx.HTTPError as exc:
            raise DemoError(f"POST {post.url} failed: {type(exc).__name__}") from None
    if not response.is_success or "json" not in response.headers.get("content-type", ""):
        return Answer(post, response.status_code)
    answer = response.json()
    return Answer(post, response.status_code, int(answer["stored"]), int(answer["duplicates"]))


def post_all(posts: Sequence[Post], *, rng: random.Random, concurrency: int = 8) -> list[Answer]:
    """POST every webhook at once (at most `concurrency` in flight) in shuffled order.

    The answers come back in the order of `posts`.
    """
    order = list(range(len(posts)))
    rng.shuffle(order)

    async def run() -> list[Answer]:
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(timeout=30) as client:
            sent = await asyncio.gather(*(_send(client, posts[i], gate) for i in order))
        answers: list[Answer | None] = [None] * len(posts)
        for i, answer in zip(order, sent, strict=True):
            answers[i] = answer
        return [a for a in answers if a is not None]

    return asyncio.run(run())
