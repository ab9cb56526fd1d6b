"""The modules' S3 code on both boto3 stacks it meets (issue 12): the newest from PyPI (the controller, the
execution environment) and Debian 12's (python3-boto3 1.26.27 / botocore 1.29.27 / s3transfer 0.6.0), which
playbooks/prepare_hosts.yml installs on db hosts that copy to S3 and which is the floor of
requirements-collection.txt. scripts/setup.d/debian12-boto3.sh puts Debian's versions in a library directory;
each case runs in a child Python with one stack first on PYTHONPATH (tests/integration/s3_client_probe.py).

Against moto S3 the copy, listing and download must work; against a listener that never answers, a throttling
endpoint and one that answers slowly, each call must wait about one timeout, retry an answered error a bounded
number of times and keep a slow success. Before the fix, botocore 1.29 read the retry bound's "stop" (False)
as "retry now": a hung endpoint and a success slower than the timeout both repeated the call forever.
"""
from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.harness import REPO_ROOT

DEBIAN12_LIBS = REPO_ROOT / ".venv-debian12-boto3"
DEBIAN12_BOTOCORE = "1.29.27"
STACKS = ["pypi", "debian12"]
TIMEOUT = 5  # the slow servers' pauses are 0.6 of it: 2 s under the read timeout on a loaded machine


def probe(stack: str, **args) -> dict:
    """One probe call in a child Python on `stack`; a call that never returns fails the test, not the run."""
    paths = [str(REPO_ROOT / ".ansible" / "collections")]
    if stack == "debian12":
        if not (DEBIAN12_LIBS / "botocore").is_dir():
            pytest.fail("Debian 12's boto3 stack is missing: run scripts/setup.d/debian12-boto3.sh (scripts/setup.sh does)")
        paths.insert(0, str(DEBIAN12_LIBS))
    try:
        proc = subprocess.run([sys.executable, str(Path(__file__).with_name("s3_client_probe.py"))],
                              input=json.dumps(args), capture_output=True, text=True, timeout=60, check=False,
                              env=dict(os.environ, PYTHONPATH=os.pathsep.join(paths)))
    except subprocess.TimeoutExpired:
        pytest.fail("%s: the S3 call %r was still running after 60 s (timeout %s s)"
                    % (stack, args["call"], args["timeout"]))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    if stack == "debian12":
        assert out["botocore"] == DEBIAN12_BOTOCORE, out
    else:
        import botocore
        assert out["botocore"] == botocore.__version__, out
    return out


