"""nginx in front of the app: its config checked by `nginx -t`, then live on loopback before real
gunicorn and Flower processes."""

from __future__ import annotations

import http.client
import os
import pwd
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template

import pytest
import requests

from tests import support
from workers import launch

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "nginx" / "templates" / "default.conf.template"
pytestmark = pytest.mark.skipif(not shutil.which("nginx"), reason="nginx not installed: apt-get install nginx-light")


class GpuqTemplate(Template):
    """Only ${GPUQ_*}, as the nginx image's envsubst does with NGINX_ENVSUBST_FILTER=^GPUQ_: $host stays."""

    pattern = r"\$\{(?P<braced>GPUQ_[A-Z_]+)\}(?P<named>(?!))?(?P<escaped>(?!))?(?P<invalid>(?!))?"


def render(
    tmp: Path,
    web: str,
    flower: str,
    listen: int,
    static_root: Path,
    rate: str = "10r/s",
    burst: int = 20,
    tls: str = "off",
    behind_proxy: str = "false",
) -> Path:
    """A main nginx.conf under tmp that includes the rendered template, with every path under tmp."""
    values = {
        "GPUQ_TLS": tmp / "tls.conf",
        "GPUQ_BEHIND_PROXY": behind_proxy,
        "GPUQ_LISTEN": listen,
        "GPUQ_WEB": web,
        "GPUQ_FLOWER": flower,
        "GPUQ_STATIC_ROOT": static_root,
        "GPUQ_MAX_BODY": "8m",
        "GPUQ_MAX_BUNDLE": "100m",
        "GPUQ_SUBMIT_RATE": rate,
        "GPUQ_SUBMIT_BURST": burst,
    }
    (tmp / "gpuq.conf").write_text(GpuqTemplate(TEMPLATE.read_text()).substitute(values))
    # The TLS part as compose mounts it, with the certificate's paths under tmp.
    (tmp / "tls.conf").write_text(
        (ROOT / "nginx" / "tls" / f"{tls}.conf").read_text().replace("/etc/nginx/tls", str(tmp))
    )
    temps = "\n".join(
        f"    {kind}_temp_path {tmp}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp / "nginx.conf"
    # Workers as this test's user (nginx ignores `user` when not started as root): pytest's temporary
    # folders are closed to www-data, the Debian default.
    conf.write_text(f"""user {pwd.getpwuid(os.geteuid()).pw_name};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log {tmp}/access.log;
{temps}
    include {tmp}/gpuq.conf;
}}
""")
    return conf


def test_rendered_config_passes_nginx_t(tmp_path):
    # Addresses, not compose's service names: nginx -t resolves upstream names, and only Docker's DNS knows those.
    conf = render(tmp_path, "127.0.0.1:8000", "127.0.0.1:5555", 8080, tmp_path / "static")
    out = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "syntax is ok" in out.stderr


def test_template_leaves_nginx_variables_alone(tmp_path):
    text = (render(tmp_path, "web:8000", "flower:5555", 8080, tmp_path).parent / "gpuq.conf").read_text()
    assert "${" not in text
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in text
    assert "server web:8000;" in text and "rate=10r/s;" in text


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_url):
    """gunicorn serving scheduler.wsgi, Flower, and nginx in front of both, each on a free loopback port."""
    tmp = tmp_path_factory.mktemp("nginx-live")
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{tmp}/db.sqlite3",
        DEBUG="true",
        REDIS_URL=redis_url,
        STATIC_ROOT=str(tmp / "static"),
        FLOWER_BASIC_AUTH="ops:flower-pw",
        PYTHONPATH=str(ROOT),
    )
    for step in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
        subprocess.run([support.python(), "manage.py", *step], cwd=ROOT, env=env, check=True, capture_output=True)
    web_port, flower_port, nginx_port = support.free_port(), support.free_port(), support.free_port()
    procs = [
        support.Proc("nginx-test-web", support.gunicorn(web_port, 2, "--forwarded-allow-ips=*"), env),
        support.Proc(
            "nginx-test-flower", launch.flower(flower_port, "--url_prefix=flower", "--address=127.0.0.1"), env
        ),
    ]
    conf = render(
        tmp, f"127.0.0.1:{web_port}", f"127.0.0.1:{flower_port}", nginx_port, tmp / "static", rate="1r/s", burst=5
    )
    procs.append(support.Proc("nginx-test-nginx", ["nginx", "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"], env))
    base = f"http://127.0.0.1:{nginx_port}"
    try:
        support.wait_until(lambda: support.http_ok(f"http://127.0.0.1:{web_port}/login/"), 60, "gunicorn")
        support.wait_until(lambda: support.http_ok(f"http://127.0.0.1:{flower_port}/flower/healthcheck"), 60, "flower")
        support.wait_until(lambda: support.http_ok(f"{base}/nginx-health"), 20, "nginx")
        yield {"base": base, "web_port": web_port, "flower_port": flower_port, "env": env}
    finally:
        for proc in reversed(procs):
            proc.stop()


