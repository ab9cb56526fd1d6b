"""The preflight's health, Redis and API checks at 1, 10 and 50 application hosts over real SSH,
against the obvious hand-written playbook (one ansible.builtin.uri / command task per check),
alternating runs.

    .venv/bin/python bench/scale.py [--hosts 1,10,50] [--repeat 3] [--only preflight] [--set ANSIBLE_FORKS=50]

The hosts are N plain `sshd` processes on this machine, each on its own loopback address
(127.0.93.1, 127.0.93.2, ...; port 2222, or a free port when 2222 is taken there) with its own host
key, logging in an unprivileged user (``hunterbench``, created when missing; no sudo: these checks
need no become) with key authentication. They share this machine's filesystem and CPUs: see
bench/README.md "Scale" for why they are not containers and what that does to the figures. One
sample service (sandbox/app.py), one PostgreSQL and one Redis serve every host. Everything is
started and stopped here; needs root (sshd must switch to the login user).

Per run it prints:
- wall: ansible-playbook's wall time;
- tasks/host: the tasks Ansible ran per application host (PLAY RECAP ok+changed+failed+rescued+
  ignored; skipped ones in brackets); the report play (preflight only) runs once, on localhost;
- conn/host: SSH connections per host (sshd's "Accepted publickey" lines in that host's log);
- ssh/host: ssh client invocations per host (an ssh wrapper counts them: with ControlPersist each is
  one session over the host's one connection, i.e. one round trip);
- ctl CPU: CPU seconds of ansible-playbook and its children (ssh clients, not the ControlPersist
  masters); host CPU: CPU seconds of everything the sshd servers ran (the module processes).
The preflight's report must hold every item of every host, else the bench stops; a NO-GO run (what
the run observed, e.g. the shared sample service timing out) is shown with its reasons and left
out of the medians.
Every run gets a fresh ControlPath directory, and its masters are closed after it: no run reuses
another's connections.
"""
import argparse
import json
import os
import pwd
import re
import shlex
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.services import PostgresServer, RedisServer, SampleService, seed  # noqa: E402

USER = "hunterbench"
SSHD = "/usr/sbin/sshd"
SUBNET = "127.0.93"
PORT = 2222
APP_IDS = ["HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP", "HEALTH-DB", "HEALTH-REDIS", "HEALTH-ENV",
           "HEALTH-DIAG", "REDIS-APP-PING", "REDIS-HEALTH", "API-V1-LEADS", "API-V1-SCAN", "API-V1-SALES",
           "API-LEGACY", "API-COMPAT"]
# Items that are skip on a healthy service (HEALTH-DIAG: not needed; API-COMPAT: legacy removed)
# cannot be required for GO; the report must still hold them for every host.
REQUIRED = [i for i in APP_IDS if i not in ("HEALTH-DIAG", "API-COMPAT")]
PLAYBOOKS = {"preflight": ROOT / "bench" / "playbooks" / "scale_preflight.yml",
             "handwritten": ROOT / "bench" / "playbooks" / "scale_handwritten.yml"}


