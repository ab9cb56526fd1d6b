"""The execution environment: `ansible-builder create` on the project (offline), then what the
image build does with the context, step by step, without a container engine: the galaxy stage
(tests/awx.py galaxy_stage), the builder stage's introspection (the context's own introspect.py,
with the arguments the Containerfile gives it) and the final stage's bindep selection for a
RHEL-family and a Debian-family image."""
from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from bindep.depends import Depends
from packaging.requirements import Requirement

from tests.awx import builder_context, clean_env, galaxy_stage

REPO = Path(__file__).resolve().parents[2]
EE = yaml.safe_load((REPO / "execution-environment.yml").read_text())
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())
META_EE = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
# Third-party modules the plugins import -> the distribution that provides them.
DISTRIBUTION = {"jmespath": "jmespath", "psycopg": "psycopg", "redis": "redis", "sentry_sdk": "sentry-sdk",
                "boto3": "boto3", "botocore": "boto3"}
RHEL9 = ["default", "platform:rpm", "platform:redhat", "platform:centos", "platform:centos-9"]
DEBIAN12 = ["default", "platform:dpkg", "platform:debian", "platform:debian-12"]


def requirement_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    return builder_context(tmp_path_factory.mktemp("ee"))


@pytest.fixture(scope="module")
def containerfile(context) -> str:
    return (context / "Containerfile").read_text()


@pytest.fixture(scope="module")
def collections(context, tmp_path_factory) -> Path:
    return galaxy_stage(context, tmp_path_factory.mktemp("ee-collections"))


@pytest.fixture(scope="module")
def introspected(context, containerfile, collections, tmp_path_factory) -> dict:
    """The builder stage's introspect step, run from the context's _build/ (its WORKDIR /build holds
    the same files) on the galaxy stage's output; returns the files it writes."""
    line = next(line for line in containerfile.splitlines() if "introspect.py introspect" in line)
    out = tmp_path_factory.mktemp("introspect")
    argv = []
    for arg in shlex.split(line)[1:]:
        if arg == "$PYCMD":
            arg = sys.executable
        arg = arg.replace("/output/scripts/", str(context / "_build" / "scripts") + "/")
        arg = arg.replace("/tmp/src/", str(out) + "/")
        argv.append(arg)
    argv.append(str(collections))  # the image's default folder: /usr/share/ansible/collections
    proc = subprocess.run(argv, cwd=context / "_build", env=clean_env(), capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"python": requirement_lines(out / "requirements.txt"), "system": requirement_lines(out / "bindep.txt")}


def test_definition_is_schema_3_with_the_project_pins():
    assert EE["version"] == 3
    deps = EE["dependencies"]
    runtime = {Requirement(line).name: line for line in requirement_lines(REPO / "requirements.txt")
               if not line.startswith("-r")}
    assert deps["ansible_core"]["package_pip"] == runtime["ansible-core"]
    assert deps["ansible_runner"]["package_pip"] == runtime["ansible-runner"]
    assert "-r requirements-collection.txt" in requirement_lines(REPO / "requirements.txt")
    # the community collections: the ranges galaxy.yml declares
    wanted = {c["name"]: c.get("version") for c in yaml.safe_load((REPO / deps["galaxy"]).read_text())["collections"]}
    assert {k: v for k, v in wanted.items() if not k.startswith(".")} == GALAXY["dependencies"]
    assert wanted["./hunter_ops"] is None


def test_collection_metadata_names_its_requirement_files():
    assert META_EE == {"version": 1, "dependencies": {"python": "requirements-collection.txt",
                                                      "system": "bindep.txt"}}
    for name in META_EE["dependencies"].values():
        assert requirement_lines(REPO / name), name


