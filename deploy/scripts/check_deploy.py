#!/usr/bin/env python3
"""Checks of deploy/ that no schema expresses.

- every metric the Grafana dashboard and the alert rules use is one the server exports
  (the list in src/metrics/names.rs; `_bucket`, `_sum` and `_count` only on histograms);
- the alert rules have the structure Prometheus expects (also when promtool is missing);
- the PodMonitors (a CRD the offline schemas lack) are well formed and name a container
  port that the pods they select have;
- the Deployments: the sidecar is a native one (an init container with
  restartPolicy: Always), resources set, and
  terminationGracePeriodSeconds above the drain delay plus the shutdown timeout of the
  config file they mount, and more than one sidecar replica only in cluster mode (else
  each pod is a channel layer of its own and rooms split);
- who reaches the layer: the address each chanlayer container really listens on (its
  flags, then its environment, then the image's ENV, then its chanlayer.toml, then the
  server's default) is loopback or a Unix socket for a sidecar, and for a shared server on
  another address a token is required (from a Secret that is not optional); the probes are
  HTTP on the metrics port (readiness /readyz, liveness and startup /healthz), which the
  kubelet reaches on the pod's address; a sidecar's Unix socket lies in an emptyDir volume
  that the gateway mounts too, the gateway's CHANLAYER_TARGET names the socket at its own
  mount path, and the socket's mode (`listen-mode`, 0660 by default) lets the gateway's
  user connect (the same user, the pod's fsGroup with group write, or others with write);
  the check must catch a sidecar moved to 0.0.0.0, an optional token, a socket the gateway
  does not mount, one on a volume other than an emptyDir, a gateway target that is not the
  socket, and a pod without the fsGroup its 0660 socket needs;
- the Dockerfile: multi-stage, copies only paths that exist, builds and ships the
  `chanlayer` binary, runs as a non-root user, exposes the default ports, has no
  HEALTHCHECK;
- the cluster overlay: an odd number (3+) of NATS servers started together, a headless
  Service that publishes them before they are ready, a nats.conf whose routes name every
  server and whose max_payload holds chanlayer's largest message, sidecars that list every
  server, and NetworkPolicies that let the sidecars reach NATS' client port and the
  servers each other's routes, and nothing else reach the routes (`nats-server -t`
  parses the nats.conf when a nats-server is given);
- each shipped chanlayer.toml starts the real server (unknown keys and bad values fail).
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import json
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
errors: list[str] = []


def fail(message: str) -> None:
    errors.append(message)


def exported_metrics() -> dict[str, str]:
    """Name -> kind, from the one list in src/metrics/names.rs."""
    text = (ROOT / "src" / "metrics" / "names.rs").read_text()
    block = text[text.index("metrics_list! {") :]
    block = block[: block.index("\n}\n")]
    found = dict(re.findall(r'=\s*"(chanlayer_[a-z0-9_]+)",\s*(Counter|Gauge|Histogram)', block))
    if len(found) < 20:
        fail(f"src/metrics/names.rs: found only {len(found)} metrics; has the list moved?")
    return found


def series_names(metrics: dict[str, str]) -> set[str]:
    names = set()
    for name, kind in metrics.items():
        names.add(name)
        if kind == "Histogram":
            names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
    return names


def used_metrics(expr: str) -> set[str]:
    return set(re.findall(r"\b(chanlayer_[a-z0-9_]+)\b", expr))


def check_metric_use(metrics: dict[str, str]) -> None:
    valid = series_names(metrics)
    dashboard = json.loads((DEPLOY / "grafana" / "chanlayer.json").read_text())
    exprs = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "query") and isinstance(value, str):
                    exprs.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dashboard)
    if not exprs:
        fail("grafana/chanlayer.json: no queries found")
    used = set()
    for expr in exprs:
        for name in used_metrics(expr):
            used.add(name)
            if name not in valid:
                fail(f"grafana/chanlayer.json uses {name}, which the server does not export")

    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    groups = rules.get("groups") if isinstance(rules, dict) else None
    if not groups:
        fail("prometheus/alerts.yaml: no groups")
        groups = []
    for group in groups:
        if not group.get("name") or not group.get("rules"):
            fail(f"prometheus/alerts.yaml: a group without name or rules: {group}")
            continue
        for rule in group["rules"]:
            alert = rule.get("alert")
            if not alert or not rule.get("expr"):
                fail(f"prometheus/alerts.yaml: a rule without alert or expr: {rule}")
                continue
            unknown = set(rule) - {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
            if unknown:
                fail(f"prometheus/alerts.yaml {alert}: unknown fields {sorted(unknown)}")
            if rule["expr"].count("(") != rule["expr"].count(")"):
                fail(f"prometheus/alerts.yaml {alert}: unbalanced parentheses")
            names = used_metrics(rule["expr"])
            if not names:
                fail(f"prometheus/alerts.yaml {alert}: uses no chanlayer metric")
            for name in names:
                used.add(name)
                if name not in valid:
                    fail(f"prometheus/alerts.yaml {alert} uses {name}, which the server does not export")
    # The drops, the queue, sessions and latency must each be watched, and in cluster mode
    # the NATS connection and the cross-node drops.
    for needed in (
        "chanlayer_messages_dropped_total",
        "chanlayer_queued_messages",
        "chanlayer_sessions",
        "chanlayer_delivery_latency_seconds_bucket",
        "chanlayer_cluster_connected",
        "chanlayer_cluster_dropped_total",
    ):
        if needed not in used:
            fail(f"neither the dashboard nor the alerts use {needed}")
    print(f"{len(exprs)} dashboard queries and the alert rules use {len(used)} series, all exported")


def check_scrape_config() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "scrape-config.yaml").read_text())
    jobs = config.get("scrape_configs", []) if isinstance(config, dict) else []
    if len(jobs) != 1 or jobs[0].get("job_name") != "chanlayer":
        fail("prometheus/scrape-config.yaml: expected one job named chanlayer")
        return
    job = jobs[0]
    if job.get("metrics_path", "/metrics") != "/metrics":
        fail("prometheus/scrape-config.yaml: metrics_path is not /metrics")
    if [sd.get("role") for sd in job.get("kubernetes_sd_configs", [])] != ["pod"]:
        fail("prometheus/scrape-config.yaml: expected pod discovery")
    actions = {"keep", "drop", "replace", "labelmap", "labeldrop", "labelkeep", "hashmod"}
    for relabel in job.get("relabel_configs", []):
        if relabel.get("action", "replace") not in actions:
            fail(f"prometheus/scrape-config.yaml: unknown relabel action {relabel.get('action')}")
        try:
            re.compile(relabel.get("regex", "(.*)"))
        except re.error as error:
            fail(f"prometheus/scrape-config.yaml: bad regex {relabel.get('regex')!r}: {error}")
        for label in relabel.get("source_labels", []):
            if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", label):
                fail(f"prometheus/scrape-config.yaml: bad label name {label!r}")
    if not any(
        "__meta_kubernetes_pod_container_port_name" in r.get("source_labels", []) and r.get("regex") == "metrics"
        for r in job.get("relabel_configs", [])
    ):
        fail("prometheus/scrape-config.yaml: does not keep only the container port named metrics")
    print("scrape config checked")


def cluster_mode(container: dict, settings: dict) -> bool:
    """Whether chanlayer in `container` joins a cluster (the flag, its variable or its key)."""
    env = {e.get("name") for e in container.get("env", [])}
    args = container.get("args", []) + container.get("command", [])
    return (
        bool(settings.get("cluster-nats-url"))
        or "CHANLAYER_CLUSTER_NATS_URL" in env
        or any(a.split("=")[0] == "--cluster-nats-url" for a in args)
    )


def load_rendered(paths: list[str]) -> list[tuple[str, dict]]:
    objects = []
    for path in paths:
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if doc:
                objects.append((Path(path).name, doc))
    return objects


def check_objects(objects: list[tuple[str, dict]]) -> None:
    by_file: dict[str, list[dict]] = {}
    for source, obj in objects:
        by_file.setdefault(source, []).append(obj)
    for source, objs in by_file.items():
        deployments = [o for o in objs if o["kind"] == "Deployment"]
        configmaps = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ConfigMap"}
        monitors = [o for o in objs if o["kind"] == "PodMonitor"]
        if len(deployments) != 1 or not monitors:
            fail(f"{source}: expected one Deployment and a PodMonitor")
            continue
        deployment = deployments[0]
        pod = deployment["spec"]["template"]
        spec = pod["spec"]
        sidecars = [c for c in spec.get("initContainers", []) if c.get("name") == "chanlayer"]
        mains = [c for c in spec["containers"] if c.get("name") == "chanlayer"]
        if sidecars:
            chanlayer = sidecars[0]
            if chanlayer.get("restartPolicy") != "Always":
                fail(f"{source}: the chanlayer init container is not a native sidecar")
            if not any(c["name"] != "chanlayer" for c in spec["containers"]):
                fail(f"{source}: no gateway container beside the sidecar")
        elif mains:
            chanlayer = mains[0]
            if deployment["spec"].get("replicas") != 1:
                fail(f"{source}: a standalone chanlayer holds its state in memory: one replica")
        else:
            fail(f"{source}: no chanlayer container")
            continue
        for container in spec.get("initContainers", []) + spec["containers"]:
            resources = container.get("resources", {})
            if not resources.get("requests") or not resources.get("limits"):
                fail(f"{source}: container {container['name']} lacks resource requests or limits")
        # The config file the pod mounts decides the drain time.
        settings = {}
        for volume in spec.get("volumes", []):
            name = volume.get("configMap", {}).get("name")
            if name in configmaps:
                data = configmaps[name]["data"]
                settings = tomllib.loads(data.get("chanlayer.toml", ""))
        if not settings:
            fail(f"{source}: chanlayer mounts no chanlayer.toml")
        for problem in reach_problems(chanlayer, settings, sidecar=bool(sidecars), pod=spec):
            fail(f"{source}: {problem}")
        check_reach_check(source, chanlayer, settings, sidecar=bool(sidecars), pod=spec)
        print(f"{source}: chanlayer's gRPC on {effective_setting(chanlayer, settings, LISTEN)}, "
              f"HTTP probes on {effective_setting(chanlayer, settings, METRICS_LISTEN)}")
        # Sidecars without cluster mode are islands: two pods would split every room.
        if sidecars and deployment["spec"].get("replicas", 1) != 1 and not cluster_mode(chanlayer, settings):
            fail(f"{source}: {deployment['spec'].get('replicas')} sidecar replicas without cluster mode split the rooms")
        drain = (settings.get("drain-delay-ms", 0) + settings.get("shutdown-timeout-ms", 5000)) / 1000
        grace = spec.get("terminationGracePeriodSeconds", 30)
        if grace <= drain:
            fail(f"{source}: terminationGracePeriodSeconds {grace} is not above the drain time {drain} s")
        # PodMonitors: well formed, and they select these pods on a port they have.
        labels = pod["metadata"].get("labels", {})
        ports = {p.get("name") for c in spec.get("initContainers", []) + spec["containers"] for p in c.get("ports", [])}
        for monitor in monitors:
            if monitor.get("apiVersion") != "monitoring.coreos.com/v1":
                fail(f"{source}: PodMonitor apiVersion {monitor.get('apiVersion')}")
            mspec = monitor.get("spec", {})
            unknown = set(mspec) - {"selector", "podMetricsEndpoints", "namespaceSelector", "jobLabel", "podTargetLabels", "sampleLimit"}
            if unknown:
                fail(f"{source}: PodMonitor has unknown spec fields {sorted(unknown)}")
            match = mspec.get("selector", {}).get("matchLabels", {})
            if not match or any(labels.get(k) != v for k, v in match.items()):
                fail(f"{source}: the PodMonitor selects no pod of the Deployment")
            endpoints = mspec.get("podMetricsEndpoints", [])
            if not endpoints:
                fail(f"{source}: the PodMonitor has no podMetricsEndpoints")
            for endpoint in endpoints:
                if endpoint.get("port") not in ports:
                    fail(f"{source}: the PodMonitor scrapes port {endpoint.get('port')!r}, which no container has")
                if endpoint.get("path", "/metrics") != "/metrics":
                    fail(f"{source}: the PodMonitor scrapes {endpoint.get('path')}")
    print(f"{len(objects)} rendered objects checked")


def nats_size(value: str) -> int:
    """A NATS config size (`8MB`, `512MB`, `1048576`) in bytes; NATS' units are binary."""
    match = re.fullmatch(r"(\d+)\s*([KMGT]?)B?", value.strip().strip("\"'").upper())
    if not match:
        return -1
    return int(match.group(1)) * 1024 ** "_KMGT".index(match.group(2) or "_")