def ensure_prerequisites():
    if os.geteuid() != 0:
        sys.exit("bench/scale.py needs root: its sshd servers switch to the login user %s" % USER)
    if not Path(SSHD).exists():
        print("[scale] installing openssh-server (apt-get)", flush=True)
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "openssh-server"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)
    try:
        pwd.getpwnam(USER)
    except KeyError:
        print("[scale] creating the login user %s" % USER, flush=True)
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", USER], check=True)
    # Without PAM, sshd refuses a locked account ("!" password, useradd's default); "*" is no
    # password at all, so only the key logs in.
    subprocess.run(["usermod", "-p", "*", USER], check=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    return hosts_python()


def hosts_python():
    """The managed hosts' interpreter: a venv the login user owns, with what the modules import
    (requirements-collection.txt) on Debian's python3, as on a prepared managed host. The
    project's .venv will not do: its interpreter lives under /root. Cached in the user's home and
    rebuilt when the requirements change."""
    home = Path(pwd.getpwnam(USER).pw_dir)
    venv = home / ".cache" / "hunter-ops" / "hosts-venv"
    wanted = (ROOT / "requirements-collection.txt").read_text()
    stamp = venv / "requirements-collection.txt"
    if stamp.exists() and stamp.read_text() == wanted and (venv / "bin" / "python").exists():
        return venv / "bin" / "python"
    print("[scale] building the managed hosts' venv %s" % venv, flush=True)
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k in ("PATH", "LANG")}
    env.setdefault("PIP_FIND_LINKS", "/opt/wheels") if Path("/opt/wheels").is_dir() else None
    mirrors = " ".join("file://%s/simple" % d for d in ("/opt/pypi", "/opt/pypi-more") if Path(d).is_dir())
    if mirrors:
        env.setdefault("PIP_EXTRA_INDEX_URL", mirrors)  # this machine's local package mirrors
    requirements = [line.split("#")[0].strip() for line in wanted.splitlines() if line.split("#")[0].strip()]
    script = ("rm -rf {v} && mkdir -p {v} && /usr/bin/python3 -m venv {v} && {v}/bin/pip install -q "
              "--disable-pip-version-check {r}").format(v=venv, r=" ".join(shlex.quote(r) for r in requirements))
    subprocess.run(["su", "-s", "/bin/sh", USER, "-c", script], check=True, env=env)
    stamp.write_text(wanted)
    return venv / "bin" / "python"


def bindable(addr, port):
    with socket.socket() as sock:
        try:
            sock.bind((addr, port))
            return True
        except OSError:
            return False