def test_collection_requirements_cover_every_third_party_import():
    imported = set()
    for path in (REPO / "plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            imported.update(n.split(".")[0] for n in names if n.split(".")[0] in DISTRIBUTION)
    declared = {Requirement(line).name for line in requirement_lines(REPO / "requirements-collection.txt")}
    assert {DISTRIBUTION[m] for m in imported} == declared


def test_containerfile_builds_the_image_in_stages(containerfile):
    assert f'ARG EE_BASE_IMAGE="{EE["images"]["base_image"]["name"]}"' in containerfile
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="(.*)"$', containerfile, re.M).group(1).split()
    assert refs == [EE["dependencies"]["ansible_core"]["package_pip"],
                    EE["dependencies"]["ansible_runner"]["package_pip"]]
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", containerfile, re.M)
    assert stages == [("$EE_BASE_IMAGE", "base"), ("base", "galaxy"), ("base", "builder"), ("base", "final")]
    base, galaxy, builder, final = re.split(r"^FROM .*$", containerfile, flags=re.M)[1:]
    # the PostgreSQL stream is chosen in the base stage, so the final stage installs that client
    assert "RUN $PKGMGR module enable -y postgresql:$HUNTER_PG_STREAM" in base
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in galaxy
    introspect = next(line for line in builder.splitlines() if "introspect.py introspect" in line)
    assert "--user-bindep=bindep.txt" in introspect and "--exclude-pip-reqs=exclude-requirements.txt" in introspect
    assert "/output/scripts/assemble" in builder
    assert "check_ansible $PYCMD" in final and "/output/scripts/install-from-bindep" in final
    assert "LABEL ansible-execution-environment=true" in final


def test_context_holds_the_collection_and_nothing_local(context):
    build = context / "_build"
    assert yaml.safe_load((build / "requirements.yml").read_text()) == \
        yaml.safe_load((REPO / EE["dependencies"]["galaxy"]).read_text())
    assert (build / "bindep.txt").read_text() == (REPO / EE["dependencies"]["system"]).read_text()
    shipped = {p.relative_to(build / "hunter_ops").as_posix() for p in (build / "hunter_ops").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    for tree in ("plugins", "roles", "meta"):
        expected = {p.relative_to(REPO).as_posix() for p in (REPO / tree).rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts}
        assert expected <= shipped, sorted(expected - shipped)[:10]
    tops = {name.split("/")[0] for name in shipped}
    assert tops == {"galaxy.yml", "README.md", "CHANGELOG.md", "requirements-collection.txt", "bindep.txt",
                    "meta", "plugins", "roles"}


def test_galaxy_stage_installs_hunter_ops_with_its_dependency_files(collections):
    installed = collections / "ansible_collections" / "hunter" / "ops"
    manifest = json.loads((installed / "MANIFEST.json").read_text())["collection_info"]
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == \
        (GALAXY["namespace"], GALAXY["name"], GALAXY["version"])
    files = {f["name"] for f in json.loads((installed / "FILES.json").read_text())["files"]}
    assert {"meta/execution-environment.yml", "requirements-collection.txt", "bindep.txt",
            "plugins/modules/preflight_report.py", "roles/pg_backup/tasks/main.yml"} <= files
    # build_ignore applies to the install: no test equipment, no local state
    assert not [f for f in files if f.split("/")[0] in ("sandbox", "bench", "tests", "ee", "context", "reports")]


def test_introspection_merges_the_collections_requirements(introspected):
    python = introspected["python"]
    for line in requirement_lines(REPO / "requirements-collection.txt"):
        assert f"{line}  # from collection hunter.ops" in python
    assert any(line.startswith("boto3") and "amazon.aws" in line for line in python)
    assert not [line for line in python if line.startswith("pytest")]  # excluded in execution-environment.yml
    system = introspected["system"]
    for line in requirement_lines(REPO / "bindep.txt"):
        assert f"{line}  # from collection hunter.ops" in system
    for line in requirement_lines(REPO / "ee" / "bindep.txt"):
        assert f"{line}  # from collection user" in system


@pytest.mark.parametrize("profiles, packages", [
    (RHEL9, {"postgresql", "gzip", "zstd", "lz4", "rsync", "openssh-clients"}),
    (DEBIAN12, {"postgresql-client", "gzip", "zstd", "lz4", "rsync", "openssh-client"}),
], ids=["rhel9", "debian12"])
def test_final_stage_installs_the_client_tools_for_the_platform(introspected, profiles, packages):
    """What install-from-bindep installs (`bindep -l newline` on the merged file): PostgreSQL client
    tools and compressors under each family's package names; test-only entries stay out."""
    rules = Depends("\n".join(introspected["system"]) + "\n").active_rules(profiles)
    assert {rule[0] for rule in rules} == packages


# -- the local variant (execution-environment.local.yml): built by scripts/setup.d/ee.sh, run by
# tests/fleet/test_ee_job.py; here what it must keep of the real definition, offline.

LOCAL_EE = yaml.safe_load((REPO / "execution-environment.local.yml").read_text())


def test_local_definition_differs_only_in_base_image_package_manager_and_collection_sources():
    real, local = EE["dependencies"], LOCAL_EE["dependencies"]
    for key in ("ansible_core", "ansible_runner", "system", "exclude"):
        assert local[key] == real[key], key
    assert LOCAL_EE["images"]["base_image"]["name"] == "localhost/hunter-ops-base:bookworm"
    assert "--offline" in LOCAL_EE["build_arg_defaults"]["ANSIBLE_GALAXY_CLI_COLLECTION_OPTS"].split()
    assert LOCAL_EE["options"]["package_manager_path"] == "/usr/local/sbin/pkgmgr-apt"
    # hunter.ops is copied the same way
    hunter = [f for f in EE["additional_build_files"] if f["dest"].startswith("hunter_ops")]
    assert [f for f in LOCAL_EE["additional_build_files"] if f["dest"].startswith("hunter_ops")] == hunter
    # the same collections, every one from the build context (no Galaxy)
    local_reqs = yaml.safe_load((REPO / local["galaxy"]).read_text())["collections"]
    assert {r["type"] for r in local_reqs} == {"dir"}
    copied = {f"./{f['dest']}" for f in LOCAL_EE["additional_build_files"]}
    assert {r["name"] for r in local_reqs} <= copied | {"./hunter_ops"}


def test_local_context_installs_every_collection_offline(tmp_path):
    """The local context's galaxy stage with --offline (as its build arg says) and nothing installed
    beforehand: all four collections come from the context, at the versions set-up unpacked."""
    context = builder_context(tmp_path / "ee", "execution-environment.local.yml")
    dest = tmp_path / "collections"
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-galaxy"), "collection", "install", "-r",
                           "requirements.yml", "-p", str(dest), "--offline"], cwd=context / "_build",
                          env=clean_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    installed = {}
    for manifest in (dest / "ansible_collections").glob("*/*/MANIFEST.json"):
        info = json.loads(manifest.read_text())["collection_info"]
        installed[f"{info['namespace']}.{info['name']}"] = info["version"]
    unpacked = REPO / ".ansible" / "collections" / "ansible_collections"
    expected = {f"{ns}.{name}": json.loads((unpacked / ns / name / "MANIFEST.json").read_text())["collection_info"]["version"]
                for ns, name in (("community", "postgresql"), ("community", "general"), ("amazon", "aws"))}
    assert installed == dict(expected, **{"hunter.ops": GALAXY["version"]})
    containerfile = (context / "Containerfile").read_text()
    assert "COPY _build/local/pkgmgr-apt /usr/local/sbin/pkgmgr-apt" in containerfile


@pytest.mark.parametrize("argv", [["install", "-y", "--enablerepo", "epel", "pkg"], ["module", "enable", "x"]],
                         ids=["unknown-option", "unknown-verb"])
def test_pkgmgr_shim_refuses_what_it_does_not_translate(argv):
    """ee/local/pkgmgr-apt stands in for dnf: what it cannot translate fails the build (before any apt-get)."""
    proc = subprocess.run(["sh", str(REPO / "ee" / "local" / "pkgmgr-apt"), *argv], capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 2 and "unsupported" in proc.stderr, proc
