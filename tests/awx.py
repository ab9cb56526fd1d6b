"""The execution environment and AWX's job runner, reproduced without an image or an AWX server.

`builder_context()` runs `ansible-builder create` on the project; `galaxy_stage()` does what the
image's galaxy stage does with that context (installs hunter.ops from it next to the community
collections), offline. `AwxJob` runs a playbook the way AWX's task runner does
(awx/main/tasks/jobs.py, RunJob): it lays out a private data directory and hands it to
ansible-runner, in this process, or inside an execution environment image (`image`: `podman run`
with the private data directory as /runner and `ansible-runner run /runner` in the container, the
image's own ansible-core, collections and Python; tests/fleet/test_ee_job.py).

    <private data dir>/              mode 0700, one per job
      project/                       the project's checkout (tracked files; nothing generated)
      inventory/hosts                executable script printing the job's inventory as JSON (0700)
      env/extravars                  the job template's extra vars and AWX's awx_* meta vars
      env/tmpXXXXXXXX                extra vars a custom credential type injects (0400, values !unsafe)
      env/cmdline                    ansible-playbook options: -u, --ask-vault-pass, --forks, -e @<credential file>
      env/passwords                  answers to prompts, e.g. `Vault password:` (a Vault credential)
      env/ssh_key                    a Machine credential's private key (ansible-runner loads it into ssh-agent)
      env/envvars                    the job's environment (image runs only; in process it is passed directly)
      env/settings                   runner settings: job_timeout, suppress_ansible_output, suppress_output_file
      artifacts/<job id>/job_events/ what AWX stores as the job's events (playbook_on_stats carries set_stats)

The environment is AWX's (`build_env`): its ANSIBLE_* settings, JOB_ID and friends, and the
collections/roles paths it builds from the project's ansible.cfg, with the execution
environment's /usr/share/ansible/collections replaced by the galaxy stage's output. Nothing of
the calling process's ANSIBLE_* environment reaches the job (the test command exports some).
"""
from __future__ import annotations

import configparser
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sandbox.services import write_private

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# What Galaxy would serve for ee/requirements.yml: the collections scripts/setup.sh unpacked.
COMMUNITY_COLLECTIONS = ("community/postgresql", "community/general", "amazon/aws")
VAULT_PROMPT = r"Vault password:\s*?$"  # AWX's prompt for a Vault credential without a vault id
EE_RUNNER_DIR = Path("/runner")  # the private data directory inside an execution environment
EE_COLLECTIONS = Path("/usr/share/ansible/collections")  # the image's collections (ansible-builder)


def clean_env(**extra: str) -> dict:
    """os.environ without ANSIBLE_* (the test command exports ANSIBLE_CONFIG and the collections path)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(extra)
    return env


def _run(argv: list, cwd: Path, what: str, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=clean_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{what} failed (rc {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def builder_context(dest: Path, definition: str = "execution-environment.yml") -> Path:
    """`ansible-builder create` on the definition (execution-environment.yml) into dest/context (offline)."""
    context = Path(dest) / "context"
    _run([BIN / "ansible-builder", "create", "-f", REPO_ROOT / definition, "-c", context,
          "--output-filename", "Containerfile"], REPO_ROOT, "ansible-builder create")
    return context


def galaxy_stage(context: Path, dest: Path) -> Path:
    """The image's galaxy stage, offline: `ansible-galaxy collection install -r requirements.yml`
    in the context's _build/ (the stage's WORKDIR). The community collections are put in place
    first, as Galaxy would deliver them; --offline then checks their versions against the
    requirements and installs hunter.ops from the build context. Returns the collections dir."""
    dest = Path(dest)
    for name in COMMUNITY_COLLECTIONS:
        link = dest / "ansible_collections" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(REPO_ROOT / ".ansible" / "collections" / "ansible_collections" / name)
    _run([BIN / "ansible-galaxy", "collection", "install", "-r", "requirements.yml", "-p", dest, "--offline"],
         Path(context) / "_build", "the galaxy stage (ansible-galaxy collection install --offline)")
    return dest


def inventory_import(source: str) -> dict:
    """What AWX's inventory sync from a project source stores and hands each job back as its
    inventory script: `ansible-inventory --list --export` on the source (group vars stay on their
    groups, templates such as "{{ vault_... }}" stay unrendered)."""
    proc = _run([BIN / "ansible-inventory", "-i", source, "--list", "--export"], REPO_ROOT, "ansible-inventory")
    return json.loads(proc.stdout)


def project_checkout(dest: Path) -> Path:
    """What AWX's project sync copies: the tracked (or addable) files of the repository, none of
    the local environments, generated vars or reports."""
    listed = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True, timeout=60).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = REPO_ROOT / rel
        if src.is_file() or src.is_symlink():
            target = Path(dest) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target, follow_symlinks=False)
    return Path(dest)


class _UnsafeDumper(yaml.SafeDumper):
    """AWX's safe_dump: every string value tagged !unsafe, so Ansible never templates it."""


