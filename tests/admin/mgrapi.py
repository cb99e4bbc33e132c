#!/usr/bin/env python3
"""mgrapi.py -- dkv-manager's HTTP surface against a real manager on
loopback (run by tests/admin/test-manager-api.sh).

    python3 mgrapi.py MANAGER_BIN WORK_DIR

Checks the settings errors, /health, identity, the store list, the
refusals that need no signature (unsigned, unknown path, wrong method,
body too large, bad store name, bad windowSec), /metrics, and that the
manager's key survives a restart.  When Python's `cryptography` package
is there, it also signs requests with a key of its own (added to the
authorized-keys file) and checks bad JSON, create (201, 200 "Already
exists", 409), the port checks (PortOutOfRange, PortInUse), start of a
remote or unknown instance, and replayed nonces, also across a restart.
Exit status 0 when every check holds.  Every wait is bounded.
"""
import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time

MGR, WORK = sys.argv[1], sys.argv[2]
checks = 0
failures = 0


def check(cond, what):
    global checks, failures
    checks += 1
    if not cond:
        failures += 1
        print("FAIL:", what)
    return cond


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def request(port, method, path, body=None, headers=None):
    """One HTTP request: (status, headers dict, body text)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h = dict(headers or {})
    if body is not None and not isinstance(body, bytes):
        body = body.encode()
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read().decode("utf-8", "replace")
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data


def jbody(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


def err_code(text):
    j = jbody(text)
    if isinstance(j, dict) and isinstance(j.get("error"), dict):
        return j["error"].get("code")
    return None


DATA = os.path.join(WORK, "data")
LOG = os.path.join(WORK, "manager.log")
PORTFILE = os.path.join(WORK, "port")
MPORT = free_port()
CPORT = free_port()
LPORT = free_port()
while LPORT == CPORT:
    LPORT = free_port()
BASE_ARGS = [MGR, "--data-dir", DATA, "--bind", "127.0.0.1",
             "--port", str(MPORT), "--management-range",
             "%d-%d" % (MPORT, MPORT),
             "--cluster-range", "%d-%d" % (CPORT, CPORT),
             "--client-range", "%d-%d" % (LPORT, LPORT),
             "--log-file", LOG, "--port-file", PORTFILE,
             "--stop-timeout", "2"]


def start_manager():
    """Starts the manager; returns (process, stdout line)."""
    if os.path.exists(PORTFILE):
        os.remove(PORTFILE)
    out = open(os.path.join(WORK, "stdout"), "w")
    p = subprocess.Popen(BASE_ARGS, stdout=out, stderr=subprocess.DEVNULL)
    deadline = time.time() + 15
    while time.time() < deadline and not os.path.exists(PORTFILE):
        if p.poll() is not None:
            break
        time.sleep(0.05)
    out.close()
    with open(os.path.join(WORK, "stdout")) as f:
        line = f.read()
    return p, line


def stop_manager(p):
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=5)
        return None


def run_bad(args, want_in):
    r = subprocess.run([MGR] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    err = r.stderr.decode()
    check(r.returncode == 2, "exit 2 for %s (got %d)" % (args, r.returncode))
    check(want_in in err, "'%s' in the error of %s: %r" % (want_in, args,
                                                          err))


# ------------------------------------------------------------ settings
r = subprocess.run([MGR, "--help"], stdout=subprocess.PIPE, timeout=20)
check(r.returncode == 0 and b"--data-dir" in r.stdout
      and b"--keep-nodes" in r.stdout, "--help lists the flags")
r = subprocess.run([MGR, "--version"], stdout=subprocess.PIPE, timeout=20)
check(r.returncode == 0 and r.stdout.startswith(b"dkv-manager "),
      "--version")
run_bad(["--port", "20005"], "--data-dir")
run_bad(["--data-dir", DATA, "--port", "20005", "--management-range",
         "21000-21009"], "outside the management range 21000-21009")
run_bad(["--data-dir", DATA, "--cluster-range", "9-5"], "--cluster-range")
run_bad(["--data-dir", DATA, "--cluster-range", "30000-30100",
         "--client-range", "30050-30200"], "overlap")

# ------------------------------------------------------------ first start
mgr, line = start_manager()
check(os.path.exists(PORTFILE), "port file written")
m = re.search(r"listening on 127\.0\.0\.1:(\d+) \(key (\S+)\)", line)
check(m is not None, "the listening line: %r" % line)
port = int(m.group(1)) if m else MPORT
key1 = m.group(2) if m else None
check(port == MPORT, "listens on --port")
with open(PORTFILE) as f:
    check(f.read().strip() == str(port), "port file holds the port")
check(os.path.exists(os.path.join(DATA, "manager.key")), "manager.key made")
ak = os.path.join(DATA, "authorized_keys")
check(os.path.exists(ak), "authorized_keys made")
with open(ak) as f:
    check(f.read().startswith("ed25519 "), "authorized_keys has a line")
check(os.path.exists(os.path.join(os.environ["XDG_CONFIG_HOME"], "dkv",
                                  "admin.key")),
      "the user's admin key was made")

st, _, b = request(port, "GET", "/health")
j = jbody(b) or {}
check(st == 200 and j.get("status") == "ok" and "version" in j
      and isinstance(j.get("uptimeSec"), int), "/health: %s %s" % (st, b))
st, hd, b = request(port, "GET", "/admin/v1/identity")
j = jbody(b) or {}
check(st == 200 and j.get("signKey") == key1 and j.get("boxKey"),
      "identity: %s %s" % (st, b))
check(hd.get("content-type", "").startswith("application/json"),
      "identity is JSON")
box1 = j.get("boxKey")
st, _, b = request(port, "GET", "/admin/v1/stores")
check(st == 200 and jbody(b) == {"stores": []}, "no stores: %s" % b)

# ------------------------------------------------------------ refusals
st, _, b = request(port, "POST", "/admin/v1/stores", '{"name":"S"}',
                   {"Content-Type": "application/json"})
check(st == 401 and err_code(b) == "Unauthorized",
      "unsigned POST refused: %s %s" % (st, b))
st, _, b = request(port, "POST", "/admin/v1/stores/S/instances/a/stop",
                   "")
check(st == 401 and err_code(b) == "Unauthorized",
      "unsigned stop refused: %s %s" % (st, b))
st, _, b = request(port, "GET", "/admin/v2/nothing")
check(st == 404 and err_code(b) == "NotFound", "unknown path: %s" % b)
st, _, b = request(port, "GET", "/")
check(st == 404 and err_code(b) == "NotFound", "root path: %s" % b)
st, hd, b = request(port, "DELETE", "/admin/v1/stores")
check(st == 405 and err_code(b) == "MethodNotAllowed"
      and "POST" in hd.get("allow", ""), "DELETE: %s %s" % (st, b))
st, _, b = request(port, "POST", "/health", "")
check(st == 405, "POST /health: %s" % st)
st, _, b = request(port, "GET", "/admin/v1/stores/NoSuch")
check(st == 404 and "NoSuch" in b, "unknown store: %s" % b)
st, _, b = request(port, "GET", "/admin/v1/stores/-bad")
check(st == 400 and err_code(b) == "BadRequest", "bad store name: %s" % b)
# A body announced as 2 MiB is refused from its Content-Length, before
# it is sent: only the headers and a little of it go out (sending all of
# it would race the manager's close after its answer).
try:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as so:
        so.sendall(b"POST /admin/v1/stores HTTP/1.1\r\n"
                   b"Host: 127.0.0.1\r\n"
                   b"Content-Type: application/json\r\n"
                   b"Content-Length: 2097152\r\n\r\n" + b"x" * 1024)
        raw = b""
        while len(raw) < 65536:        # the manager closes after it
            chunk = so.recv(65536)
            if not chunk:
                break
            raw += chunk
    head = raw.split(b"\r\n", 1)[0].decode("latin-1")
    check(head.startswith("HTTP/1.1 413") and b"TooLarge" in raw,
          "2 MiB body: %r" % head)
except OSError as e:
    check(False, "2 MiB body: %s" % e)
st, _, b = request(port, "GET", "/admin/v1/metrics?windowSec=0")
check(st == 400 and "windowSec" in b, "windowSec=0: %s" % b)
st, _, b = request(port, "GET", "/admin/v1/metrics?windowSec=10")
j = jbody(b) or {}
check(st == 200 and j.get("windowSec") == 10 and j.get("nodes") == [],
      "metrics: %s" % b)
st, hd, b = request(port, "GET", "/metrics")
fails = re.search(r"^dkv_manager_auth_failures_total (\d+)$", b, re.M)
reqs = re.search(r"^dkv_manager_http_requests_total (\d+)$", b, re.M)
check(st == 200 and hd.get("content-type", "").startswith("text/plain"),
      "/metrics is text")
check(fails is not None and int(fails.group(1)) == 2,
      "auth failures counted: %s" % (fails.group(1) if fails else None))
check(reqs is not None and int(reqs.group(1)) >= 12, "requests counted")
check("dkv_manager_stores 0" in b, "stores gauge")
with open(LOG) as f:
    log = f.read()
check(re.search(r"POST /admin/v1/stores from 127\.0\.0\.1: 401 "
                r"Unauthorized: .*missing", log) is not None,
      "the 401 is logged with the peer and the reason")

# ------------------------------------------------------------ signed
try:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import \
        Ed25519PrivateKey
    from cryptography.hazmat.primitives import serialization
    HAVE_CRYPTO = True
except ImportError:
    HAVE_CRYPTO = False
    print("note: python3 'cryptography' missing: signed checks skipped")

signed_saved = None
if HAVE_CRYPTO:
    sk = Ed25519PrivateKey.generate()
    pub = sk.public_key().public_bytes(serialization.Encoding.Raw,
                                       serialization.PublicFormat.Raw)
    kid = base64.b64encode(pub).decode()
    with open(ak, "a") as f:
        f.write("ed25519 %s mgrapi-test\n" % kid)
    time.sleep(1.1)    # a new mtime for the re-read

    def sign(method, path, query, body, manager=None, nonce=None, ts=None):
        ts = ts if ts is not None else int(time.time() * 1000)
        nonce = nonce or secrets.token_hex(16)
        s = "\n".join(["dkv-admin-v1", method, path, query,
                       manager or key1, str(ts), nonce,
                       hashlib.sha256(body).hexdigest()])
        sig = base64.b64encode(sk.sign(s.encode())).decode()
        return {"X-Dkv-Key": kid, "X-Dkv-Timestamp": str(ts),
                "X-Dkv-Nonce": nonce, "X-Dkv-Signature": sig,
                "Content-Type": "application/json"}

    def spost(path, obj, query="", **kw):
        body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        h = sign("POST", path, query, body, **kw)
        full = path + ("?" + query if query else "")
        st, _, b = request(port, "POST", full, body, h)
        return st, b, (full, body, h)

    st, b, _ = spost("/admin/v1/stores", b"{not json")
    check(st == 400 and err_code(b) == "BadRequest" and "JSON" in b,
          "signed bad JSON: %s %s" % (st, b))
    st, b, _ = spost("/admin/v1/stores", {"name": "S"})
    check(st == 400 and "instances" in b, "no instances: %s" % b)

    other = base64.b64encode(b"\x01" * 32).decode()
    remote = [{"name": "r-1", "nodeId": 1, "host": "10.9.9.1",
               "manager": other, "clusterPort": 7811, "clientPort": 7861},
              {"name": "r-2", "nodeId": 2, "host": "10.9.9.2",
               "manager": other, "clusterPort": 7811, "clientPort": 7861}]
    st, b, saved = spost("/admin/v1/stores",
                         {"name": "Remote1", "instancePrefix": "r",
                          "instances": remote})
    j = jbody(b) or {}
    check(st == 201 and j.get("message") == "Created",
          "create remote-only store: %s %s" % (st, b))
    s = j.get("store") or {}
    check(s.get("status") == "NoInstances" and s.get("localInstances") == 0
          and len(s.get("instances", [])) == 2
          and s["instances"][0].get("state") == "Remote",
          "remote store's object: %s" % s)
    signed_saved = saved
    st, b, _ = spost("/admin/v1/stores", {"name": "Remote1",
                                          "instances": remote})
    check(st == 200 and (jbody(b) or {}).get("message") == "Already exists",
          "same create again: %s %s" % (st, b))
    st, b, _ = spost("/admin/v1/stores", {"name": "Remote1",
                                          "instances": remote[:1]})
    check(st == 409 and err_code(b) == "Conflict", "other definition: %s"
          % b)
    dup = [dict(remote[0]), dict(remote[1], nodeId=1)]
    st, b, _ = spost("/admin/v1/stores", {"name": "Dup", "instances": dup})
    check(st == 400 and "nodeId" in b, "duplicate node ids: %s" % b)

    # replay: the same signed request again
    full, body, h = saved
    st, _, b = request(port, "POST", full, body, h)
    check(st == 401 and "replayed" in b, "replayed nonce: %s %s" % (st, b))
    st, b, _ = spost("/admin/v1/stores", {"name": "X"},
                     manager=base64.b64encode(b"\x02" * 32).decode())
    check(st == 401, "signed for another manager: %s" % st)
    st, b, _ = spost("/admin/v1/stores", {"name": "X"},
                     ts=int(time.time() * 1000) - 300000)
    check(st == 401 and "timestamp" in b, "old timestamp: %s" % b)

    def local(name, nid, cport, lport):
        return {"name": name, "nodeId": nid, "host": "127.0.0.1",
                "manager": key1, "clusterPort": cport, "clientPort": lport}

    junk = base64.b64encode(b"junk" * 20).decode()
    st, b, _ = spost("/admin/v1/stores",
                     {"name": "L1", "instances": [local("n1", 1, CPORT,
                                                         LPORT)]})
    check(st == 400 and "sealedSecret" in b, "local needs secrets: %s" % b)
    st, b, _ = spost("/admin/v1/stores",
                     {"name": "L1", "sealedSecret": junk, "sealedToken": junk,
                      "instances": [local("n1", 1, LPORT, CPORT)]})
    check(st == 409 and err_code(b) == "PortOutOfRange"
          and str(LPORT) in b, "port out of range: %s" % b)
    hold = socket.socket()
    hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hold.bind(("127.0.0.1", LPORT))
    hold.listen(1)
    st, b, _ = spost("/admin/v1/stores",
                     {"name": "L1", "sealedSecret": junk, "sealedToken": junk,
                      "instances": [local("n1", 1, CPORT, LPORT)]})
    check(st == 409 and err_code(b) == "PortInUse" and str(LPORT) in b,
          "port in use: %s" % b)
    hold.close()
    st, b, _ = spost("/admin/v1/stores",
                     {"name": "L1", "sealedSecret": junk, "sealedToken": junk,
                      "instances": [local("n1", 1, CPORT, LPORT)]})
    check(st == 400 and "sealedSecret" in b, "junk sealed secret: %s" % b)
    st, b, _ = spost("/admin/v1/stores/Remote1/instances/r-1/start", b"")
    check(st == 409 and err_code(b) == "Conflict" and "10.9.9.1" in b,
          "start a remote instance: %s" % b)
    st, b, _ = spost("/admin/v1/stores/Remote1/instances/zz/start", b"")
    check(st == 404, "start an unknown instance: %s" % b)
    st, b, _ = spost("/admin/v1/stores/Nope/instances/zz/stop", b"",
                     query="force=true")
    check(st == 404, "stop in an unknown store: %s" % b)
    st, b, _ = spost("/admin/v1/stores/Remote1/seal", {"boxKey": box1})
    check(st == 404 and "secrets" in b, "seal without secrets: %s" % b)

# ------------------------------------------------------------ restart
rc = stop_manager(mgr)
check(rc == 0, "graceful stop exits 0 (got %s)" % rc)
mgr, line = start_manager()
m = re.search(r"\(key (\S+)\)", line)
check(m is not None and m.group(1) == key1,
      "same key after a restart: %r" % line)
st, _, b = request(port, "GET", "/admin/v1/identity")
check(st == 200 and (jbody(b) or {}).get("boxKey") == box1,
      "same box key after a restart")
st, _, b = request(port, "GET", "/admin/v1/stores")
names = [s.get("name") for s in (jbody(b) or {}).get("stores", [])]
check(names == (["Remote1"] if HAVE_CRYPTO else []),
      "stores kept across a restart: %s" % names)
if signed_saved is not None:
    full, body, h = signed_saved
    st, _, b = request(port, "POST", full, body, h)
    check(st == 401 and "replayed" in b,
          "a nonce stays used across a restart: %s %s" % (st, b))
rc = stop_manager(mgr)
check(rc == 0, "second graceful stop exits 0 (got %s)" % rc)

print("mgrapi: %d checks, %d failed" % (checks, failures))
sys.exit(1 if failures else 0)