def test_api_schema_comes_through_nginx_with_security_headers(stack):
    response = requests.get(f"{stack['base']}/api/schema/", timeout=10)
    assert response.status_code == 200
    assert "openapi" in response.text
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_static_files_are_served_by_nginx(stack):
    response = requests.get(f"{stack['base']}/static/web/site.js", timeout=10)
    assert response.status_code == 200
    assert "gunicorn" not in response.headers.get("Server", "")


def test_body_over_client_max_body_size_is_413(stack):
    port = int(stack["base"].rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    # nginx answers from the Content-Length header alone, before any of the 9 MB is sent.
    conn.putrequest("POST", "/api/jobs/")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(9 * 1024 * 1024))
    conn.endheaders()
    assert conn.getresponse().status == 413


def test_a_working_dir_upload_may_be_larger_than_other_bodies(stack):
    body = b"x" * (9 * 1024 * 1024)
    # Past nginx's 8m to Django, which wants a token: its 401 each time, never a 502 from nginx (which
    # came in about 1 of 8 while the app left the body unread: scheduler/unread_body.py).
    url = f"{stack['base']}/api/bundles/{'0' * 64}/"
    statuses = [requests.put(url, data=body, timeout=30).status_code for _ in range(30)]
    assert set(statuses) == {401}, statuses
    assert requests.put(f"{stack['base']}/api/bundles/nothex/", data=body, timeout=30).status_code == 413


def test_a_burst_of_submissions_gets_429_from_nginx(stack):
    statuses = [requests.post(f"{stack['base']}/api/jobs/", json={}, timeout=10).status_code for _ in range(20)]
    assert statuses[0] in (401, 403)  # the app's answer: no credentials
    assert statuses.count(429) >= 10
    assert requests.get(f"{stack['base']}/api/schema/", timeout=10).status_code == 200  # GETs are not limited


def test_submissions_through_the_form_and_arrays_and_sign_ins_are_limited_by_nginx(stack):
    for path in ("/api/arrays/", "/submit/", "/login/"):
        statuses = [requests.post(f"{stack['base']}{path}", data={}, timeout=10).status_code for _ in range(20)]
        assert statuses.count(429) >= 5, (path, statuses)


def test_metrics_need_a_token_through_nginx(stack):
    assert requests.get(f"{stack['base']}/metrics", timeout=10).status_code == 401


def test_flowers_own_metrics_need_its_password(stack):
    url = f"{stack['base']}/flower/metrics"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, auth=("ops", "wrong"), timeout=10).status_code == 401
    answer = requests.get(url, auth=("ops", "flower-pw"), timeout=10)
    assert answer.status_code == 200 and "flower_" in answer.text


def test_flower_needs_credentials(stack):
    assert requests.get(f"{stack['base']}/flower/", timeout=10).status_code == 401
    assert requests.get(f"{stack['base']}/flower/", auth=("ops", "wrong"), timeout=10).status_code == 401
    assert requests.get(f"{stack['base']}/flower/", auth=("ops", "flower-pw"), timeout=10).status_code == 200


