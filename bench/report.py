"""The results table: medians with their range over repetitions, ratios and targets."""

import statistics
from dataclasses import dataclass
from typing import Any

Results = dict[str, dict[str, dict[str, list[float]]]]


@dataclass(frozen=True)
class Row:
    scenario: str
    metric: str
    a: list[float]
    b: list[float]
    # ">=" or "<=" and a bound for the ratio A/B; "=0" asks both A and B to be zero.
    target: tuple[str, float] | None = None
    show_ratio: bool = True

    @property
    def ratio(self) -> float | None:
        if not (self.show_ratio and self.a and self.b):
            return None
        b = statistics.median(self.b)
        return statistics.median(self.a) / b if b else None

    @property
    def met(self) -> bool | None:
        if self.target is None or not (self.a and self.b):
            return None
        op, bound = self.target
        if op == "=0":
            return max(self.a + self.b) == 0
        ratio = self.ratio
        if ratio is None:
            return None
        return ratio >= bound if op == ">=" else ratio <= bound

    def target_text(self) -> str:
        if self.target is None:
            return ""
        op, bound = self.target
        text = "0 errors" if op == "=0" else f"A/B {'≥' if op == '>=' else '≤'} {bound:g}"
        met = self.met
        return text if met is None else f"{text} {'✅' if met else '❌'}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "metric": self.metric,
            "a": summarize(self.a),
            "b": summarize(self.b),
            "ratio": self.ratio,
            "target": self.target_text() or None,
            "met": self.met,
        }


def summarize(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"median": None, "min": None, "max": None, "values": []}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def fmt(values: list[float]) -> str:
    if not values:
        return "–"
    median = statistics.median(values)
    digits = 0 if median >= 100 or median == int(median) else 1 if median >= 10 else 2
    text = f"{median:,.{digits}f}"
    if len(values) > 1 and min(values) != max(values):
        text += f" ({min(values):,.{digits}f}–{max(values):,.{digits}f})"
    return text


def build_rows(results: Results) -> list[Row]:
    def get(scenario: str, variant: str, metric: str) -> list[float]:
        return results.get(scenario, {}).get(variant, {}).get(metric, [])

    rows: list[Row] = []
    tp = "1 Throughput"
    rows += [
        Row(tp, "enqueue jobs/s: durable vs raw", *_pair(get, "throughput", "enqueue_per_s")),
        Row(
            tp,
            "end-to-end jobs/s: durable vs raw",
            *_pair(get, "throughput", "e2e_per_s"),
            target=(">=", 0.9),
        ),
        Row(
            tp,
            "end-to-end jobs/s: raw via DurableTask (untracked) vs raw",
            get("throughput", "raw_untracked", "e2e_per_s"),
            get("throughput", "raw", "e2e_per_s"),
        ),
    ]
    lat = "2 Latency"
    for metric in ("p50_ms", "p99_ms"):
        name = metric.removesuffix("_ms")
        rows += [
            Row(lat, f"enqueue→start {name} ms: durable vs raw", *_pair(get, "latency", metric)),
            Row(
                lat,
                f"enqueue→start {name} ms: raw via DurableTask vs raw",
                get("latency", "raw_untracked", metric),
                get("latency", "raw", metric),
            ),
        ]
    rows += _api_rows(
        get, "3 API load", "api", ("with_enqueue", "without_enqueue"), "with vs without enqueue"
    )
    down = "4 Broker down"
    rows += _api_rows(get, down, "broker_down", ("broker_down", "broker_up"), "broker down vs up")
    rows += [
        Row(
            down,
            "jobs left in the outbox for the relay: down vs up",
            get("broker_down", "broker_down", "left_for_relay"),
            get("broker_down", "broker_up", "left_for_relay"),
            show_ratio=False,
        ),
    ]
    back = "5 Backlog"
    for endpoint, title in (("health", "GET /health"), ("users", "POST /users")):
        for metric in ("p50", "p99", "max"):
            rows.append(
                Row(
                    back,
                    f"{title} {metric} ms: draining backlog vs idle",
                    get("backlog", "backlog", f"{endpoint}_{metric}_ms"),
                    get("backlog", "idle", f"{endpoint}_{metric}_ms"),
                    target=("<=", 1.2) if metric == "p99" else None,
                )
            )
    rows += [
        Row(
            back,
            "errors (both endpoints): backlog vs idle",
            _errors(get, "backlog"),
            _errors(get, "idle"),
            target=("=0", 0),
            show_ratio=False,
        ),
        Row(
            back,
            "jobs queued: at the start vs at the end of a backlog phase",
            get("backlog", "backlog", "queued_at_start"),
            get("backlog", "backlog", "queued_at_end"),
            show_ratio=False,
        ),
        Row(
            back,
            "backlog drain jobs/s under API load (A) vs durable end-to-end (B)",
            get("backlog", "backlog", "drain_per_s"),
            get("throughput", "durable", "e2e_per_s"),
        ),
    ]
    floor = "6 Floor"
    rows += [
        Row(
            floor,
            "Redis msgs/s: LPUSH/BRPOP loop vs pipelined (100/batch)",
            get("floor", "loop", "per_s"),
            get("floor", "pipelined", "per_s"),
        ),
        Row(
            floor,
            "end-to-end jobs/s: raw Celery vs Redis loop",
            get("throughput", "raw", "e2e_per_s"),
            get("floor", "loop", "per_s"),
        ),
        Row(
            floor,
            "end-to-end jobs/s: durable vs Redis loop",
            get("throughput", "durable", "e2e_per_s"),
            get("floor", "loop", "per_s"),
        ),
    ]
    limits = "7 Limits"
    rows += [
        Row(
            limits,
            f"end-to-end jobs/s: {variant} limit vs unlimited",
            get("limits", variant, "e2e_per_s"),
            get("limits", "unlimited", "e2e_per_s"),
        )
        for variant in ("concurrency", "rate")
    ]
    return [row for row in rows if row.a]


def _api_rows(
    get: Any, group: str, scenario: str, variants: tuple[str, str], label: str
) -> list[Row]:
    """POST /users latency (p99 against its 1.2x target) and errors, A vs B."""
    a, b = variants
    rows = [
        Row(
            group,
            f"POST /users {title}: {label}",
            get(scenario, a, metric),
            get(scenario, b, metric),
            target=("<=", 1.2) if metric == "p99_ms" else None,
        )
        for metric, title in (("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("max_ms", "max ms"))
    ]
    errors = Row(
        group,
        f"errors: {label}",
        get(scenario, a, "errors"),
        get(scenario, b, "errors"),
        target=("=0", 0),
        show_ratio=False,
    )
    return [*rows, errors]


def _pair(get: Any, scenario: str, metric: str) -> tuple[list[float], list[float]]:
    return get(scenario, "durable", metric), get(scenario, "raw", metric)


def _errors(get: Any, variant: str) -> list[float]:
    health, users = (
        get("backlog", variant, "health_errors"),
        get("backlog", variant, "users_errors"),
    )
    return [x + y for x, y in zip(health, users, strict=True)]


def markdown(rows: list[Row], labels: dict[str, str]) -> str:
    lines = [
        "| Scenario | Metric (A vs B) | A | B | A/B | Target |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        ratio = row.ratio
        lines.append(
            f"| {row.scenario} | {row.metric} | {fmt(row.a)} | {fmt(row.b)} | "
            f"{'' if ratio is None else f'{ratio:.2f}'} | {row.target_text()} |"
        )
    lines.append("")
    lines += [f"- {number} {name}: {text}" for number, (name, text) in enumerate(labels.items(), 1)]
    return "\n".join(lines) + "\n"
