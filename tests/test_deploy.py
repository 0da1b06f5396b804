"""deploy/'s manifests hold what KubeRay and Kubernetes require, and name this repository's real code."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="the serving extra: pip install -r requirements-serve.txt")

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def _documents(name: str) -> dict[str, dict]:
    docs = [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]
    for doc in docs:
        assert {"apiVersion", "kind", "metadata", "spec"} <= doc.keys(), doc.get("kind")
        assert doc["metadata"]["name"]
    kinds = [d["kind"] for d in docs]
    assert len(kinds) == len(set(kinds)), kinds
    return {d["kind"]: d for d in docs}


@pytest.fixture(scope="module")
def rayservice() -> dict:
    return _documents("rayservice.yaml")["RayService"]


@pytest.fixture(scope="module")
def app_manifests() -> dict[str, dict]:
    return _documents("streamlit.yaml")


@pytest.fixture(scope="module")
def serve_config(rayservice) -> dict:
    return yaml.safe_load(rayservice["spec"]["serveConfigV2"])  # KubeRay takes the Serve config as a string


def test_rayservice_is_kuberays_v1_with_a_serve_config_and_a_cluster(rayservice):
    assert rayservice["apiVersion"] == "ray.io/v1"
    spec = rayservice["spec"]
    assert isinstance(spec["serveConfigV2"], str)
    cluster = spec["rayClusterConfig"]
    assert cluster["rayVersion"] == _pinned_ray()
    assert cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]


def test_the_serve_config_names_the_applications_real_import_path_and_its_arguments(serve_config):
    (app,) = serve_config["applications"]
    module, _, attribute = app["import_path"].partition(":")
    assert importlib.util.find_spec(module) is not None, module
    source = (Path(__file__).resolve().parent.parent / (module.replace(".", "/") + ".py")).read_text()
    assert f"def {attribute}(" in source  # the builder Serve calls with `args`
    assert set(app["args"]["models"].split(",")) == {"tiny.en", "base"}
    (deployment,) = app["deployments"]
    assert deployment["name"] == "WhisperEngine" and "class WhisperEngine" in source
    assert app["route_prefix"] == "/"
    assert serve_config["http_options"]["port"] == 8000


def test_replicas_and_workers_ask_for_a_gpu_and_autoscale_within_bounds(rayservice, serve_config):
    (deployment,) = serve_config["applications"][0]["deployments"]
    assert deployment["ray_actor_options"]["num_gpus"] == 1
    scaling = deployment["autoscaling_config"]
    assert 1 <= scaling["min_replicas"] <= scaling["max_replicas"]
    assert "num_replicas" not in deployment  # Serve refuses both a fixed count and autoscaling
    cluster = rayservice["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    (group,) = cluster["workerGroupSpecs"]
    assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    assert group["maxReplicas"] >= scaling["max_replicas"]  # one replica per one-GPU worker
    (container,) = group["template"]["spec"]["containers"]
    for limits in (container["resources"]["requests"], container["resources"]["limits"]):
        assert limits["nvidia.com/gpu"] == "1"
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # no replica lands on the GPU-less head
    assert "nvidia.com/gpu" not in head["template"]["spec"]["containers"][0]["resources"]["limits"]


def test_streamlit_runs_as_deployment_service_and_ingress_pointed_at_the_serve_endpoint(app_manifests, rayservice):
    assert set(app_manifests) == {"Deployment", "Service", "Ingress"}
    deployment, service, ingress = (app_manifests[k] for k in ("Deployment", "Service", "Ingress"))
    assert deployment["apiVersion"] == "apps/v1" and service["apiVersion"] == "v1"
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port = container["ports"][0]["containerPort"]
    assert service["spec"]["ports"][0]["targetPort"] == port
    env = {e["name"]: e["value"] for e in container["env"]}
    # KubeRay's Serve Service is named <RayService name>-serve-svc
    assert env["WHISPER_INQUIRY_ENGINE"] == f"http://{rayservice['metadata']['name']}-serve-svc:8000/"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["number"] == service["spec"]["ports"][0]["port"]


def test_the_ingress_keeps_each_browser_on_one_streamlit_server_with_a_cookie(app_manifests):
    annotations = app_manifests["Ingress"]["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert annotations["nginx.ingress.kubernetes.io/session-cookie-name"]
    assert app_manifests["Ingress"]["spec"]["ingressClassName"] == "nginx"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600  # the websocket lives on
    assert app_manifests["Service"]["spec"]["sessionAffinity"] == "ClientIP"


def _pinned_ray() -> str:
    for line in (Path(__file__).resolve().parent.parent / "requirements-serve.txt").read_text().splitlines():
        if line.startswith("ray[serve]=="):
            return line.split("==")[1].strip()
    raise AssertionError("requirements-serve.txt pins no ray[serve]")


def test_build_app_turns_the_serve_configs_args_into_a_one_gpu_deployment_preloading_both_models(serve_config):
    pytest.importorskip("ray")
    from whisper_inquiry.serve.app import build_app

    assert list(inspect.signature(build_app).parameters) == ["args"]
    bound = build_app(serve_config["applications"][0]["args"])._bound_deployment
    assert bound.ray_actor_options["num_gpus"] == 1
    assert bound.init_args[0] == ["tiny.en", "base"]
