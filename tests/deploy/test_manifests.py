"""deploy/ stays true to the server: the Kubernetes manifests name settings and probes that exist,
give the drain the time it needs, and deploy/nginx.conf passes ``nginx -t`` once its ports are set
(skipped without nginx). Fast: no server is started."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from openrealtime.server.settings import Settings
from tests.deploy.cluster import ROOT, free_port, render_nginx

K8S = ROOT / "deploy" / "k8s"
PROBES = {"/livez", "/readyz", "/healthz"}
EXIT_MARGIN_S = 15  # docs/readiness.md: the grace, then up to 10 s for the last sessions to let go
UVICORN_VARIABLES = {"FORWARDED_ALLOW_IPS"}


def manifests() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    found: dict[str, Any] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found[f"{document['kind']}/{document.get('metadata', {}).get('name', path.stem)}"] = document
    return found


def container(found: dict[str, Any]) -> dict[str, Any]:
    [door] = found["Deployment/openrealtime"]["spec"]["template"]["spec"]["containers"]
    return dict(door)


def test_every_setting_the_manifests_set_is_one_the_server_reads() -> None:
    found = manifests()
    names = set(found["ConfigMap/openrealtime-config"]["data"]) | {e["name"] for e in container(found)["env"]}
    known = {"OPENREALTIME_" + f.name.upper() for f in dataclasses.fields(Settings)}
    unknown = {n for n in names if n.startswith("OPENREALTIME_")} - known
    assert not unknown
    assert names - known - UVICORN_VARIABLES == {"POD_IP"}
    config = found["ConfigMap/openrealtime-config"]["data"]
    assert config["OPENREALTIME_STATE_URL"].startswith("redis://openrealtime-redis:")
    assert found["Service/openrealtime-redis"]["spec"]["ports"][0]["port"] == int(
        config["OPENREALTIME_STATE_URL"].rsplit(":", 1)[1].split("/")[0]
    )


def test_the_probes_are_the_servers_and_the_drain_has_its_time() -> None:
    found = manifests()
    door = container(found)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert door[probe]["httpGet"]["path"].split("?")[0] in PROBES
    assert door["livenessProbe"]["httpGet"]["path"] == "/livez"  # never restarted for being full
    assert door["readinessProbe"]["httpGet"]["path"].startswith("/readyz")
    pre_stop_s = int(door["lifecycle"]["preStop"]["exec"]["command"][-1])
    drain_s = float(found["ConfigMap/openrealtime-config"]["data"]["OPENREALTIME_DRAIN_GRACE_S"])
    grace_s = found["Deployment/openrealtime"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace_s >= pre_stop_s + drain_s + EXIT_MARGIN_S
    assert {e["name"]: e.get("value") for e in door["env"]}["OPENREALTIME_ADVERTISE_URL"] == "http://$(POD_IP):8000"


def test_the_nginx_config_is_valid(tmp_path: Path) -> None:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx; ./run does it as root)")
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_nginx(free_port(), [free_port(), free_port()], tmp_path))
    main = f"pid {tmp_path / 'nginx.pid'}; error_log {tmp_path / 'error.log'};"
    checked = subprocess.run(
        [binary, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf), "-g", main],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