def nats_duration(value: str) -> float:
    """A NATS config duration (`10s`, `2m`) in seconds."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", value.strip().strip("\"'"))
    if not match:
        return -1
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def nats_setting(conf: str, key: str) -> str | None:
    """The value of a top-level `key: value` line of a NATS config, as written."""
    match = re.search(rf"^\s*{key}\s*[:=]\s*(.+?)\s*$", conf, re.MULTILINE)
    return match.group(1) if match else None


def selects(selector: dict, labels: dict) -> bool:
    """Whether a label selector (matchLabels only) selects a pod with `labels`."""
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def port_matches(rule_ports: list[dict], port: int, port_names: dict[str, int]) -> bool:
    """Whether a NetworkPolicy rule's ports (numbers or the pod's port names) admit `port`."""
    if not rule_ports:
        return True
    for rule in rule_ports:
        wanted = rule.get("port")
        if wanted is None or wanted == port or port_names.get(wanted) == port:
            return True
    return False


def allowed(policies: list[dict], src: dict, dst: dict, port: int, dst_ports: dict[str, int]) -> bool:
    """Whether NetworkPolicies let pods labelled `src` reach `port` of pods labelled `dst`.

    The policies are those of one namespace; namespace selectors are taken to match it.
    """

    def admitted(direction: str, own: dict, peer: dict) -> bool:
        key, peers = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        mine = [p["spec"] for p in policies if selects(p["spec"].get("podSelector", {}), own)
                and direction in p["spec"].get("policyTypes", ["Ingress"])]
        if not mine:
            return True
        for spec in mine:
            for rule in spec.get(key, []):
                peer_ok = not rule.get(peers) or any(
                    "podSelector" in q and selects(q["podSelector"], peer) for q in rule[peers]
                )
                if peer_ok and port_matches(rule.get("ports", []), port, dst_ports):
                    return True
        return False

    return admitted("Egress", src, dst) and admitted("Ingress", dst, src)


# The server's flags that decide who reaches it: (flag, environment variable, config key,
# default), as in src/config.rs.
LISTEN = ("--listen", "CHANLAYER_LISTEN", "listen", "127.0.0.1:50051")
LISTEN_MODE = ("--listen-mode", "CHANLAYER_LISTEN_MODE", "listen-mode", "0660")
METRICS_LISTEN = ("--metrics-listen", "CHANLAYER_METRICS_LISTEN", "metrics-listen", "127.0.0.1:9464")
TOKEN_SOURCES = ("CHANLAYER_AUTH_TOKEN", "CHANLAYER_AUTH_TOKEN_FILE")


def effective_setting(container: dict, settings: dict, setting: tuple[str, str, str, str]) -> str:
    """The value the server in `container` uses: flag, environment, image ENV, file, default."""
    flag, variable, key, default = setting
    args = container.get("command", []) + container.get("args", [])
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
    for entry in container.get("env", []):
        if entry.get("name") == variable and "value" in entry:
            return str(entry["value"])
    image = image_env()
    if variable in image:
        return image[variable]
    return str(settings.get(key, default))


def is_loopback(address: str) -> bool:
    """Whether `host:port` (or `[v6]:port`) is a loopback address."""
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def unix_path(address: str) -> str | None:
    """The path of a `unix:PATH` (or `unix:///PATH`) address, else None."""
    if not address.startswith("unix:"):
        return None
    path = address[len("unix:"):]
    return path.removeprefix("//")


def mount_of(container: dict, path: str) -> tuple[str, str] | None:
    """The (volume, path inside the volume) of `path` in `container`, by its longest mount."""
    best = None
    for mount in container.get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/")
        if path.startswith(root + "/") and (best is None or len(root) > len(best[2])):
            best = (mount["name"], path[len(root) + 1:], root)
    return None if best is None else (best[0], best[1])


def socket_problems(container: dict, settings: dict, pod: dict, path: str) -> list[str]:
    """A sidecar's Unix socket: in an emptyDir that the gateway mounts too, named by the
    gateway's CHANLAYER_TARGET, with a mode that lets the gateway's user connect."""
    problems = []
    where = mount_of(container, path)
    if where is None:
        return [f"the chanlayer sidecar's socket {path} is on no volume: the gateway cannot reach it"]
    volume, inside = where
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    if "emptyDir" not in volumes.get(volume, {}):
        problems.append(f"the socket's volume {volume} is not an emptyDir: keep it inside the pod")
    gateways = [c for c in pod.get("containers", []) if c.get("name") != "chanlayer"]
    security = pod.get("securityContext", {})

    def uid(c: dict) -> object:
        return c.get("securityContext", {}).get("runAsUser", security.get("runAsUser"))

    mode = int(effective_setting(container, settings, LISTEN_MODE).removeprefix("0o"), 8)
    for gateway in gateways:
        mounts = [m for m in gateway.get("volumeMounts", []) if m["name"] == volume]
        if not mounts:
            problems.append(f"the gateway {gateway['name']} does not mount the socket's volume {volume}")
            continue
        expected = f"unix:{mounts[0]['mountPath'].rstrip('/')}/{inside}"
        target = next((e.get("value") for e in gateway.get("env", []) if e.get("name") == "CHANLAYER_TARGET"), None)
        if target is None or unix_path(target) != unix_path(expected):
            problems.append(f"the gateway {gateway['name']}'s CHANLAYER_TARGET is {target!r}, not the socket {expected}")
        if uid(gateway) is not None and uid(gateway) == uid(container):
            continue
        if mode & 0o002:
            continue
        if not mode & 0o020:
            problems.append(f"the socket's mode {mode:04o} lets only chanlayer's user connect, not the gateway {gateway['name']}")
        elif "fsGroup" not in security:
            problems.append(f"the socket's mode {mode:04o} admits its group, but the pod sets no fsGroup that the gateway {gateway['name']} holds")
    return problems


def reach_problems(container: dict, settings: dict, *, sidecar: bool, pod: dict | None = None) -> list[str]:
    """What lets something outside the pod reach the layer unchecked, or breaks the probes."""
    problems = []
    listen = effective_setting(container, settings, LISTEN)
    metrics = effective_setting(container, settings, METRICS_LISTEN)
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
    socket = unix_path(listen)
    if socket is not None:
        if not sidecar:
            problems.append(f"a shared chanlayer listens on {listen}: other pods cannot reach a Unix socket")
        else:
            problems += socket_problems(container, settings, pod or {}, socket)
    elif sidecar:
        grpc_port = int(listen.rsplit(":", 1)[1])
        if not is_loopback(listen):
            problems.append(f"the chanlayer sidecar listens on {listen}: keep gRPC on 127.0.0.1, "
                            "so nothing outside the pod reaches it")
        if grpc_port in ports.values():
            problems.append(f"the chanlayer sidecar declares its loopback gRPC port {grpc_port}")
    elif not is_loopback(listen):
        sources = [e for e in container.get("env", []) if e.get("name") in TOKEN_SOURCES]
        secret = [e["valueFrom"]["secretKeyRef"] for e in sources if "secretKeyRef" in e.get("valueFrom", {})]
        in_file = bool(settings.get("auth-token-file"))
        in_args = any(a.startswith("--auth-token") for a in container.get("args", []))
        if in_file or in_args:
            pass  # a token file or flag is always required
        elif not secret:
            problems.append(f"chanlayer listens on {listen} for other pods without a token")
        elif any(ref.get("optional") for ref in secret):
            problems.append(f"chanlayer listens on {listen} for other pods with an optional token")
    if metrics == "off" or is_loopback(metrics):
        problems.append(f"the metrics endpoint ({metrics}) is not on the pod's address: the probes cannot reach it")
    elif ports.get("metrics") != int(metrics.rsplit(":", 1)[1]):
        problems.append(f"no container port named metrics on the metrics endpoint's port ({metrics})")
    for probe, path, required in (
        ("readinessProbe", "/readyz", True),
        ("livenessProbe", "/healthz", True),
        ("startupProbe", "/healthz", False),
    ):
        spec = container.get(probe)
        if spec is None and not required:
            continue
        get = (spec or {}).get("httpGet") or {}
        if get.get("path") != path or get.get("port") not in ("metrics", ports.get("metrics")):
            problems.append(f"chanlayer's {probe} is not an HTTP GET of {path} on the metrics port")
    return problems


def check_reach_check(source: str, container: dict, settings: dict, *, sidecar: bool, pod: dict) -> None:
    """The reach check must catch a sidecar on every interface and a shared server's optional
    token; for a sidecar on a Unix socket, a socket the gateway cannot reach."""
    broken = copy.deepcopy(container)
    env = [e for e in broken.get("env", []) if e.get("name") != "CHANLAYER_LISTEN"]
    broken["env"] = [*env, {"name": "CHANLAYER_LISTEN", "value": "0.0.0.0:50051"}]
    if sidecar:
        what = "a sidecar on 0.0.0.0"
    else:
        what = "an optional token"
        for entry in broken["env"]:
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if entry.get("name") in TOKEN_SOURCES and ref is not None:
                ref["optional"] = True
    if not reach_problems(broken, settings, sidecar=sidecar, pod=pod):
        fail(f"{source}: the reach check does not catch {what}")
    socket = unix_path(effective_setting(container, settings, LISTEN))
    if not sidecar or socket is None:
        return
    where = mount_of(container, socket)
    if where is None:
        return
    volume = where[0]

    def broken_pod(change: str) -> dict:
        copied = copy.deepcopy(pod)
        gateway = next(c for c in copied["containers"] if c.get("name") != "chanlayer")
        if change == "no mount":
            gateway["volumeMounts"] = [m for m in gateway.get("volumeMounts", []) if m["name"] != volume]
        elif change == "hostPath":
            for v in copied.get("volumes", []):
                if v["name"] == volume:
                    v.pop("emptyDir", None)
                    v["hostPath"] = {"path": "/run/chanlayer"}
        elif change == "tcp target":
            gateway["env"] = [e for e in gateway.get("env", []) if e.get("name") != "CHANLAYER_TARGET"]
            gateway["env"].append({"name": "CHANLAYER_TARGET", "value": "127.0.0.1:50051"})
        elif change == "no fsGroup":
            copied.get("securityContext", {}).pop("fsGroup", None)
        return copied

    for change in ("no mount", "hostPath", "tcp target", "no fsGroup"):
        if not reach_problems(container, settings, sidecar=True, pod=broken_pod(change)):
            fail(f"{source}: the reach check does not catch a socket with {change}")


def check_cluster(objects: list[tuple[str, dict]], nats_server: str | None) -> None:
    """Checks the cluster overlay.

    NATS servers that form one cluster, sidecars that list them, and NetworkPolicies that
    let exactly that traffic through.
    """
    by_file: dict[str, list[dict]] = {}
    for source, obj in objects:
        by_file.setdefault(source, []).append(obj)
    for source, objs in by_file.items():
        sets = [o for o in objs if o["kind"] == "StatefulSet"]
        if not sets:
            continue
        nats = sets[0]
        name, spec = nats["metadata"]["name"], nats["spec"]
        replicas = spec.get("replicas", 1)
        if replicas < 3 or replicas % 2 == 0:
            fail(f"{source}: {replicas} NATS servers; run an odd number, at least 3, for JetStream's quorum")
        if spec.get("podManagementPolicy") != "Parallel":
            fail(f"{source}: the NATS servers must start together (podManagementPolicy: Parallel)")
        pod = spec["template"]
        labels = pod["metadata"].get("labels", {})
        services = {o["metadata"]["name"]: o["spec"] for o in objs if o["kind"] == "Service"}
        headless = services.get(spec.get("serviceName"), {})
        if headless.get("clusterIP") != "None" or not headless.get("publishNotReadyAddresses"):
            fail(f"{source}: serviceName {spec.get('serviceName')!r} is not a headless Service publishing not-ready pods")
        if not selects({"matchLabels": headless.get("selector", {})}, labels):
            fail(f"{source}: the headless Service does not select the NATS pods")
        container = pod["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        configmaps = {o["metadata"]["name"]: o.get("data", {}) for o in objs if o["kind"] == "ConfigMap"}
        conf = ""
        for volume in pod["spec"].get("volumes", []):
            conf = configmaps.get(volume.get("configMap", {}).get("name"), {}).get("nats.conf", conf)
        if not conf:
            fail(f"{source}: the NATS servers mount no nats.conf")
            continue
        for key, port in (("listen", ports.get("client")), ("http", ports.get("monitor"))):
            if not (nats_setting(conf, key) or "").endswith(f":{port}"):
                fail(f"{source}: nats.conf {key} is not on the container port {port}")
        if "jetstream" not in conf or not re.search(r"cluster\s*\{[^}]*\bname\s*:", conf):
            fail(f"{source}: nats.conf lacks jetstream or a named cluster block")
        expected = {f"{name}-{i}.{spec.get('serviceName')}:{ports.get('cluster')}" for i in range(replicas)}
        routes = set(re.findall(r"nats(?:-route)?://([^\s,\]]+)", conf))
        if routes != expected:
            fail(f"{source}: nats.conf routes {sorted(routes)}, expected {sorted(expected)}")
        # A chanlayer message and its envelope must fit in one NATS message.
        deployment = next(o for o in objs if o["kind"] == "Deployment")
        chanlayer_conf = ""
        for volume in deployment["spec"]["template"]["spec"].get("volumes", []):
            chanlayer_conf = configmaps.get(volume.get("configMap", {}).get("name"), {}).get("chanlayer.toml", chanlayer_conf)
        settings = tomllib.loads(chanlayer_conf) if chanlayer_conf else {}
        payload = nats_size(nats_setting(conf, "max_payload") or "1MB")
        if payload <= settings.get("max-message-bytes", 4194304):
            fail(f"{source}: NATS max_payload {payload} is not above chanlayer's max-message-bytes")
        ping = nats_duration(nats_setting(conf, "ping_interval") or "2m")
        if not 0 < ping <= 30:
            fail(f"{source}: NATS ping_interval {ping} s finds a vanished node too late")
        lame_duck = sum(nats_duration(nats_setting(conf, k) or "0s") for k in ("lame_duck_grace_period", "lame_duck_duration"))
        if pod["spec"].get("terminationGracePeriodSeconds", 30) <= lame_duck:
            fail(f"{source}: NATS terminationGracePeriodSeconds is not above its lame duck time {lame_duck} s")
        # The sidecars list every server on its client port.
        urls = set(re.findall(r"nats://([^\s,]+)", settings.get("cluster-nats-url", "")))
        wanted = {f"{name}-{i}.{spec.get('serviceName')}:{ports.get('client')}" for i in range(replicas)}
        if urls != wanted:
            fail(f"{source}: chanlayer's cluster-nats-url names {sorted(urls)}, expected {sorted(wanted)}")
        if nats_server:
            with tempfile.NamedTemporaryFile("w", suffix=".conf") as file:
                file.write(conf)
                file.flush()
                env = {"SERVER_NAME": f"{name}-0", "PATH": "/usr/bin:/bin"}
                result = subprocess.run([nats_server, "-t", "-c", file.name], capture_output=True, text=True, env=env)
                if result.returncode != 0:
                    fail(f"{source}: nats-server refuses nats.conf: {result.stdout}{result.stderr}")
                else:
                    print(f"{source}: nats-server -t accepts nats.conf")
        # The NetworkPolicies: sidecars reach the clients' port, servers each other's routes,
        # and nothing else reaches the routes.
        policies = [o for o in objs if o["kind"] == "NetworkPolicy"]
        sidecar = deployment["spec"]["template"]["metadata"].get("labels", {})
        for src, port, want, what in (
            (sidecar, ports.get("client"), True, "the sidecars to reach NATS"),
            (labels, ports.get("cluster"), True, "the NATS routes"),
            (sidecar, ports.get("cluster"), False, "the sidecars to reach the NATS routes"),
        ):
            if allowed(policies, src, labels, port, ports) != want:
                fail(f"{source}: the NetworkPolicies {'do not allow' if want else 'allow'} {what} (port {port})")
    print("cluster overlay checked")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, (OP, arguments), continuation lines joined."""
    lines: list[str] = []
    for raw in (DEPLOY / "docker" / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if lines and lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1] + " " + line
        else:
            lines.append(line)
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def image_env() -> dict[str, str]:
    """The environment the image sets for the runtime stage (ENV after the last FROM)."""
    env: dict[str, str] = {}
    for op, arg in dockerfile_instructions():
        if op == "FROM":
            env = {}
        elif op == "ENV":
            for pair in arg.split():
                if "=" in pair:
                    key, value = pair.split("=", 1)
                    env[key] = value.strip('"')
    return env