_UnsafeDumper.add_representer(str, lambda dumper, value: dumper.represent_scalar("!unsafe", value))


def vault_encrypt(plaintext: str, password: str) -> str:
    """ansible-vault encrypt, in process (the password never reaches a command line)."""
    from ansible.constants import DEFAULT_VAULT_ID_MATCH
    from ansible.parsing.vault import VaultLib, VaultSecret
    vault = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password.encode()))])
    return vault.encrypt(plaintext).decode()


def credential_injection(credential_type: dict, inputs: dict) -> dict:
    """The extra vars a custom credential type injects (AWX: CredentialType.inject_credential renders
    each injector template with the credential's inputs in a sandboxed Jinja environment)."""
    from jinja2.sandbox import SandboxedEnvironment
    fields = {f["id"] for f in credential_type["inputs"]["fields"]}
    unknown = set(inputs) - fields
    missing = set(credential_type["inputs"].get("required", [])) - set(inputs)
    assert not unknown and not missing, f"credential inputs: unknown {sorted(unknown)}, missing {sorted(missing)}"
    env = SandboxedEnvironment()
    return {name: env.from_string(template).render(**inputs)
            for name, template in credential_type["injectors"].get("extra_vars", {}).items()}


@contextlib.contextmanager
def _without_ansible_environment():
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("ANSIBLE_")}
    try:
        yield
    finally:
        os.environ.update(saved)


@dataclass
class AwxRun:
    """What AWX keeps of a job: return code, status, job events, set_stats artifacts."""

    job_id: int
    rc: int
    status: str
    events: list[dict]
    artifact_data: dict
    private_data_dir: Path
    cmdline: str
    root: Path = None  # where the job saw private_data_dir (/runner in an execution environment)
    seconds: float = 0.0

    @property
    def project_dir(self) -> Path:
        return self.private_data_dir / "project"

    def local_path(self, path: str) -> Path:
        """A path the job printed (a report_dir), as this process sees it."""
        return self.private_data_dir / Path(path).relative_to(self.root or self.private_data_dir)

    @property
    def stdout(self) -> str:
        return "\n".join(e.get("stdout", "") for e in self.events if e.get("stdout"))

    def all_text(self) -> str:
        """Everything the job produced: artifacts (events, command, status, facts), the reports
        under the project, and whatever Ansible left in its local temp and ControlPath directories
        (tmp/, cp/). Not the inputs AWX wrote (env/, inventory/, the vaulted file)."""
        parts = []
        for root in (self.private_data_dir / "artifacts", self.project_dir / "reports",
                     self.private_data_dir / "tmp", self.private_data_dir / "cp"):
            for path in sorted(root.rglob("*")) if root.exists() else []:
                if path.is_file() and not path.is_symlink():
                    parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)