class _Scripted(http.server.ThreadingHTTPServer):
    """An HTTP listener on loopback whose handler answers every request; `.hits` counts them."""

    def __init__(self, handler):
        self.hits = []
        super().__init__(("127.0.0.1", 0), handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.server_port


@pytest.fixture
def scripted():
    made = []

    def start(handler) -> _Scripted:
        made.append(_Scripted(handler))
        return made[-1]
    yield start
    for server in made:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


class SlowDown(_Quiet):
    """Throttling, as real S3 answers it."""

    def do_GET(self):  # noqa: N802
        self.server.hits.append(self.path)
        body = b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class LateSlowDown(SlowDown):
    """Throttling answered 0.6 timeout after each request: the second answer comes after the timeout."""

    def do_GET(self):  # noqa: N802
        time.sleep(0.6 * TIMEOUT)
        super().do_GET()


class SlowListing(_Quiet):
    """An empty listing, its headers and its body each sent 0.6 timeout apart: every read waits less than the
    read timeout, the call as a whole longer than the timeout."""

    def do_GET(self):  # noqa: N802
        self.server.hits.append(self.path)
        body = (b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
                b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>'
                b'<KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>')
        time.sleep(0.6 * TIMEOUT)
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        time.sleep(0.6 * TIMEOUT)
        self.wfile.write(body)


@pytest.mark.parametrize("stack", STACKS)
def test_copy_listing_and_download_work_against_moto(stack, s3_server, tmp_path):
    bucket = s3_server.create_bucket("lib-%s-%d" % (stack, os.getpid()))
    out = probe(stack, call="roundtrip", endpoint=s3_server.endpoint_url, bucket=bucket, timeout=30,
                access_key=s3_server.access_key, secret_key=s3_server.secret_key, workdir=str(tmp_path))
    assert out["ok"], out
    result = out["result"]
    assert result["listed"] == ["p/big.bin", "p/small.bin"]
    assert result["sent"]["big.bin"]["parts"] == 2 and result["sent"]["small.bin"]["parts"] == 1
    assert all(sent["verified_by"] == "checksum" for sent in result["sent"].values()), result["sent"]
    assert {name: sent["sha256"] for name, sent in result["sent"].items()} == result["received"]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("call", ["list", "put", "download"])
def test_a_hung_endpoint_costs_one_timeout(stack, call, silent_server, tmp_path):
    payload = tmp_path / "payload"
    payload.write_bytes(b"x" * 1000)
    out = probe(stack, call=call, endpoint=silent_server.url, timeout=TIMEOUT, path=str(payload),
                workdir=str(tmp_path))
    assert not out["ok"] and "timeout" in out["error"].lower(), out
    # one timeout (+1 s: a PUT waits up to 1 s for "100 Continue" before it sends), never a retry on top
    assert TIMEOUT - 0.5 <= out["elapsed"] <= TIMEOUT + 2.5, out


class HungDownload(_Quiet):
    """HEAD answers (the object exists, 1000 bytes), GET never does."""

    def do_HEAD(self):  # noqa: N802
        self.server.hits.append("HEAD " + self.path)
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.send_header("ETag", '"0123456789abcdef0123456789abcdef"')
        self.end_headers()

    def do_GET(self):  # noqa: N802
        self.server.hits.append("GET " + self.path)
        time.sleep(4 * TIMEOUT)


@pytest.mark.parametrize("stack", STACKS)
def test_a_download_whose_transfer_hangs_says_timeout(stack, scripted, tmp_path):
    """s3transfer wraps the GET's timeout in RetriesExceededError ("Max Retries Exceeded"): the message must
    still say what happened."""
    server = scripted(HungDownload)
    out = probe(stack, call="download", endpoint=server.url, timeout=TIMEOUT, workdir=str(tmp_path))
    assert not out["ok"] and "timeout" in out["error"].lower(), out
    assert [hit.split()[0] for hit in server.hits] == ["HEAD", "GET"], server.hits
    assert out["elapsed"] <= TIMEOUT + 2.5, out


@pytest.mark.parametrize("stack", STACKS)
def test_an_answered_error_is_retried_a_bounded_number_of_times(stack, scripted):
    server = scripted(SlowDown)
    out = probe(stack, call="list", endpoint=server.url, timeout=TIMEOUT)
    assert not out["ok"] and "SlowDown" in out["error"], out
    assert len(server.hits) == 3, server.hits


@pytest.mark.parametrize("stack", STACKS)
def test_no_retry_starts_after_the_timeout(stack, scripted):
    server = scripted(LateSlowDown)
    out = probe(stack, call="list", endpoint=server.url, timeout=TIMEOUT)
    assert not out["ok"] and "SlowDown" in out["error"], out
    assert len(server.hits) == 2 and out["elapsed"] < 2 * TIMEOUT, (out, server.hits)


@pytest.mark.parametrize("stack", STACKS)
def test_a_success_slower_than_the_timeout_is_kept_not_repeated(stack, scripted):
    server = scripted(SlowListing)
    out = probe(stack, call="list", endpoint=server.url, timeout=TIMEOUT)
    assert out["ok"] and out["result"] == 0, out
    assert out["elapsed"] >= TIMEOUT and len(server.hits) == 1, (out, server.hits)
