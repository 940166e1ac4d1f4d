"""The Grafana dashboard (compose/grafana/gpuq.json) reads only metrics and labels that /metrics exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scheduler.jobs.models import Job

DASHBOARD = Path(__file__).resolve().parent.parent / "compose" / "grafana" / "gpuq.json"
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
RANGE = re.compile(r"\[[^\]]*\]")
# A name not followed by "(" (that is a function), with its label matchers if it has any.
SELECTOR = re.compile(r"\b([a-zA-Z_:][\w:]*)\b(?!\s*\()(\{[^}]*\})?")
MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
LABEL_VALUES = re.compile(r"label_values\((\w+),\s*(\w+)\)")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def expressions(board: dict) -> list[str]:
    """Every panel query, and each template variable's `label_values(metric, label)` as `metric{label=""}`."""
    exprs = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    variables = [v["definition"] for v in board["templating"]["list"] if v["type"] == "query"]
    return exprs + [LABEL_VALUES.sub(r'\1{\2=""}', v) for v in variables]


def reads(expr: str) -> tuple[dict[str, set[str]], set[str]]:
    """The metrics an expression reads, each with the labels its matchers name, and the labels it groups by."""
    grouped = {label.strip() for group in GROUPING.findall(expr) for label in group.split(",") if label.strip()}
    metrics: dict[str, set[str]] = {}
    for name, matchers in SELECTOR.findall(RANGE.sub("", GROUPING.sub("", expr))):
        if name not in KEYWORDS:
            metrics.setdefault(name, set()).update(MATCHER.findall(matchers))
    return metrics, grouped


@pytest.fixture
def exported(client, cast, fake_gpus) -> dict[str, set[str]]:
    """Sample name -> label names, from /metrics with one GPU and one job, so every family has samples."""
    fake_gpus([16])
    Job.objects.create(owner=cast.alice, kind="noop", time_limit=60)
    client.force_login(cast.staff)  # /metrics needs staff or the METRICS_TOKEN
    text = client.get("/metrics").content.decode()
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return labels


def test_every_metric_and_label_the_dashboard_reads_is_exported(exported):
    read = 0
    for expr in expressions(dashboard()):
        metrics, grouped = reads(expr)
        assert metrics, f"no metric found in {expr!r}"
        for name, matched in metrics.items():
            assert name in exported, f"{expr!r} reads {name}, which /metrics does not export"
            assert matched <= exported[name], f"{expr!r} matches labels {matched - exported[name]} {name} lacks"
        available = set().union(*(exported[name] for name in metrics))
        assert grouped <= available, f"{expr!r} groups by {grouped - available}, which its metrics lack"
        read += len(metrics)
    assert read >= 15


def test_the_dashboard_covers_jobs_queues_waits_and_gpus():
    exprs = " ".join(expressions(dashboard()))
    for metric in (
        "gpuq_jobs",
        "gpuq_queue_depth",
        "gpuq_gpu_memory_used_bytes",
        "gpuq_gpu_memory_total_bytes",
        "gpuq_gpu_utilization_percent",
    ):
        assert metric in exprs
    for histogram in ("gpuq_job_duration_seconds", "gpuq_job_wait_seconds"):
        assert f"histogram_quantile(0.95, sum by (le) (rate({histogram}_bucket[" in exprs


def test_every_panel_has_a_unique_id_and_queries_the_chosen_data_source():
    board = dashboard()
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    assert {p["datasource"]["uid"] for p in panels} == {"${datasource}"}
    assert board["templating"]["list"][0] == {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
    }


def test_the_reader_finds_metrics_matchers_and_groupings():
    expr = 'sum by (kind, status) (rate(gpuq_x_bucket{host=~"$host", le!="1"}[5m])) / gpuq_y'
    assert reads(expr) == ({"gpuq_x_bucket": {"host", "le"}, "gpuq_y": set()}, {"kind", "status"})
