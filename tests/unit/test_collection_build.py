"""`ansible-galaxy collection build` works and the artifact holds the collection, nothing local.

Run by `scripts/test.sh build` (the unit stage leaves this file to it). The artifact is
built once per module into a temporary directory, never into the repository.
"""
from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())

# Local environments, generated output and test equipment: never shipped.
FORBIDDEN = [".git", ".venv*", ".ansible", ".sandbox", ".cache", ".pytest_cache", "reports",
             "sandbox", "bench", "tests/output", "*__pycache__", "*.pyc", "*.tar.gz",
             "inventories/*/group_vars/all/zz_sandbox.yml"]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    """(member names, MANIFEST.json, FILES.json) of a freshly built artifact."""
    out = tmp_path_factory.mktemp("galaxy-build")
    galaxy = Path(sys.executable).with_name("ansible-galaxy")
    proc = subprocess.run([str(galaxy), "collection", "build", "--output-path", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=300, check=False, cwd=REPO)
    assert proc.returncode == 0, f"ansible-galaxy collection build failed:\n{proc.stdout}\n{proc.stderr}"
    built = sorted(out.glob("*.tar.gz"))
    assert [p.name for p in built] == [f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"]
    with tarfile.open(built[0]) as tar:
        names = [m.name[2:] if m.name.startswith("./") else m.name for m in tar.getmembers()]
        manifest = json.load(tar.extractfile("MANIFEST.json"))
        files = json.load(tar.extractfile("FILES.json"))
    return names, manifest, files


def _forbidden(path: str) -> str | None:
    parts = path.split("/")
    for prefix in ("/".join(parts[:i]) for i in range(1, len(parts) + 1)):
        for pattern in FORBIDDEN:
            if fnmatch.fnmatchcase(prefix, pattern):
                return pattern
    return None


def test_manifest_matches_galaxy_yml(artifact):
    dummy, manifest, dummy = artifact
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == (
        GALAXY["namespace"], GALAXY["name"], GALAXY["version"])
    assert info["dependencies"] == GALAXY.get("dependencies", {})


def test_artifact_holds_the_collection(artifact):
    names, dummy, files = artifact
    listed = {entry["name"] for entry in files["files"] if entry["ftype"] == "file"}
    assert "meta/runtime.yml" in names
    assert any(n.startswith("plugins/modules/") and n.endswith(".py") for n in names)
    assert any(n.startswith("roles/") for n in names)
    # Every plugin and every role file of the working tree ships (nothing lost to build_ignore).
    for tree in ("plugins", "roles"):
        expected = {p.relative_to(REPO).as_posix() for p in (REPO / tree).rglob("*")
                    if p.is_file() and _forbidden(p.relative_to(REPO).as_posix()) is None}
        missing = sorted(expected - listed)
        assert not missing, f"{tree}/ files missing from the artifact: {missing[:20]}"
    # FILES.json and the tarball agree.
    assert listed <= set(names)


def test_artifact_ships_nothing_local(artifact):
    names = artifact[0]
    shipped = {name: pattern for name in names if (pattern := _forbidden(name))}
    assert not shipped, f"local or generated files in the artifact: {dict(list(shipped.items())[:20])}"


def test_artifact_ships_no_gitignored_file(artifact):
    """Whatever .gitignore keeps out of the repository (generated vars, reports) stays out."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    names = artifact[0]
    candidates = [n for n in names if (REPO / n).is_file()]
    proc = subprocess.run(["git", "-C", str(REPO), "check-ignore", "--no-index", "--stdin"],
                          input="\n".join(candidates), capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode in (0, 1), proc.stderr  # 1: nothing ignored
    ignored = proc.stdout.split()
    assert not ignored, f"gitignored files in the artifact: {ignored[:20]}"


def test_artifact_ships_the_execution_environment_metadata(artifact):
    """ansible-builder reads meta/execution-environment.yml from the installed collection and the
    files it names; the project's own execution-environment(.local).yml, ee/, awx/ and build context stay out."""
    names = set(artifact[0])
    meta = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    assert "meta/execution-environment.yml" in names
    for kind in ("python", "system"):
        assert meta["dependencies"][kind] in names, kind
    project_only = {"execution-environment.yml", "execution-environment.local.yml", "ee", "context", "awx"}
    assert not [n for n in names if n.split("/")[0] in project_only]


# Plaintext vault files an operator may leave in the tree (a copy being edited, an editor's backup):
# gitignored and never shipped, whatever the inventory. The example files stay.
VAULT_PLAINTEXT = ["inventories/staging/group_vars/all/vault.yml", "inventories/production/group_vars/all/vault.yaml",
                   "inventories/staging/group_vars/all/vault.yml.bak", "inventories/staging/group_vars/all/vault.yml~",
                   "inventories/staging/group_vars/all/.vault.yml.swp", "inventories/acme/group_vars/db/vault.yml",
                   "inventories/acme/host_vars/db1/vault.yml"]
VAULT_EXAMPLE = "inventories/staging/group_vars/all/vault.yml.example"


def test_plaintext_vault_files_are_gitignored():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    proc = subprocess.run(["git", "-C", str(REPO), "check-ignore", "--no-index", "--verbose", "--non-matching",
                           "--stdin"], input="\n".join(VAULT_PLAINTEXT + [VAULT_EXAMPLE]), capture_output=True,
                          text=True, timeout=60, check=False)
    verdicts = {line.split("\t")[1]: not line.startswith("::") and not line.split("\t")[0].rsplit(":", 1)[1]
                .startswith("!") for line in proc.stdout.splitlines()}
    assert {path for path in VAULT_PLAINTEXT if not verdicts.get(path)} == set()
    assert verdicts[VAULT_EXAMPLE] is False


def test_plaintext_vault_files_never_ship(tmp_path):
    """build_ignore, checked by a real build of the tracked files plus planted vault files."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True,
                             timeout=60).stdout.decode().split("\0")
    src = tmp_path / "src"
    for rel in filter(None, tracked):
        if not (REPO / rel).exists():
            continue
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, src / rel, follow_symlinks=False)
    marker = "HOPSMARK-vault-" + tmp_path.name  # not a literal: this very file ships
    for rel in VAULT_PLAINTEXT:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("vault_hunter_db_password: %s\n" % marker)
    out = tmp_path / "out"
    galaxy = Path(sys.executable).with_name("ansible-galaxy")
    proc = subprocess.run([str(galaxy), "collection", "build", "--output-path", str(out), str(src)],
                          capture_output=True, text=True, timeout=300, check=False, cwd=src)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with tarfile.open(next(out.glob("*.tar.gz"))) as tar:
        names = [m.name[2:] if m.name.startswith("./") else m.name for m in tar.getmembers()]
        assert not [n for n in names if n in VAULT_PLAINTEXT], names
        assert VAULT_EXAMPLE in names
        for member in tar.getmembers():
            if member.isfile():
                assert marker.encode() not in tar.extractfile(member).read(), member.name