@pytest.mark.slow
def test_flowers_api_through_nginx_lists_the_live_workers_by_host_and_gpu(stack, live_system, transactional_db):
    """Flower as `make run` and compose start it (basic auth, /flower prefix) sees the live CPU workers.
    `transactional_db`: pytest-django creates the test database that the workers use only for tests asking for one."""
    snaps = live_system.wait_for_gpus(2)
    url = f"{stack['base']}/flower/api/workers"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, auth=("ops", "wrong"), timeout=10).status_code == 401
    queues = {f"{s.queue}@{s.host}": s.queue for s in snaps}  # a worker's node name is queue@host

    def listed() -> dict | None:
        r = requests.get(url, params={"refresh": "1"}, auth=("ops", "flower-pw"), timeout=30)
        return r.json() if r.status_code == 200 and set(queues) <= set(r.json()) else None

    workers = support.wait_until(listed, 60, "Flower to list the live workers", every=1)
    for name, queue in queues.items():
        assert [q["name"] for q in workers[name]["active_queues"]] == [queue]
    assert {s.host for s in snaps} == {"hostA", "hostB"}


def test_container_healthchecks_pass_against_live_web_and_flower(stack):
    for role, port in (("web", stack["web_port"]), ("flower", stack["flower_port"])):
        out = subprocess.run(
            [support.python(), "compose/healthcheck.py", role, str(port)],
            cwd=ROOT,
            env=stack["env"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, (role, out.stderr)


class EchoProto(BaseHTTPRequestHandler):
    """An upstream that answers with the X-Forwarded-Proto nginx sent it."""

    def do_GET(self) -> None:
        body = (self.headers.get("X-Forwarded-Proto") or "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def echo():
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoProto)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def self_signed(tmp: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
        check=True,
        capture_output=True,
    )


def serve(tmp: Path, web: str, **options) -> tuple[str, str, support.Proc]:
    """nginx on free ports (plain, TLS) in front of `web`; the TLS port replaces on.conf's 8443."""
    plain, tls = support.free_port(), support.free_port()
    conf = render(tmp, web, web, plain, tmp, **options)
    (tmp / "tls.conf").write_text((tmp / "tls.conf").read_text().replace("8443", str(tls)))
    proc = support.Proc(
        "nginx-test-tls", ["nginx", "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"], dict(os.environ)
    )
    support.wait_until(lambda: support.http_ok(f"http://127.0.0.1:{plain}/nginx-health"), 20, "nginx")
    return f"http://127.0.0.1:{plain}", f"https://127.0.0.1:{tls}", proc


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")
def test_with_tls_on_it_serves_https_and_redirects_plain_http(tmp_path, echo):
    self_signed(tmp_path)
    plain, tls, proc = serve(tmp_path, echo, tls="on")
    try:
        secure = requests.get(
            f"{tls}/login/", verify=str(tmp_path / "cert.pem"), headers={"Host": "localhost"}, timeout=10
        )
        assert (secure.status_code, secure.text) == (200, "https")
        redirected = requests.get(f"{plain}/login/?next=/", allow_redirects=False, timeout=10)
        assert redirected.status_code == 301 and redirected.headers["Location"] == "https://127.0.0.1/login/?next=/"
        assert requests.get(f"{plain}/nginx-health", allow_redirects=False, timeout=10).status_code == 200
    finally:
        proc.stop()


@pytest.mark.parametrize("behind_proxy, told", [("false", "http"), ("true", "https")])
def test_a_forwarded_scheme_is_believed_only_behind_an_outer_proxy(tmp_path, echo, behind_proxy, told):
    plain, _, proc = serve(tmp_path, echo, behind_proxy=behind_proxy)
    try:
        answer = requests.get(f"{plain}/login/", headers={"X-Forwarded-Proto": "https"}, timeout=10)
        assert answer.text == told
        assert requests.get(f"{plain}/login/", timeout=10).text == "http"
    finally:
        proc.stop()
