"""deploy/'s Prometheus configuration, alert rules and Grafana dashboard: they parse, fit the compose
`monitoring` profile, and name only metrics the real /metrics serves."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, Caller
from tests.deploy.compose_files import services, variables

DEPLOY = ROOT / "deploy"
RULE_GROUPS = {"redub-queues", "redub-api", "redub-webhooks", "redub-jobs"}
# What the text format adds to a family's name, by type.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((DEPLOY / "prometheus-rules.yaml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    return document


def _expressions() -> list[str]:
    panels = [panel for panel in _dashboard()["panels"] if panel["type"] != "row"]
    return [target["expr"] for panel in panels for target in panel["targets"]] + [
        rule["expr"] for rule in _rules()
    ]


def _stack() -> dict[str, dict[str, Any]]:
    values = {
        name: secrets.token_hex(16) for name, required in variables("docker-compose.yml").items() if required
    }
    return services("docker-compose.yml", values)


def test_the_rules_file_has_the_expected_groups_and_complete_rules() -> None:
    document = yaml.safe_load((DEPLOY / "prometheus-rules.yaml").read_text())
    assert {group["name"] for group in document["groups"]} == RULE_GROUPS
    alerts = [rule["alert"] for rule in _rules()]
    assert len(alerts) == len(set(alerts))
    for rule in _rules():
        assert rule["expr"].strip() and rule["labels"]["severity"] in {"critical", "warning", "info"}, rule
        assert rule["annotations"]["summary"], rule
    # One rule at least for each thing the issue asks to be alerted on.
    expressions = " ".join(rule["expr"] for rule in _rules())
    for metric in ("redub_queue_length", 'status=~"5.."', "redub_webhook_attempts_total", "redub_jobs_stale"):
        assert metric in expressions, metric


def test_the_dashboard_is_grafana_json_on_the_provisioned_datasource() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    datasource = yaml.safe_load((DEPLOY / "grafana" / "datasource.yaml").read_text())["datasources"][0]
    for panel in panels:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"][
            "w"
        ] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == datasource["uid"] and panel["targets"], panel["title"]
        assert all(target["expr"] for target in panel["targets"]), panel["title"]


def test_every_metric_the_dashboard_and_rules_name_is_served_by_the_real_metrics_endpoint(
    client: TestClient, caller: Caller
) -> None:
    client.get("/healthz")
    client.get("/v1/dubs", headers=caller.headers)
    answer = client.get("/metrics")
    assert answer.status_code == 200
    served = {
        family.name + suffix
        for family in text_string_to_metric_families(answer.text)
        for suffix in SUFFIXES.get(family.type, ("",))
    }
    named = {name for expression in _expressions() for name in re.findall(r"\bredub_[a-z0-9_]+", expression)}
    assert named, "no metric named"
    assert named <= served, sorted(named - served)
    # And the dashboard shows each family the code defines (nothing measured goes unseen).
    families = {name for name in served if name.startswith("redub_") and not name.endswith("_created")}
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in named}
    assert {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in families} <= shown


def test_the_compose_monitoring_profile_runs_prometheus_and_grafana_on_these_files() -> None:
    stack = _stack()
    for name in ("prometheus", "grafana"):
        assert stack[name]["profiles"] == ["monitoring"], name
        for volume in stack[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), volume
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    mounted = {volume.split(":")[1] for volume in stack["prometheus"]["volumes"]}
    assert set(prometheus["rule_files"]) <= mounted
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for config in job["static_configs"]
        for target in config["targets"]
    }
    assert "api:8000" in targets
    for worker in ("worker-cpu", "worker-gpu"):
        environment = stack[worker]["environment"]
        assert f"{worker}:{environment['REDUB_METRICS_PORT']}" in targets
        # Multiprocess mode: a folder emptied at every start (a tmpfs).
        assert environment["PROMETHEUS_MULTIPROC_DIR"] in stack[worker]["tmpfs"]
    assert stack["api"]["environment"]["PROMETHEUS_MULTIPROC_DIR"] in stack["api"]["tmpfs"]
    # The API's token reaches Prometheus as the secret file its scrape job reads.
    (api_job,) = [job for job in prometheus["scrape_configs"] if "api:8000" in str(job)]
    assert api_job["authorization"]["credentials_file"] == "/run/secrets/metrics_token"
    assert stack["prometheus"]["secrets"] == ["metrics_token"]
    assert stack["api"]["environment"]["REDUB_METRICS_TOKEN"]