@dataclass
class AwxJob:
    """Runs playbooks of the project as AWX job templates do (see the module docstring).

    In process: `collections` is the execution environment's /usr/share/ansible/collections
    (galaxy_stage); `python` stands in for the image's Python with the collection's requirements.
    With `image`, the job runs inside that execution environment (its collections, its Python):
    `podman_args` adds options to `podman run` (mounts), `podman_env` is podman's environment.
    """

    base_dir: Path
    collections: Path | None = None
    python: Path = field(default_factory=lambda: Path(sys.executable))
    job_timeout: int = 600
    image: str | None = None
    podman_args: list = field(default_factory=list)
    podman_env: dict | None = None
    _next_id: int = 4200
    _checkout: Path | None = None

    def _project(self, private: Path) -> Path:
        if self._checkout is None:
            self._checkout = project_checkout(Path(self.base_dir) / "scm-checkout")
        shutil.copytree(self._checkout, private / "project", symlinks=True)
        return private / "project"

    def _paths(self, root: Path, project: Path) -> dict:
        """ANSIBLE_COLLECTIONS_PATH / ANSIBLE_ROLES_PATH as RunJob.build_env builds them: the
        project sync's requirements dir, then the project's ansible.cfg value, then the image's
        defaults (the image's home is empty; its /usr/share/ansible is `collections`). root: the
        private data directory as the job sees it."""
        cfg = configparser.ConfigParser()
        cfg.read(project / "ansible.cfg")
        # the image's home is /runner itself; in process, an empty one
        home = root if self.image else root / "home"
        collections = EE_COLLECTIONS if self.image else self.collections
        out = {}
        for env_key, setting, folder, defaults in (
                ("ANSIBLE_ROLES_PATH", "roles_path", "requirements_roles",
                 [home / ".ansible/roles", collections.parent / "roles", "/etc/ansible/roles"]),
                ("ANSIBLE_COLLECTIONS_PATH", "collections_path", "requirements_collections",
                 [home / ".ansible/collections", collections])):
            paths = [str(p) for p in defaults]
            configured = cfg.get("defaults", setting, fallback=None)
            if configured:
                paths = [configured] + paths
            out[env_key] = os.pathsep.join([str(root / folder)] + paths)
        return out

    def run(self, playbook: str, inventory: dict, extra_vars: dict | None = None, *,
            vault_password: str | None = None, vault_files: dict | None = None,
            credential_extra_vars: dict | None = None, template: str = "hunter.ops job",
            forks: int = 5, ssh_key: str | None = None, envvars: dict | None = None) -> AwxRun:
        """Run `playbook` (relative to the project) as one job.

        inventory: AWX's inventory script data ({"all": {"children": [...]}, "<group>": {"hosts": [...],
            "vars": {...}}, "_meta": {"hostvars": {...}}});
        vault_password: a Vault credential (answered at the `Vault password:` prompt);
        vault_files: {path in the project: plaintext YAML} encrypted with it, as committed to the SCM;
        credential_extra_vars: what a custom credential type injects as extra_vars;
        ssh_key: a Machine credential's private key (env/ssh_key: ansible-runner runs the job under
            ssh-agent with it);
        envvars: environment on top of AWX's (e.g. ANSIBLE_HOST_KEY_CHECKING=True).
        """
        self._next_id += 1
        job_id = self._next_id
        Path(self.base_dir).mkdir(parents=True, exist_ok=True)
        private = Path(tempfile.mkdtemp(prefix=f"awx_{job_id}_", dir=self.base_dir))
        os.chmod(private, 0o700)
        root = EE_RUNNER_DIR if self.image else private
        for sub in ("inventory", "env"):
            (private / sub).mkdir(mode=0o700)
        project = self._project(private)
        for rel, plaintext in (vault_files or {}).items():
            assert vault_password, "vault_files need a vault_password"
            write_private(project / rel, vault_encrypt(plaintext, vault_password))

        script = "#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(inventory)
        hosts = private / "inventory" / "hosts"
        write_private(hosts, script)
        hosts.chmod(0o700)

        meta = {"awx_job_id": job_id, "awx_job_template_name": template, "awx_job_launch_type": "manual",
                "tower_job_id": job_id, "tower_job_template_name": template}
        write_private(private / "env" / "extravars", yaml.safe_dump(dict(extra_vars or {}, **meta)))

        args = ["-u", "root"]
        passwords = {}
        if vault_password:
            args.append("--ask-vault-pass")
            passwords[VAULT_PROMPT] = vault_password
        args.append(f"--forks={forks}")
        if credential_extra_vars:
            handle, path = tempfile.mkstemp(dir=private / "env")
            with os.fdopen(handle, "w") as out:
                out.write(yaml.dump(credential_extra_vars, Dumper=_UnsafeDumper))
            os.chmod(path, 0o400)
            args.extend(["-e", f"@{root / 'env' / Path(path).name}"])
        import ansible_runner.utils
        cmdline = ansible_runner.utils.args2cmdline(*args)
        write_private(private / "env" / "cmdline", cmdline)
        if passwords:
            write_private(private / "env" / "passwords", json.dumps(passwords))
        if ssh_key:
            write_private(private / "env" / "ssh_key", ssh_key)
        write_private(private / "env" / "settings", json.dumps(
            {"job_timeout": self.job_timeout, "suppress_ansible_output": True, "suppress_output_file": True}))

        (private / "cp").mkdir(mode=0o700)
        revision = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                                  text=True, check=False).stdout.strip()
        env = {
            # AWX's ANSIBLE_* settings (awx/settings/defaults.py)
            "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_PARAMIKO_RECORD_HOST_KEYS": "False",
            "ANSIBLE_FORCE_COLOR": "True", "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
            "AWX_PRIVATE_DATA_DIR": str(root), "JOB_ID": str(job_id), "INVENTORY_ID": "1",
            "PROJECT_REVISION": revision, "ANSIBLE_RETRY_FILES_ENABLED": "False", "MAX_EVENT_RES": "700000",
            "AWX_HOST": "https://awx.invalid", "ANSIBLE_SSH_CONTROL_PATH_DIR": str(root / "cp"),
            "ANSIBLE_LOCAL_TEMP": str(root / "tmp"),
        }
        if not self.image:  # the image's tools first (ansible-playbook, pg_dump, ...)
            env["PATH"] = f"{self.python.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        env.update(self._paths(root, project))
        env.update(envvars or {})

        began = time.monotonic()
        if self.image:
            rc, status = self._run_in_image(private, job_id, playbook, env)
        else:
            import ansible_runner
            with _without_ansible_environment():
                runner = ansible_runner.run(private_data_dir=str(private), ident=str(job_id), playbook=playbook,
                                            inventory=str(hosts), envvars=env, suppress_env_files=True,
                                            quiet=True)
            rc, status = runner.rc, runner.status
        seconds = time.monotonic() - began
        events = []
        for path in (private / "artifacts" / str(job_id) / "job_events").glob("*.json"):
            events.append(json.loads(path.read_text()))
        events.sort(key=lambda e: e.get("counter", 0))
        artifact_data = {}
        for event in events:
            if event.get("event") == "playbook_on_stats":
                artifact_data = event.get("event_data", {}).get("artifact_data") or {}
        return AwxRun(job_id=job_id, rc=rc, status=status, events=events, artifact_data=artifact_data,
                      private_data_dir=private, cmdline=cmdline, root=root, seconds=seconds)

    def _run_in_image(self, private: Path, job_id: int, playbook: str, env: dict) -> tuple[int, str]:
        """`ansible-runner run /runner` inside the execution environment, on the machine's network,
        as the image's user (1000, as AWX runs it; the private data directory is handed over to it).
        ansible-runner reads env/ from the directory as AWX's worker does. Returns (rc, status)."""
        write_private(private / "env" / "envvars", json.dumps(env))
        for path in [private, *private.rglob("*")]:
            os.chown(path, 1000, 0, follow_symlinks=False)
        name = f"hunter-ee-job-{job_id}-{os.getpid()}"
        argv = ["podman", "run", "--rm", "--network", "host", "--name", name,
                "-v", f"{private}:{EE_RUNNER_DIR}", *self.podman_args, self.image,
                "ansible-runner", "run", str(EE_RUNNER_DIR), "-p", playbook, "--ident", str(job_id),
                "--inventory", str(EE_RUNNER_DIR / "inventory" / "hosts")]
        try:
            proc = subprocess.run(argv, env=self.podman_env, capture_output=True, text=True, check=False,
                                  timeout=self.job_timeout + 120)
        except subprocess.TimeoutExpired:
            # the timeout kills the podman client only: the job's container would go on against the hosts
            subprocess.run(["podman", "rm", "-f", "-t", "0", name], env=self.podman_env, capture_output=True,
                           check=False, timeout=60)
            raise
        artifacts = private / "artifacts" / str(job_id)
        (private / "podman.log").write_text(proc.stdout + proc.stderr)
        if not (artifacts / "rc").exists():
            raise AssertionError(f"the job did not run in {self.image} (podman rc {proc.returncode}):\n"
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return int((artifacts / "rc").read_text().strip()), (artifacts / "status").read_text().strip()