class Fleet:
    """N sshd servers, one per loopback address, each with its own host key, config and log."""

    def __init__(self, base, count):
        self.dir = Path(base) / "ssh"
        self.dir.mkdir(mode=0o755)  # sshd reads authorized_keys as the login user
        self.count = count
        self.client_key = self.dir / "client_key"
        self.known_hosts = self.dir / "known_hosts"
        self.hosts = []  # (name, addr, port, process, log)

    def start(self):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key)], check=True)
        authorized = self.dir / "authorized_keys"
        shutil.copy(str(self.client_key) + ".pub", authorized)
        authorized.chmod(0o644)
        # Every session's command runs under a shell that then appends `times` (its own CPU time,
        # then its children's: the module processes') to a file named after the host's address.
        # Not `times | ...`: a pipeline runs it in a subshell, which has no children.
        self.cpu_dir = self.dir / "cpu"
        self.cpu_dir.mkdir()
        shutil.chown(self.cpu_dir, USER)
        measure = self.dir / "measure.sh"
        measure.write_text('#!/bin/sh\n/bin/sh -c "$SSH_ORIGINAL_COMMAND"\nrc=$?\nset -- $SSH_CONNECTION\n'
                           'times >> "%s/$3"\nexit $rc\n' % self.cpu_dir)
        measure.chmod(0o755)
        known = []
        for i in range(1, self.count + 1):
            addr = "%s.%d" % (SUBNET, i)
            port = PORT if bindable(addr, PORT) else free_port(addr)
            key = self.dir / ("host_key_%d" % i)
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
            known.append("[%s]:%d %s" % (addr, port, " ".join((Path(str(key) + ".pub").read_text().split())[:2])))
            config = self.dir / ("sshd_%d.conf" % i)
            config.write_text("\n".join([
                "ListenAddress %s:%d" % (addr, port), "HostKey %s" % key, "PidFile none",
                "AuthorizedKeysFile %s" % authorized, "AllowUsers %s" % USER, "PermitRootLogin no",
                "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                "UsePAM no",
                # the key files live in a private temporary directory, not in the user's home
                "StrictModes no", "ForceCommand %s" % measure,
                "MaxStartups 200", "MaxSessions 100", "LogLevel INFO", "Subsystem sftp internal-sftp", ""]))
            log = self.dir / ("sshd_%d.log" % i)
            proc = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(log)])
            self.hosts.append(("app-%02d" % i, addr, port, proc, log))
        self.known_hosts.write_text("\n".join(known) + "\n")
        for name, addr, port, proc, _ in self.hosts:
            deadline = time.monotonic() + 15
            while bindable(addr, port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("sshd for %s (%s:%d) did not start" % (name, addr, port))
                time.sleep(0.05)
        return self

    def stop(self):
        for _, _, _, proc, _ in self.hosts:
            proc.terminate()
        for _, _, _, proc, _ in self.hosts:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()

    def connections(self, n):
        """'Accepted publickey' lines per host so far, for the first n hosts."""
        return [log.read_text().count("Accepted publickey") for _, _, _, _, log in self.hosts[:n]]

    def cpu(self, n):
        """CPU seconds of every command the sessions on the first n hosts ran so far."""
        total = 0.0
        for _, addr, _, _, _ in self.hosts[:n]:
            path = self.cpu_dir / addr
            lines = path.read_text().splitlines() if path.exists() else []
            for line in lines[1::2]:  # the children's line of each `times`
                for part in line.split():  # "0m0.120000s 0m0.030000s": user, system
                    minutes, seconds = part.rstrip("s").split("m")
                    total += int(minutes) * 60 + float(seconds)
        return total

    def idle(self, n, timeout=10):
        """Wait until no sshd server has a connection child left (so cpu() has them all)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = [proc.pid for _, _, _, proc, _ in self.hosts[:n]
                    if Path("/proc/%d/task/%d/children" % (proc.pid, proc.pid)).read_text().strip()]
            if not busy:
                return
            time.sleep(0.05)


def free_port(addr):
    with socket.socket() as sock:
        sock.bind((addr, 0))
        return sock.getsockname()[1]


def write_inventory(path, fleet, n, services, python):
    hosts = {}
    for name, addr, port, _, _ in fleet.hosts[:n]:
        hosts[name] = {"ansible_host": addr, "ansible_port": port}
    pg, redis, service, api_key = services
    group_vars = {
        "ansible_user": USER, "ansible_ssh_private_key_file": str(fleet.client_key),
        "ansible_ssh_common_args": "-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes" % fleet.known_hosts,
        "ansible_python_interpreter": str(python),
        "hunter_app_url": service.url, "hunter_expected_environment": "production",
        "hunter_app_db_host": pg.host, "hunter_app_db_port": pg.port, "hunter_app_db_name": pg.database,
        "hunter_app_db_user": pg.user, "hunter_app_db_password": pg.password,
        "hunter_app_redis_url": redis.url, "hunter_api_key": api_key, "hunter_api_legacy_decision": "removed",
        # the hand-written playbook's Redis settings (the roles read hunter_app_redis_url)
        "bench_redis_host": redis.host, "bench_redis_port": redis.port, "bench_redis_password": redis.password,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"all": {"children": {"app": {"hosts": hosts, "vars": group_vars}}}}, handle)


def ssh_wrapper(base):
    """An ssh that logs the address of every invocation, then runs the real ssh."""
    log = Path(base) / "ssh-calls.log"
    wrapper = Path(base) / "ssh-counting"
    wrapper.write_text("#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in %s.*) echo \"$a\" >> %s;; esac; done\n"
                       "exec %s \"$@\"\n" % (SUBNET, log, shutil.which("ssh")))
    wrapper.chmod(0o755)
    return wrapper, log


RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+"
                   r"skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)", re.M)


def run_once(kind, n, base, fleet, inventory, wrapper, calls_log, settings, run_no):
    control_dir = Path(base) / ("cp%d" % run_no)
    control_dir.mkdir()
    report_dir = Path(base) / ("reports%d" % run_no)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_SSH_EXECUTABLE=str(wrapper),
               ANSIBLE_SSH_CONTROL_PATH_DIR=str(control_dir), ANSIBLE_NOCOLOR="1")
    env.update(settings)
    before_conn = fleet.connections(n)
    before_calls = calls_log.read_text().count("\n") if calls_log.exists() else 0
    before_host_cpu = fleet.cpu(n)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    extravars = {"hunter_ops_report_dir": str(report_dir), "hunter_ops_required_checks": REQUIRED}
    began = time.monotonic()
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory),
                             str(PLAYBOOKS[kind]), "-e", json.dumps(extravars)],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - began
    (Path(base) / ("run%d-%s-%d.log" % (run_no, kind, n))).write_text(result.stdout + result.stderr)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # close this run's ControlPersist masters so the sshd servers reap their connections
    for sock in control_dir.iterdir():
        subprocess.run(["ssh", "-o", "ControlPath=%s" % sock, "-O", "exit", "x"], capture_output=True)
    fleet.idle(n)
    host_cpu = fleet.cpu(n) - before_host_cpu
    ctl_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    conns = [a - b for a, b in zip(fleet.connections(n), before_conn)]
    calls = calls_log.read_text().count("\n") - before_calls
    recap = {m.group(1): [int(x) for x in m.groups()[1:]] for m in RECAP.finditer(result.stdout)}
    app = [v for h, v in recap.items() if h.startswith("app-")]
    # rc 2 with every host clean is a NO-GO the report explains (check_report): kept, and shown
    if len(app) != n or any(v[2] or v[3] for v in app) or result.returncode not in (0, 2) or (
            result.returncode == 2 and kind != "preflight"):
        raise RuntimeError("%s with %d hosts: rc %d, not every host ran cleanly: see %s" % (
            kind, n, result.returncode, Path(base) / ("run%d-%s-%d.log" % (run_no, kind, n))))
    tasks = statistics.mean(v[0] + v[1] + v[3] + v[5] + v[6] for v in app)
    skipped = statistics.mean(v[4] for v in app)
    verdict = check_report(report_dir, n) if kind == "preflight" else "-"
    return {"verdict": verdict,"kind": kind, "n": n, "wall": wall, "tasks": tasks, "skipped": skipped,
            "conn": statistics.mean(conns), "conn_max": max(conns), "ssh": calls / n,
            "ctl_cpu": ctl_cpu, "host_cpu": host_cpu}


def check_report(report_dir, n):
    path = report_dir / "latest" / "report.json"
    report = json.loads(path.read_text())
    for i in range(1, n + 1):
        host = "app-%02d" % i
        for check_id in APP_IDS:
            if not any(item.get("id") == check_id and item.get("host") == host for item in report["items"]):
                raise RuntimeError("report %s lacks %s on %s" % (path, check_id, host))
    if report.get("verdict") == "GO":
        return "GO"
    # A NO-GO here is what the run observed (e.g. the one shared sample service timing out under
    # 50 hosts' probes on a loaded machine): shown with its reasons, left out of the medians.
    return "NO-GO: " + "; ".join("%s@%s %s" % (b["id"], b["host"], b["message"][:60]) for b in report["blocking"][:3])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", default="1,10,50")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-warmup", action="store_true", help="skip the uncounted first run of each playbook")
    parser.add_argument("--keep", action="store_true", help="keep the run logs (printed path)")
    parser.add_argument("--only", choices=sorted(PLAYBOOKS), help="run one playbook only")
    parser.add_argument("--set", action="append", default=[], metavar="ANSIBLE_X=value",
                        help="extra Ansible setting for every run (environment variable)")
    args = parser.parse_args()
    counts = [int(x) for x in args.hosts.split(",")]
    settings = dict(s.split("=", 1) for s in args.set)
    kinds = [args.only] if args.only else ["preflight", "handwritten"]
    python = ensure_prerequisites()
    base = tempfile.mkdtemp(prefix="hunter-scale-")
    os.chmod(base, 0o711)  # the login user must reach base/ssh; nothing else here is readable
    fleet = pg = redis = service = None
    failed = True
    try:
        pg = PostgresServer(base).start()
        seed(pg)
        redis = RedisServer(base, password="bench-" + os.urandom(6).hex()).start()
        api_key = "key-" + os.urandom(8).hex()
        service = SampleService(base, env={"HUNTER_DATABASE_URL": pg.dsn, "HUNTER_REDIS_URL": redis.url,
                                           "HUNTER_ENVIRONMENT": "production", "HUNTER_API_KEYS": api_key}).start()
        fleet = Fleet(base, max(counts)).start()
        wrapper, calls_log = ssh_wrapper(base)
        print("hosts: %d sshd on %s.1-%d; settings: ansible.cfg%s" % (
            max(counts), SUBNET, max(counts), "".join(" + %s" % s for s in args.set)), flush=True)
        results = []
        run_no = 0
        # warm-up, not counted: the first ansible-playbook run fills caches (bytecode, the
        # ANSIBALLZ payload cache, the page cache) that every later run finds filled
        inventory = Path(base) / "inventory-warmup.json"
        write_inventory(inventory, fleet, 1, (pg, redis, service, api_key), python)
        for kind in [] if args.no_warmup else kinds:
            run_no += 1
            run_once(kind, 1, base, fleet, inventory, wrapper, calls_log, settings, run_no)
        for n in counts:
            inventory = Path(base) / ("inventory-%d.json" % n)
            write_inventory(inventory, fleet, n, (pg, redis, service, api_key), python)
            for r in range(args.repeat):
                order = kinds if r % 2 == 0 else list(reversed(kinds))
                for kind in order:
                    run_no += 1
                    res = run_once(kind, n, base, fleet, inventory, wrapper, calls_log, settings, run_no)
                    results.append(res)
                    print("  %-11s n=%-3d wall %6.2f s  tasks/host %4.1f (+%.0f skipped)  conn/host %.1f (max %d)  "
                          "ssh/host %4.1f  ctl CPU %5.1f s  host CPU %5.1f s  %s  load %s" % (
                              kind, n, res["wall"], res["tasks"], res["skipped"], res["conn"], res["conn_max"],
                              res["ssh"], res["ctl_cpu"], res["host_cpu"], res["verdict"],
                              " ".join(Path("/proc/loadavg").read_text().split()[:3])), flush=True)
        summary(results, counts, kinds)
        failed = False
    finally:
        if fleet:
            fleet.stop()
        for server in (service, redis):
            if server:
                server.stop()
        if pg:
            pg.destroy()
        if failed or args.keep:
            # the run logs say what went wrong; the reports and inventories hold test secrets only
            print("[scale] kept %s for the logs" % base)
        else:
            shutil.rmtree(base, ignore_errors=True)


def summary(results, counts, kinds):
    print("\n| hosts | playbook | wall s median (min-max) | vs 1 host | tasks/host | SSH conn/host | ssh calls/host "
          "| controller CPU s | hosts' CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    medians = {}
    for n in counts:
        for kind in kinds:
            rs = [r for r in results if r["n"] == n and r["kind"] == kind and r["verdict"] in ("GO", "-")]
            if not rs:
                print("| %d | %s | no GO run |" % (n, kind))
                continue
            walls = [r["wall"] for r in rs]
            medians[(kind, n)] = statistics.median(walls)
            base = medians.get((kind, counts[0]), medians[(kind, n)])
            print("| %d | %s | %.2f (%.2f-%.2f) | %.2fx | %.0f (+%.0f skipped) | %.1f | %.1f | %.1f | %.1f |" % (
                n, kind, medians[(kind, n)], min(walls), max(walls), medians[(kind, n)] / base,
                rs[0]["tasks"], rs[0]["skipped"], statistics.median(r["conn"] for r in rs),
                statistics.median(r["ssh"] for r in rs), statistics.median(r["ctl_cpu"] for r in rs),
                statistics.median(r["host_cpu"] for r in rs)))
    if len(kinds) == 2:
        for n in [c for c in counts if ("handwritten", c) in medians and ("preflight", c) in medians]:
            print("hand-written / preflight at %d hosts: %.2fx" % (
                n, medians[("handwritten", n)] / medians[("preflight", n)]))


if __name__ == "__main__":
    main()
