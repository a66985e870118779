"""Open-loop HTTP load from its own process, printing one JSON report to stdout.

    python -m bench.load http://127.0.0.1:8000 --target POST:/api/v1/users:100 --seconds 15

Request i of a target is due at start + i/rate whether or not earlier ones have
answered, and its latency counts from that due time: a slow server shows up as
latency instead of as fewer requests (no coordinated omission).
"""

import argparse
import asyncio
import json
import math
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from tests.support.stats import percentile


@dataclass
class Target:
    method: str
    path: str
    rate: float
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    max_send_lag: float = 0.0

    @classmethod
    def parse(cls, text: str) -> "Target":
        method, path, rate = text.rsplit(":", 2)
        if method not in ("GET", "POST"):
            raise argparse.ArgumentTypeError(f"unsupported method {method!r}")
        return cls(method, path, float(rate))

    def report(self, seconds: float) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "method": self.method,
            "path": self.path,
            "rate": self.rate,
            "requests": len(ordered) + sum(self.errors.values()),
            "ok": len(ordered),
            "errors": sum(self.errors.values()),
            "error_kinds": self.errors,
            "achieved_rate": (len(ordered) + sum(self.errors.values())) / seconds,
            "p50_ms": percentile(ordered, 0.50) * 1000,
            "p99_ms": percentile(ordered, 0.99) * 1000,
            "max_ms": (ordered[-1] if ordered else math.nan) * 1000,
            "mean_ms": (sum(ordered) / len(ordered) if ordered else math.nan) * 1000,
            "max_send_lag_ms": self.max_send_lag * 1000,
        }


async def _request(
    client: httpx.AsyncClient, target: Target, due: float, measured: bool, tag: str
) -> None:
    error: str | None = None
    try:
        if target.method == "POST":
            email = f"{tag}-{uuid.uuid4().hex[:12]}@example.com"
            response = await client.post(target.path, json={"email": email, "full_name": "Bench"})
        else:
            response = await client.get(target.path)
        if response.status_code >= 300:
            error = f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        error = type(exc).__name__
    latency = time.perf_counter() - due
    if not measured:
        return
    if error is None:
        target.latencies.append(latency)
    else:
        target.errors[error] = target.errors.get(error, 0) + 1


async def run(base_url: str, targets: list[Target], seconds: float, warmup: float) -> None:
    tag = f"load-{uuid.uuid4().hex[:8]}"
    total = warmup + seconds
    schedule = sorted(
        ((i / t.rate, t) for t in targets for i in range(int(t.rate * total))),
        key=lambda item: item[0],
    )
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        start = time.perf_counter()
        pending: list[asyncio.Task[None]] = []
        for offset, target in schedule:
            due = start + offset
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif offset >= warmup:
                target.max_send_lag = max(target.max_send_lag, -delay)
            measured = offset >= warmup
            pending.append(asyncio.create_task(_request(client, target, due, measured, tag)))
        await asyncio.gather(*pending)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("--target", type=Target.parse, action="append", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(run(args.base_url, args.target, args.seconds, args.warmup))
    report = [target.report(args.seconds) for target in args.target]
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
