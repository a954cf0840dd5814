"""Proves the deployment files hold together without a cluster or a Docker daemon: the
compose file validates against the Compose Specification's JSON schema (check-jsonschema's
bundled copy) and runs every role the design names, wired to services that exist; nginx
balances the edges by least connections with keep-alive and gives up inside the processor's
3 s budget; every Kubernetes manifest validates against the Kubernetes schemas
(kubernetes-validate, offline), with probes and resources on every container and an
autoscaler on each stateless role."""

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
BIN = Path(sys.executable).parent


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return loaded


def manifests() -> list[dict[str, Any]]:
    documents = []
    for path in sorted((DOCKER / "k8s").glob("*.yaml")):
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def test_compose_file_validates_against_the_compose_schema() -> None:
    checked = subprocess.run(
        [
            BIN / "check-jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            DOCKER / "compose.yaml",
        ],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_validator_refuses_a_broken_compose_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text((DOCKER / "compose.yaml").read_text().replace("image:", "imagee:", 1))
    checked = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", broken],
        capture_output=True,
        text=True,
    )
    assert checked.returncode != 0


def test_compose_runs_every_role() -> None:
    services = compose()["services"]
    commands = {name: " ".join(service.get("command", [])) for name, service in services.items()}
    edges = [name for name, command in commands.items() if command == "serve --role edge"]
    assert len(edges) == 2
    assert "serve --role decider" in commands.values()
    assert "serve --role decider --standby" in commands.values()
    assert "serve --role worker" in commands.values()
    assert "serve --role portal" in commands.values()
    assert any(command.startswith("sim ") for command in commands.values())
    for server in ("postgres", "redis", "rabbitmq", "nginx"):
        assert server in services
    for name, service in services.items():
        for dependency in service.get("depends_on", {}) or {}:
            assert dependency in services, (name, dependency)
    environment = services["decider"]["environment"]
    shard_host = environment["PYJIT_SHARDS"].split(":")[0]
    for decider in ("decider", "decider-standby"):
        assert shard_host in services[decider]["networks"]["default"]["aliases"]
    assert environment["DATABASE_URL"].startswith("postgresql://")
    assert environment["REDIS_URL"].startswith("redis://")
    assert environment["RABBITMQ_URL"].startswith("amqp://")


def test_nginx_balances_edges_within_the_processor_budget() -> None:
    conf = (DOCKER / "nginx.conf").read_text()
    services = compose()["services"]
    upstream = re.search(r"upstream edges \{(.*?)\}", conf, re.S)
    assert upstream is not None
    body = upstream.group(1)
    assert "least_conn;" in body and re.search(r"keepalive \d+;", body)
    hosts = re.findall(r"server ([\w-]+):\d+", body)
    assert len(hosts) == 2 and all(host in services for host in hosts)
    jit = re.search(r"location = /jit \{(.*?)\}", conf, re.S)
    assert jit is not None
    read_timeout = re.search(r"proxy_read_timeout (\d+)(ms|s);", jit.group(1))
    assert read_timeout is not None
    value, unit = int(read_timeout.group(1)), read_timeout.group(2)
    assert (value / 1000 if unit == "ms" else value) < 3.0
    assert "proxy_next_upstream off;" in jit.group(1)
    assert 'proxy_set_header Connection "";' in conf


def test_dockerfile_builds_a_wheel_and_runs_unprivileged() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)", dockerfile, re.M)
    assert [stage for _, stage in stages] == ["builder", "runtime"]
    assert "maturin build" in dockerfile
    assert re.search(r"^USER 10001", dockerfile, re.M)
    assert re.search(r"^HEALTHCHECK .*/health", dockerfile, re.M | re.S)


@pytest.mark.parametrize("path", sorted((DOCKER / "k8s").glob("*.yaml")), ids=lambda p: p.name)
def test_manifest_validates_against_the_kubernetes_schemas(path: Path) -> None:
    checked = subprocess.run(
        [BIN / "kubernetes-validate", "--strict", "--quiet", path], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_kubernetes_validator_refuses_a_bad_manifest(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (DOCKER / "k8s" / "edge.yaml").read_text().replace("replicas: 2", "replicas: two")
    )
    checked = subprocess.run(
        [BIN / "kubernetes-validate", "--strict", "--quiet", bad], capture_output=True, text=True
    )
    assert checked.returncode != 0


def test_manifests_cover_what_operations_need() -> None:
    documents = manifests()
    kinds: dict[str, set[str]] = {}
    for document in documents:
        kinds.setdefault(document["kind"], set()).add(document["metadata"]["name"])
    assert {"edge", "worker", "portal"} <= kinds["Deployment"]
    assert {"edge", "worker", "portal"} == kinds["HorizontalPodAutoscaler"]
    assert {"decider", "decider-standby"} <= kinds["StatefulSet"]
    assert kinds["PodDisruptionBudget"] >= {"edge", "decider"}
    assert "ConfigMap" in kinds and "Secret" in kinds and "Service" in kinds
    config = next(doc for doc in documents if doc["kind"] == "ConfigMap")
    for address in config["data"]["PYJIT_SHARDS"].split(","):
        assert address.split(":")[0] in kinds["Service"], address
    for document in documents:
        if document["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for container in document["spec"]["template"]["spec"]["containers"]:
            assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
            # A standby listens on nothing before it takes over: no liveness probe to fail.
            if document["metadata"]["name"] != "decider-standby":
                assert container["livenessProbe"]["httpGet"]["path"] == "/health"
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