def check_dockerfile() -> None:
    path = DEPLOY / "docker" / "Dockerfile"
    instructions = dockerfile_instructions()
    froms = [arg for op, arg in instructions if op == "FROM"]
    if len(froms) < 2:
        fail("Dockerfile: not a multi-stage build")
    if any(op == "HEALTHCHECK" for op, _ in instructions):
        fail("Dockerfile: has a HEALTHCHECK; Kubernetes probes do that")
    users = [arg for op, arg in instructions if op == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        fail("Dockerfile: the runtime image does not run as a non-root user")
    for op, arg in instructions:
        if op == "COPY" and "--from" not in arg:
            sources = arg.split()[:-1]
            for source in sources:
                if not (ROOT / source).exists():
                    fail(f"Dockerfile: COPY {source}: no such path in the repository")
    manifest = tomllib.loads((ROOT / "Cargo.toml").read_text())
    binaries = [b["name"] for b in manifest.get("bin", [])]
    text = path.read_text()
    if "chanlayer" not in binaries or "--bin chanlayer" not in text or "target/release/chanlayer" not in text:
        fail("Dockerfile: does not build and ship the chanlayer binary")
    for bench in manifest.get("bench", []):
        if not any(op == "COPY" and arg.split()[0] in ("benches", "benches/") for op, arg in instructions):
            fail(f"Dockerfile: Cargo.toml names the bench {bench['name']}; copy benches/ or cargo refuses the manifest")
    exposed = {p for op, arg in instructions if op == "EXPOSE" for p in arg.split()}
    if not {"50051", "9464"} <= exposed:
        fail(f"Dockerfile: EXPOSE {sorted(exposed)} lacks 50051 or 9464")
    entry = [arg for op, arg in instructions if op == "ENTRYPOINT"]
    copied = [arg for op, arg in instructions if op == "COPY" and "--from" in arg]
    if not entry or not copied or entry[-1].strip('[]" ').split('"')[0] != copied[-1].split()[-1]:
        fail("Dockerfile: the ENTRYPOINT is not the binary the last stage copies")
    print(f"Dockerfile: {len(froms)} stages, user {users[-1] if users else '?'}, ports {sorted(exposed)}")


def check_config_files(binary: Path) -> None:
    if not binary.exists():
        print(f"{binary} is missing: the config files are not started")
        return
    for config in sorted(DEPLOY.rglob("chanlayer.toml")):
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [str(binary), "serve", "--config", str(config), "--listen", "127.0.0.1:0",
                     "--metrics-listen", "127.0.0.1:0", "--log-format", "json"],
                    stdout=out, stderr=subprocess.STDOUT,
                )
                deadline = time.monotonic() + 20
                started = False
                while time.monotonic() < deadline and process.poll() is None:
                    if "chanlayer listening" in log.read_text():
                        started = True
                        break
                    time.sleep(0.05)
                process.terminate()
                process.wait(timeout=30)
            if not started:
                fail(f"{config.relative_to(ROOT)} does not start the server: {log.read_text()[-1000:]}")
            else:
                print(f"{config.relative_to(ROOT)} starts the server")
    # A key the server does not know must stop it.
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as bad:
        bad.write("max-sesions = 10\n")
        bad.flush()
        result = subprocess.run([str(binary), "serve", "--config", bad.name], capture_output=True, text=True, timeout=20)
        if result.returncode == 0 or "max-sesions" not in result.stderr:
            fail("an unknown key in the config file does not stop the server with its name")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rendered", action="append", default=[], help="kustomize output")
    parser.add_argument("--bin", default=str(ROOT / "target" / "release" / "chanlayer"))
    parser.add_argument("--nats-server", help="nats-server binary to test the rendered nats.conf with")
    args = parser.parse_args()
    metrics = exported_metrics()
    check_metric_use(metrics)
    check_scrape_config()
    rendered = load_rendered(args.rendered)
    check_objects(rendered)
    check_cluster(rendered, args.nats_server)
    check_dockerfile()
    check_config_files(Path(args.bin))
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
