"""The KubeRay deployment: the manifest's properties, the Serve app KubeRay builds from it, and
the image recipe. (Docker cannot run here: the image itself is not built.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core.settings import ENVIRONMENT_ONLY_FIELDS, env_name
from serve_app import app_from_env

KUBERAY = Path(__file__).resolve().parents[2] / "deploy" / "kuberay"
SECRETS = {
    "WARREN_SECRET_KEY": "k" * 48,
    "WARREN_DATABASE_URL": "postgresql://warren:db-password-123@db.internal:5432/warren",
    "WARREN_NATS_URL": "nats://nats.internal:4222",
    "WARREN_NATS_CREDENTIALS_INGRESS": "warren_ingress:nats-password-ingress",
    "WARREN_NATS_CREDENTIALS_SESSION": "warren_session:nats-password-session",
    "WARREN_NATS_CREDENTIALS_POOL": "warren_pool:nats-password-pool",
    "WARREN_LLM_API_KEY": "sk-llm-key-456",
    "WARREN_S3_SECRET_ACCESS_KEY": "s3-secret-789",
    "WARREN_GITHUB_TOKEN": "ghp_token_abc",
    "WARREN_NANGO_SECRET_KEY": "nango-secret-def",
}


@pytest.fixture(scope="module")
def service() -> dict[str, Any]:
    """The RayService manifest."""
    manifest: dict[str, Any] = yaml.safe_load((KUBERAY / "rayservice.yaml").read_text())
    assert manifest["kind"] == "RayService"
    return manifest


def _containers(service: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = service["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [c for group in groups for c in group["template"]["spec"]["containers"]]


def test_autoscaling_is_on_for_pods_and_for_serve_replicas(service: dict[str, Any]) -> None:
    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    for group in cluster["workerGroupSpecs"]:
        assert group["minReplicas"] < group["maxReplicas"]
    serve_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    (application,) = serve_config["applications"]
    # Replica counts come from the settings (ConfigMap), not from a fixed num_replicas here.
    assert application["import_path"] == "serve_app:app_from_env"
    assert "deployments" not in application


def test_the_dashboard_and_ray_api_require_a_token(service: dict[str, Any]) -> None:
    auth = service["spec"]["rayClusterConfig"]["authOptions"]
    assert auth["mode"] == "token"
    assert auth["secretName"]
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    env = {e["name"]: e for e in head["containers"][0].get("env", [])}
    assert env.get("RAY_AUTH_MODE", {}).get("value", "token") == "token"


def test_every_ray_pod_reads_the_secrets_from_a_kubernetes_secret(
    service: dict[str, Any],
) -> None:
    containers = _containers(service)
    assert len(containers) >= 2  # head and workers
    for container in containers:
        assert {"secretRef": {"name": "warren-env"}} in container["envFrom"]
        # No WARREN_* value is written into the manifest itself.
        assert not [e for e in container.get("env", []) if e["name"].startswith("WARREN_")]
    serve_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    assert "runtime_env" not in serve_config["applications"][0]


def _deployment_options(app: Any) -> tuple[dict[str, Any], Any]:
    deployment = app._bound_deployment
    return deployment.ray_actor_options, deployment._deployment_config


def test_the_serve_app_keeps_secrets_out_of_its_runtime_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WARREN_SERVE_MIN_REPLICAS", "2")
    monkeypatch.setenv("WARREN_SERVE_MAX_REPLICAS", "6")
    # What KubeRay runs: import_path serve_app:app_from_env with the config's args.
    options, config = _deployment_options(app_from_env({}))
    env_vars: dict[str, str] = options["runtime_env"]["env_vars"]
    text = repr(options)
    for name, value in SECRETS.items():
        assert name not in env_vars
        assert value not in text
    assert "db-password-123" not in text
    assert {env_name(f) for f in ENVIRONMENT_ONLY_FIELDS} == set(SECRETS)
    assert env_vars["WARREN_SERVE_MAX_REPLICAS"] == "6"  # the rest still travels
    scaling = config.autoscaling_config
    assert (scaling.min_replicas, scaling.max_replicas) == (2, 6)
    assert scaling.target_ongoing_requests == 500  # half of max_ongoing_requests (1000)


def test_without_bounds_the_replica_count_is_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARREN_SECRET_KEY", SECRETS["WARREN_SECRET_KEY"])
    _, config = _deployment_options(app_from_env({"serve_replicas": "3"}))
    assert config.autoscaling_config is None
    assert config.num_replicas == 3


def test_the_image_runs_sessions_and_installs_warren_non_editable() -> None:
    recipe = (KUBERAY / "Dockerfile").read_text()
    steps = [line.strip() for line in recipe.splitlines() if not line.startswith("#")]
    assert any("npm install" in s for s in steps)  # OpenCode, from deploy/sandbox/package.json
    assert any("COPY deploy/sandbox/package.json" in s for s in steps)
    assert any(
        s.startswith("ENV WARREN_OPENCODE_BIN=") and s.endswith("node_modules/.bin/opencode")
        for s in steps
    )
    installs = [s for s in steps if "pip install" in s]
    assert installs and all(" -e " not in s for s in installs)
