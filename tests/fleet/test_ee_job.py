"""The preflight inside the execution environment image, run the way AWX runs a job (issue 12).

The image is localhost/hunter-ops-ee:local, built from execution-environment.local.yml by
scripts/setup.d/ee.sh (ansible-builder on the local Debian base image, no registry, no Galaxy).
A job is a private data directory (tests/awx.py: project checkout, inventory script from the
fleet inventory's import, extra vars, the secrets as a custom credential's 0400 extra vars file,
the SSH key as a Machine credential) mounted at /runner, and `ansible-runner run /runner` inside
`podman run --network host`: the image's ansible-core, collections and Python run the job, and
reach the fleet's hosts over SSH (tests/fleet: the session's prepared fleet) with host keys
checked against the fleet's known_hosts. Two jobs: GO, and NO-GO with a wrong Redis password in
the credential.
"""
from __future__ import annotations

import json
import secrets
import urllib.parse
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from sandbox.fleet import podman, podman_env
from tests.awx import REPO_ROOT, AwxJob, inventory_import
from tests.fleet.conftest import INVENTORY
from tests.harness import assert_no_secret

pytestmark = pytest.mark.slow

IMAGE = "localhost/hunter-ops-ee:local"
LOCAL_EE = yaml.safe_load((REPO_ROOT / "execution-environment.local.yml").read_text())
HOSTS = {"app": "fleet-app", "db": "fleet-db", "cache": "fleet-cache"}
COMMUNITY = ("community/postgresql", "community/general", "amazon/aws")
# Distribution -> the module it is imported as (requirements-collection.txt)
MODULE = {"jmespath": "jmespath", "psycopg": "psycopg", "redis": "redis", "boto3": "boto3"}
TOOLS = ("pg_dump", "pg_restore", "psql", "gzip", "zstd", "lz4", "rsync", "ssh", "ssh-agent")

