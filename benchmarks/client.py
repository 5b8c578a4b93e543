"""The load client shared by the benchmarks: aiohttp against a chat endpoint.

Either Rasa's REST webhook (`POST /webhooks/rest/webhook` → a list of messages) or
safe-report's web app (`POST /api/chat` → `{"messages": [...]}`, the path the page and
the widget use).

The same client and the same messages go to safe-report and to the stock assistant, so
the figures differ only by the server. Each simulated user has a fresh random sender id
and sends its messages one after the other, waiting for each answer (as a person does);
users run concurrently.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field

import aiohttp

# A realistic triage conversation: greeting, a domestic-abuse disclosure with an
# immigration threat, the triage form, knowledge questions, a handoff that is declined,
# thanks and goodbye. 14 messages.
TRIAGE_CONVERSATION = [
    "hello",
    "my husband hits me and says he will get me deported if I tell anyone",
    "yes I am safe right now",
    "I live in England",
    "will the police tell the Home Office about my visa?",
    "what is a non-molestation order?",
    "can I get legal aid?",
    "I want to talk to a person",
    "no thanks, not now",
    "what happens if I report it to the police?",
    "is this chat private?",
    "are you a robot?",
    "thank you, that helps",
    "bye",
]


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, per answered message
    errors: int = 0
    empty: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    wall: float = 0.0
    replies: dict[str, list[list[dict]]] = field(default_factory=dict)  # sender -> answers

    @property
    def messages(self) -> int:
        return len(self.latencies) + self.errors

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0

    def p(self, fraction: float) -> float:
        return percentile(self.latencies, fraction) * 1000  # ms

    def summary(self) -> dict[str, float]:
        return {
            "messages": self.messages,
            "errors": self.errors,
            "empty": self.empty,
            "p50_ms": self.p(0.50),
            "p95_ms": self.p(0.95),
            "max_ms": max(self.latencies, default=0.0) * 1000,
            "throughput_msg_s": self.throughput,
            "wall_s": self.wall,
        }

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


async def converse(
    session: aiohttp.ClientSession,
    url: str,
    messages: list[str],
    result: Result,
    sender: str | None = None,
    timeout: float = 120,
) -> None:
    """One user: the messages in order, each after the previous answer."""
    sender = sender or secrets.token_hex(16)
    answers = result.replies.setdefault(sender, [])
    for message in messages:
        started = time.perf_counter()
        try:
            async with session.post(
                url, json={"sender": sender, "message": message},
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                body = await response.json(content_type=None)
                elapsed = time.perf_counter() - started
                if isinstance(body, dict):  # safe-report's /api/chat: {"messages": [...]}
                    body = body.get("messages")
                if response.status != 200 or not isinstance(body, list):
                    result.error(f"http {response.status}")
                    answers.append([])
                    continue
                if not body:
                    result.empty += 1  # answered, but with nothing to show
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            result.error(type(error).__name__)
            answers.append([])
            continue
        result.latencies.append(elapsed)
        answers.append(body)


async def _run(url: str, messages: list[str], users: int, rounds: int) -> Result:
    result = Result()
    connector = aiohttp.TCPConnector(limit=max(users, 1) * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        for _ in range(rounds):
            await asyncio.gather(*(converse(session, url, messages, result) for _ in range(users)))
        result.wall = time.perf_counter() - started
    return result


def single_user(url: str, messages: list[str] = TRIAGE_CONVERSATION, rounds: int = 5) -> Result:
    """`rounds` conversations by one user after another: latency without contention."""
    return asyncio.run(_run(url, messages, users=1, rounds=rounds))


def concurrent_users(url: str, messages: list[str] = TRIAGE_CONVERSATION, users: int = 20) -> Result:
    """`users` conversations at once: throughput and latency under load."""
    return asyncio.run(_run(url, messages, users=users, rounds=1))


def warm_up(url: str, messages: list[str] = TRIAGE_CONVERSATION) -> Result:
    """One conversation, not counted: loads lazy models and fills caches."""
    return asyncio.run(_run(url, messages, users=1, rounds=1))
