"""Check a running Prometheus against the dashboard and the alert rules, as Grafana would.

    python3 scripts/check_monitoring.py PROMETHEUS_URL DASHBOARD_JSON [--rules ALERTS_YML]

Waits until Prometheus is ready and scrapes at least one target of each job (the API
and the workers); runs every panel's PromQL over the last `--range` seconds, as a
dashboard of that range would, and requires each panel to show data (a point that is
a number, not NaN); then requires every alert rule of the rules file to be loaded and
healthy. Grafana's interval variables are replaced with fixed windows. The standard
library only, so it runs with any Python 3.11 on the host. Exits non-zero on a failure.
"""

import argparse
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# Grafana's own variables, as a dashboard of a few minutes would set them.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "10s",
    "$__range": "15m",
}
SCRAPE_JOBS = ("durable-jobs-api", "durable-jobs-worker")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prometheus", help="base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("dashboard", type=Path, help="the Grafana dashboard JSON")
    parser.add_argument("--rules", type=Path, default=Path("monitoring/prometheus/alerts.yml"))
    parser.add_argument("--range", type=float, default=900, help="seconds of history to read")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for data")
    args = parser.parse_args()
    prometheus = Prometheus(args.prometheus.rstrip("/"))
    deadline = time.monotonic() + args.timeout

    wait(deadline, "Prometheus to be ready", prometheus.ready)
    wait(deadline, f"a target of each job up ({', '.join(SCRAPE_JOBS)})", prometheus.jobs_up)
    say("targets up: " + ", ".join(f"{job} {n}" for job, n in sorted(prometheus.up().items())))

    panels = json.loads(args.dashboard.read_text())["panels"]
    failures = []
    for panel in panels:
        title = panel["title"]
        found = wait_or_none(deadline, partial(panel_has_data, prometheus, panel, args.range))
        if found is None:
            failures.append(f"panel {title!r}: no data")
            say(f"FAIL {title}: no query returned a number")
            for target in panel["targets"]:
                say(f"       {target['expr']}")
        else:
            say(f"ok   {title}: {found}")

    expected = alert_names(args.rules)
    loaded = prometheus.alert_rules()
    for name in expected:
        health = loaded.get(name)
        if health != "ok":
            failures.append(f"alert rule {name}: {health or 'not loaded'}")
    healthy = sum(loaded.get(name) == "ok" for name in expected)
    say(f"alert rules loaded and healthy: {healthy} of {len(expected)} ({', '.join(expected)})")

    for failure in failures:
        say(f"check_monitoring: FAIL: {failure}")
    return 1 if failures else 0


class Prometheus:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.base_url}{path}{query}", timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as refused:
            # A query Prometheus refuses (400, 422) is the dashboard's error: no waiting.
            detail = refused.read().decode(errors="replace")
            raise RuntimeError(f"{path} {params}: {detail}") from refused
        if body.get("status") != "success":
            raise RuntimeError(f"{path}: {body.get('error', body)}")
        return body["data"]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/-/ready", timeout=5) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def up(self) -> dict[str, int]:
        counts = dict.fromkeys(SCRAPE_JOBS, 0)
        for target in self.get("/api/v1/targets")["activeTargets"]:
            job = target["labels"].get("job", "")
            if target["health"] == "up":
                counts[job] = counts.get(job, 0) + 1
        return counts

    def jobs_up(self) -> bool:
        up = self.up()
        return all(up.get(job, 0) > 0 for job in SCRAPE_JOBS)

    def query_range(self, expr: str, seconds: float) -> list[dict[str, Any]]:
        end = time.time()
        data = self.get(
            "/api/v1/query_range",
            query=expr,
            start=f"{end - seconds:.3f}",
            end=f"{end:.3f}",
            step="10",
        )
        return list(data["result"])

    def alert_rules(self) -> dict[str, str]:
        rules = {}
        for group in self.get("/api/v1/rules", type="alert")["groups"]:
            for rule in group["rules"]:
                rules[rule["name"]] = rule.get("health", "unknown")
        return rules


def panel_has_data(prometheus: Prometheus, panel: dict[str, Any], seconds: float) -> str | None:
    """A summary of what the panel's queries return, or None when none returns a number.

    A query that Prometheus refuses fails the check at once."""
    summaries = []
    for target in panel["targets"]:
        expr = grafana_to_promql(target["expr"])
        result = prometheus.query_range(expr, seconds)
        points = [float(value) for series in result for _, value in series["values"]]
        numbers = [p for p in points if not math.isnan(p)]
        summaries.append(f"{target.get('legendFormat', expr)}: {len(result)} series")
        if numbers:
            summaries[-1] += f", last {numbers[-1]:g}"
    if not any(", last " in summary for summary in summaries):
        return None
    return "; ".join(summaries)


def grafana_to_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def alert_names(rules_file: Path) -> list[str]:
    """The alerts a rules file declares (read as text: no YAML library needed)."""
    return re.findall(r"^\s*- alert:\s*(\S+)\s*$", rules_file.read_text(), flags=re.MULTILINE)


def wait(deadline: float, what: str, condition: Callable[[], bool]) -> None:
    if wait_or_none(deadline, lambda: True if condition() else None) is None:
        raise SystemExit(f"check_monitoring: FAIL: timed out waiting for {what}")


def wait_or_none(deadline: float, attempt: Callable[[], T | None]) -> T | None:
    """Call `attempt` until it returns something other than None, or the deadline passes."""
    while True:
        try:
            found = attempt()
        except (urllib.error.URLError, OSError):
            found = None
        if found is not None or time.monotonic() >= deadline:
            return found
        time.sleep(2)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