# Runs inside the image: what it holds, as JSON.
PROBE = r"""
import importlib, importlib.metadata as md, json, pathlib, shutil, sys
root = pathlib.Path("/usr/share/ansible/collections/ansible_collections")
out = {"python": list(sys.version_info[:3]),
       "dists": {d: md.version(d) for d in sys.argv[1].split(",")},
       "collections": {f"{m.parent.parent.name}.{m.parent.name}": json.loads(m.read_text())["collection_info"]["version"]
                       for m in root.glob("*/*/MANIFEST.json")},
       "hunter_files": {f["name"]: f["chksum_sha256"] for f in json.loads((root / "hunter/ops/FILES.json").read_text())["files"]
                        if f["ftype"] == "file"},
       "imports": {}, "tools": {t: shutil.which(t) for t in sys.argv[3].split(",")}}
for name in sys.argv[2].split(","):
    try:
        importlib.import_module(name)
        out["imports"][name] = "ok"
    except Exception as exc:
        out["imports"][name] = repr(exc)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def ee_image() -> str:
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        pytest.fail(f"{IMAGE} is missing: run scripts/setup.sh (scripts/setup.d/ee.sh builds it; "
                    "its log: ~/.cache/hunter-ops/ee/build.log)", pytrace=False)
    return IMAGE


@pytest.fixture(scope="module")
def contents(ee_image) -> dict:
    dists = ["ansible-core", "ansible-runner", "psycopg-binary", *MODULE]
    argv = ["run", "--rm", "--network", "none", ee_image, "python3", "-c", PROBE,
            ",".join(dists), ",".join(MODULE.values()), ",".join(TOOLS)]
    return json.loads(podman(*argv).stdout)


def _requirements(path: Path) -> list[Requirement]:
    return [Requirement(line) for line in path.read_text().splitlines() if line.strip() and not line.startswith(("#", "-r"))]


def test_image_holds_the_pinned_ansible_and_the_collections(contents):
    deps = LOCAL_EE["dependencies"]
    assert tuple(contents["python"]) >= (3, 11)
    for key, dist in (("ansible_core", "ansible-core"), ("ansible_runner", "ansible-runner")):
        spec = Requirement(deps[key]["package_pip"]).specifier
        assert contents["dists"][dist] in spec, (dist, contents["dists"][dist], str(spec))
    # the community collections are the ones set-up unpacked, and satisfy galaxy.yml's ranges
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())
    local = REPO_ROOT / ".ansible" / "collections" / "ansible_collections"
    for name in COMMUNITY:
        fqcn = name.replace("/", ".")
        manifest = json.loads((local / name / "MANIFEST.json").read_text())["collection_info"]
        assert contents["collections"][fqcn] == manifest["version"], fqcn
        assert contents["collections"][fqcn] in SpecifierSet(galaxy["dependencies"][fqcn]), fqcn
    assert contents["collections"]["hunter.ops"] == galaxy["version"]


def test_image_holds_this_checkouts_collection(contents):
    """hunter.ops in the image is byte for byte this checkout's plugins, roles and meta: a stale
    image (scripts/setup.d/ee.sh not run since a change) fails here, not as a confusing job."""
    import hashlib
    shipped = contents["hunter_files"]
    stale, missing = [], []
    for tree in ("plugins", "roles", "meta"):
        for path in sorted((REPO_ROOT / tree).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            rel = path.relative_to(REPO_ROOT).as_posix()
            if rel not in shipped:
                missing.append(rel)
            elif shipped[rel] != hashlib.sha256(path.read_bytes()).hexdigest():
                stale.append(rel)
    assert not missing and not stale, (f"the image's hunter.ops differs from this checkout (run "
                                       f"scripts/setup.d/ee.sh): missing {missing[:5]}, changed {stale[:5]}")


def test_modules_python_dependencies_import_in_the_image(contents):
    for req in _requirements(REPO_ROOT / "requirements-collection.txt"):
        module = MODULE[req.name]
        assert contents["imports"][module] == "ok", (module, contents["imports"][module])
        assert contents["dists"][req.name] in req.specifier, (req.name, contents["dists"][req.name])
    assert "psycopg-binary" in contents["dists"]  # psycopg[binary]: no libpq needed in the image
    assert all(contents["tools"].values()), contents["tools"]


@pytest.fixture(scope="module")
def ee_jobs(prepared_fleet, bugsink, ee_image, tmp_path_factory):
    """Preflight (GO), then with a wrong Redis password in the credential (NO-GO), in the image."""
    fleet = prepared_fleet
    inventory = inventory_import(INVENTORY)
    credential = dict({k: v for k, v in fleet.extravars().items() if k.startswith("vault_")},
                      **bugsink.inventory_vars())
    # ansible-runner turns host key checking off unless told (so does AWX): the fleet's keys are checked.
    job = AwxJob(base_dir=tmp_path_factory.mktemp("ee-jobs"), image=ee_image, podman_env=podman_env(),
                 podman_args=["-v", f"{fleet.known_hosts}:/etc/ssh/ssh_known_hosts:ro"])
    # The job template's extra vars: SENTRY-EVENT's script runs in the app host's runtime (not in
    # the image) and its 30 s bound was exceeded on this 2-CPU machine under other tests' load.
    template_vars = {"sentry_probe_command_timeout": 120}
    common = dict(ssh_key=fleet.key.read_text(), envvars={"ANSIBLE_HOST_KEY_CHECKING": "True"},
                  template="Preflight (fleet, execution environment)")
    go = job.run("preflight.yml", inventory, template_vars, credential_extra_vars=credential, **common)
    wrong = "wrong-" + secrets.token_hex(12)
    nogo = job.run("preflight.yml", inventory, template_vars,
                   credential_extra_vars=dict(credential, vault_hunter_redis_password=wrong), **common)
    key_body = fleet.key.read_text().splitlines()[1]
    markers = [*fleet.secrets(), bugsink.token, bugsink.dsn, urllib.parse.urlsplit(bugsink.dsn).username,
               wrong, key_body]
    return go, nogo, markers


def _report(run) -> dict:
    summary = run.artifact_data["hunter_ops_preflight"]
    assert summary["report_dir"].startswith("/runner/project/reports/"), summary  # written inside the job
    return json.loads((run.local_path(summary["report_dir"]) / "report.json").read_text())


def test_preflight_in_the_image_is_go_on_the_fleet(ee_jobs, prepared_fleet):
    go = ee_jobs[0]
    print(f"in-EE GO job: {go.seconds:.1f} s")
    assert go.rc == 0 and go.status == "successful", go.stdout[-5000:]
    summary = go.artifact_data["hunter_ops_preflight"]
    assert summary["verdict"] == "GO" and summary["blocking"] == [], summary
    report = _report(go)
    assert report["verdict"] == "GO"
    # every item belongs to a fleet host, and the evidence names where it looked
    assert {i["host"] for i in report["items"]} == set(HOSTS.values())
    items = {(i["id"], i["host"]): i for i in report["items"]}
    fleet = prepared_fleet
    assert fleet.address("app") in items["HEALTH-LIVE", "fleet-app"]["message"]
    assert f"{fleet.address('cache')}:" in items["REDIS-PING", "fleet-cache"]["message"]
    for key in (("BACKUP-CMD", "fleet-db"), ("REDIS-PING", "fleet-cache"), ("SENTRY-DSN", "fleet-app")):
        assert items[key]["status"] == "pass", items[key]
    # ansible-runner ran in the container: its command's working directory is the job's /runner
    command = json.loads((go.private_data_dir / "artifacts" / str(go.job_id) / "command").read_text())
    assert command["cwd"] == "/runner/project" and "ansible-playbook" in " ".join(command["command"]), command


def test_wrong_credential_in_the_image_is_no_go_naming_the_cache_host(ee_jobs):
    nogo = ee_jobs[1]
    assert nogo.rc != 0 and nogo.status == "failed", nogo.stdout[-5000:]
    summary = nogo.artifact_data["hunter_ops_preflight"]
    assert summary["verdict"] == "NO-GO" and "REDIS-PING@fleet-cache" in summary["blocking"], summary
    items = {(i["id"], i["host"]): i for i in _report(nogo)["items"]}
    assert items["REDIS-PING", "fleet-cache"]["status"] == "fail"
    assert items["HEALTH-LIVE", "fleet-app"]["status"] == "pass"  # the rest still ran and passed


def test_ee_jobs_hold_no_secret(ee_jobs):
    go, nogo, markers = ee_jobs
    for run in (go, nogo):
        assert len(run.events) > 20 and {"playbook_on_start", "playbook_on_stats"} <= {e["event"] for e in run.events}
        assert_no_secret(run.all_text(), *markers)
        assert_no_secret(run.cmdline, *markers)
        assert_no_secret((run.private_data_dir / "podman.log").read_text(), *markers)
