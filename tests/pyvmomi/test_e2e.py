#!/usr/bin/env python3
"""End-to-end test of `esxi-sim serve` with the real pyVmomi client.

Runs real `esxi-sim serve` processes (fixed seeds, --boot-time 1s) and drives them with pyVmomi
exactly as user scripts do: SmartConnect, property reads through Fetch, WaitForTask, the firmware
backup / upload / restore / reset cycle, the local account manager and advanced options.

Usage (normally through ci/pyvmomi, which makes the venv):
    ESXI_SIM_BIN=target/debug/esxi-sim python tests/pyvmomi/test_e2e.py [-v] [NAME-SUBSTRING ...]

Prints one line per test (`name ok|FAIL seconds`), the failures' tracebacks with the tail of the
servers' stderr, and a summary. Exit status 1 if any test failed. No pytest needed.
"""

import atexit
import base64
import gzip
import http.client
import io
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback
import xml.etree.ElementTree as ET

from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import VmomiSupport, vim, vmodl

# ---------------------------------------------------------------------------------------------
# Constants

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ESXI_SIM_BIN = os.environ.get("ESXI_SIM_BIN", "target/debug/esxi-sim")
if not os.path.isabs(ESXI_SIM_BIN):
    ESXI_SIM_BIN = os.path.join(REPO, ESXI_SIM_BIN)

HOST = "127.0.0.1"
PASSWORD = "S3cret!pw"
NEW_PASSWORD = "N3w!pass"
BOOT_TIME = os.environ.get("ESXI_SIM_BOOT_TIME", "1s")
VERBOSE = False

UUID_A = "4C4C4544-0047-3210-804E-C8C04F435032"
UUID_B = "4C4C4544-0051-3810-8052-B4C04F4A5931"
UUID_GA = "4C4C4544-0036-4A10-8039-B7C04F565331"

BUILD_67U3 = 14320388
BUILD_67GA = 8169922
RELEASE_67U3 = "VMware ESXi 6.7.0 Update 3"
UPLOAD_PATH = "/tmp/configBundle.tgz"

# pyVmomi's version probe (GET vimServiceVersions.xml) has no timeout of its own: never hang on a
# host that accepts a connection and then says nothing.
socket.setdefaulttimeout(30)

LONG = VmomiSupport.vmodlTypes["long"]  # xsd:long, as ESXi wants for integer advanced options

# ---------------------------------------------------------------------------------------------
# Server processes

_ALL_PROCS = []       # every server ever started (killed at exit whatever happens)
_TEST_PROCS = []      # servers of the running test (stderr tails shown on failure)


class Server:
    def __init__(self, proc, port, log_path, args):
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self.args = args

    def stderr_tail(self, n=25):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                lines = f.readlines()
        except OSError:
            return ""
        return "".join(lines[-n:])


def _drain(stream):
    try:
        for _ in iter(lambda: stream.read(4096), b""):
            pass
    except Exception:
        pass


def _spawn(args, ready_timeout, ready):
    """Runs an `esxi-sim serve` command line until `ready(stdout so far)` holds; returns
    (Server, stdout text). Its stderr goes to a file shown on failure; stdout is drained after."""
    fd, log_path = tempfile.mkstemp(prefix="esxi-sim-", suffix=".stderr")
    log = os.fdopen(fd, "wb")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                            cwd=REPO)
    log.close()
    srv = Server(proc, None, log_path, args)
    _ALL_PROCS.append(srv)
    _TEST_PROCS.append(srv)
    deadline = time.monotonic() + ready_timeout
    buf = b""
    while not ready(buf):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("esxi-sim printed no ready line within %.0fs: %s"
                                 % (ready_timeout, " ".join(args)))
        r, _, _ = select.select([proc.stdout], [], [], min(left, 0.2))
        if r:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                proc.wait(timeout=5)
                raise AssertionError("esxi-sim exited (rc=%s) before ready: %s (stderr below)"
                                     % (proc.returncode, " ".join(args)))
            buf += chunk
    # Keep draining stdout so that a chatty server can never block on a full pipe.
    threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
    return srv, buf.decode("utf-8", "replace")


def start_server(profile="6.7U3", seed=1, uuid=None, hostname=None, password=PASSWORD,
                 boot_time=BOOT_TIME, ready_timeout=20.0):
    """Starts `esxi-sim serve` on an OS-chosen port; returns (Server, port)."""
    args = [ESXI_SIM_BIN, "serve", "--listen", HOST + ":0", "--profile", profile,
            "--password", password, "--seed", str(seed), "--boot-time", boot_time]
    if hostname:
        args += ["--hostname", hostname]
    if uuid:
        args += ["--uuid", uuid]
    srv, out = _spawn(args, ready_timeout, lambda buf: b"\n" in buf)
    line = out.split("\n", 1)[0].strip()
    m = re.fullmatch(r"ready: https://127\.0\.0\.1:(\d+)/sdk", line)
    assert m, "unexpected first stdout line %r (want 'ready: https://127.0.0.1:PORT/sdk')" % line
    srv.port = int(m.group(1))
    return srv, srv.port


def stop_server(srv, timeout=5.0):
    """SIGTERM, then SIGKILL after `timeout`. Returns the exit code."""
    if srv.proc.poll() is None:
        try:
            srv.proc.send_signal(signal.SIGTERM)
            srv.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
            srv.proc.wait()
    return srv.proc.returncode


def _kill_all():
    for srv in _ALL_PROCS:
        if srv.proc.poll() is None:
            try:
                srv.proc.kill()
                srv.proc.wait(timeout=5)
            except Exception:
                pass
        try:
            os.unlink(srv.log_path)
        except OSError:
            pass


atexit.register(_kill_all)


def _on_signal(signum, _frame):
    _kill_all()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)

# ---------------------------------------------------------------------------------------------
# Client helpers


def connect(port, pwd=PASSWORD, user="root"):
    return SmartConnect(host=HOST, port=port, user=user, pwd=pwd,
                        disableSslCertValidation=True, httpConnectionTimeout=15)


def _ctx():
    return ssl._create_unverified_context()


def _http(port, method, path, body=None, headers=None, timeout=15):
    conn = http.client.HTTPSConnection(HOST, port, context=_ctx(), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, dict(resp.getheaders()), data
    finally:
        conn.close()


def _local_url(url, port):
    """Replaces the `*` host of a firmware URL with the address we connected to; returns the
    path part after checking scheme and port."""
    m = re.fullmatch(r"https://\*:(\d+)(/.*)", url)
    assert m, "URL %r is not of the form https://*:PORT/..." % url
    assert int(m.group(1)) == port, "URL %r carries port %s, server is on %d" % (
        url, m.group(1), port)
    return m.group(2)


def download(url, port):
    """GET a backup URL with no credentials (as Ansible and Salt do); returns the bytes."""
    path = _local_url(url, port)
    status, _, data = _http(port, "GET", path)
    assert status == 200, "GET %s -> HTTP %d: %r" % (path, status, data[:200])
    return data


def upload(port, data, pwd=PASSWORD, url=None, cookie=None, user="root"):
    """PUT bundle bytes to the upload URL with Basic auth (or a session cookie); returns status."""
    path = _local_url(url, port) if url else UPLOAD_PATH
    headers = {"Content-Type": "application/octet-stream"}
    if cookie is not None:
        headers["Cookie"] = cookie
    elif pwd is not None:
        tok = base64.b64encode(("%s:%s" % (user, pwd)).encode()).decode()
        headers["Authorization"] = "Basic " + tok
    status, _, body = _http(port, "PUT", path, body=data, headers=headers)
    return status


def upload_ok(port, data, pwd=PASSWORD, url=None, cookie=None):
    status = upload(port, data, pwd=pwd, url=url, cookie=cookie)
    assert 200 <= status < 300, "upload PUT -> HTTP %d" % status


def probe(port, timeout=1.0):
    """True if the host answers GET /sdk/vimServiceVersions.xml."""
    try:
        status, _, _ = _http(port, "GET", "/sdk/vimServiceVersions.xml", timeout=timeout)
        return status == 200
    except Exception:
        return False


def wait_back(port, pwd=PASSWORD, timeout=30.0, down_within=10.0):
    """After a restore/reset: waits for the host to go away, then until SmartConnect works.
    Returns (si, saw_down). InvalidLogin from an answering host is raised at once."""
    t0 = time.monotonic()
    saw_down = False
    while time.monotonic() - t0 < down_within:
        if not probe(port, timeout=0.5):
            saw_down = True
            break
        time.sleep(0.03)
    last = None
    while time.monotonic() - t0 < timeout:
        try:
            return connect(port, pwd), saw_down
        except vim.fault.InvalidLogin:
            raise
        except Exception as e:  # refused, reset, not a VIM server (yet), HostConnectFault ...
            last = e
            time.sleep(0.1)
    raise AssertionError("host on port %d did not come back within %.0fs (saw_down=%s); last "
                         "error: %r" % (port, timeout, saw_down, last))


def find_host(si):
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    try:
        hosts = list(view.view)
    finally:
        view.Destroy()
    assert len(hosts) == 1, "container view lists %d hosts" % len(hosts)
    return hosts[0]


def get_host(si):
    return si.RetrieveContent().rootFolder.childEntity[0].hostFolder.childEntity[0].host[0]


def firmware(si):
    return get_host(si).configManager.firmwareSystem


def enter_mm(si, host=None):
    host = host or get_host(si)
    task = host.EnterMaintenanceMode_Task(timeout=0)
    state = WaitForTask(task, si=si)
    assert state == "success", state
    assert host.runtime.inMaintenanceMode is True
    return task


def exit_mm(si, host=None):
    host = host or get_host(si)
    task = host.ExitMaintenanceMode_Task(timeout=0)
    state = WaitForTask(task, si=si)
    assert state == "success", state
    assert host.runtime.inMaintenanceMode is False
    return task


def backup_bytes(si, port):
    url = firmware(si).BackupFirmwareConfiguration()
    return url, download(url, port)


def expect_fault(cls, fn, *args, **kwargs):
    """Calls fn; asserts it raises the vSphere fault `cls`; returns the fault."""
    try:
        fn(*args, **kwargs)
    except cls as f:
        return f
    except Exception as e:
        raise AssertionError("expected %s, got %s: %s" % (cls.__name__, type(e).__name__, e))
    raise AssertionError("expected %s, call returned normally" % cls.__name__)


def call_expecting_reboot(fn, *args, **kwargs):
    """Restore/Reset: the host answers and reboots, or drops the connection (both seen in the
    field). A vSphere fault is a real failure and is re-raised."""
    try:
        fn(*args, **kwargs)
        return None
    except vmodl.MethodFault:
        raise
    except Exception as e:
        return e


def assert_session_dead(si, host_moid="ha-host"):
    """The pre-reboot session must be gone: NotAuthenticated (or no server state at all)."""
    h = vim.HostSystem(host_moid, si._stub)
    try:
        name = h.name
    except vim.fault.NotAuthenticated:
        return
    except Exception as e:
        raise AssertionError("old session: expected NotAuthenticated, got %s: %s"
                             % (type(e).__name__, e))
    raise AssertionError("old session still works after the reboot (host.name=%r)" % name)


# ---- bundles ---------------------------------------------------------------------------------


def tgz_members(data):
    """{name: bytes} of a gzip tar (regular files only)."""
    assert data[:2] == b"\x1f\x8b", "not gzip (starts %r)" % data[:4]
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
        for m in tf.getmembers():
            if m.isfile():
                out[m.name] = tf.extractfile(m).read()
    return out


def parse_manifest(text):
    kv = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            kv[k] = v
    return kv


def bundle_parts(data):
    """(manifest dict, state.tgz bytes, {etc path: bytes} of local.tgz) of a config bundle."""
    members = tgz_members(data)
    assert "Manifest.txt" in members, "bundle members: %s" % sorted(members)
    assert "state.tgz" in members, "bundle members: %s" % sorted(members)
    manifest = parse_manifest(members["Manifest.txt"].decode())
    state = members["state.tgz"]
    outer = tgz_members(state)
    assert "local.tgz" in outer, "state.tgz members: %s" % sorted(outer)
    files = tgz_members(outer["local.tgz"])
    return manifest, state, files


def make_tgz(entries):
    """gzip tar from [(name, bytes)]."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tf:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            ti.mtime = 1_600_000_000
            tf.addfile(ti, io.BytesIO(data))
    return raw.getvalue()


def query_option(si, key):
    opts = get_host(si).configManager.advancedOption.QueryOptions(key)
    assert opts and len(opts) == 1, "QueryOptions(%r) -> %r" % (key, opts)
    assert opts[0].key == key, opts[0].key
    return opts[0].value


def set_option(si, key, value):
    get_host(si).configManager.advancedOption.UpdateOptions(
        changedValue=[vim.option.OptionValue(key=key, value=value)])


# ---- raw SOAP for the internal HostFirmwareSystem methods pyVmomi's typeinfo lacks ----------


def raw_soap(si, port, method, moid="ha-firmwareSystem", mtype="HostFirmwareSystem"):
    """POSTs `<method><_this type=mtype>moid</_this></method>` with the session cookie.
    Returns ('ok', returnval text or None) or ('fault', xsi:type of the detail, faultstring)."""
    stub = si._stub
    body = ('<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            '<soapenv:Body><%s xmlns="urn:vim25"><_this type="%s">%s</_this></%s>'
            '</soapenv:Body></soapenv:Envelope>' % (method, mtype, moid, method))
    headers = {"Content-Type": "text/xml; charset=utf-8", "Cookie": stub.cookie,
               "SOAPAction": stub.versionId}
    status, _, data = _http(port, "POST", "/sdk", body=body.encode(), headers=headers)
    root = ET.fromstring(data)
    ns = {"s": "http://schemas.xmlsoap.org/soap/envelope/", "v": "urn:vim25"}
    xsi_type = "{http://www.w3.org/2001/XMLSchema-instance}type"
    fault = root.find(".//s:Fault", ns)
    if fault is not None:
        assert status == 500, "fault with HTTP %d" % status
        fs = fault.findtext("faultstring") or ""
        detail = fault.find("detail")
        ftype = None
        if detail is not None and len(detail):
            ftype = (detail[0].get(xsi_type) or "").split(":")[-1] or None
        return ("fault", ftype, fs)
    assert status == 200, "HTTP %d: %r" % (status, data[:300])
    resp = root.find(".//v:%sResponse" % method, ns)
    assert resp is not None, "no %sResponse in %r" % (method, data[:300])
    rv = resp.find("v:returnval", ns)
    return ("ok", None if rv is None else rv.text)


def pyvmomi_has(method):
    """Whether pyVmomi's typeinfo has HostFirmwareSystem.<method> (the internal ones are not)."""
    try:
        return any(m.wsdlName == method for m in vim.host.FirmwareSystem._GetMethodList())
    except Exception:
        return hasattr(vim.host.FirmwareSystem, method)


# ---------------------------------------------------------------------------------------------
# The tests (each starts the servers it needs; the runner stops them)


def test_01_connect_and_identity():
    _, port = start_server("6.7U3", seed=1, uuid=UUID_A, hostname="esx-a")
    si = connect(port)
    content = si.RetrieveContent()
    h1 = find_host(si)
    h2 = get_host(si)
    assert h1._moId == "ha-host" and h2._moId == "ha-host", (h1._moId, h2._moId)
    assert h1 == h2
    assert content.rootFolder._moId == "ha-folder-root", content.rootFolder._moId
    dc = content.rootFolder.childEntity[0]
    assert dc._moId == "ha-datacenter", dc._moId
    assert isinstance(dc, vim.Datacenter)
    assert dc.hostFolder._moId == "ha-folder-host", dc.hostFolder._moId
    cr = dc.hostFolder.childEntity[0]
    assert cr._moId == "ha-compute-res", cr._moId
    about = content.about
    assert about.apiType == "HostAgent", about.apiType
    assert about.productLineId == "embeddedEsx", about.productLineId
    assert about.name == "VMware ESXi", about.name
    assert about.fullName == "VMware ESXi 6.7.0 build-14320388", about.fullName
    assert about.version == "6.7.0", about.version
    assert about.build == str(BUILD_67U3), about.build
    assert about.vendor == "VMware, Inc.", about.vendor
    host = h2
    assert host.config.product.version == "6.7.0", host.config.product.version
    assert host.config.product.productLineId == "embeddedEsx"
    assert host.runtime.connectionState == "connected", host.runtime.connectionState
    assert host.runtime.inMaintenanceMode is False, host.runtime.inMaintenanceMode
    assert host.hardware.systemInfo.uuid == UUID_A.lower(), host.hardware.systemInfo.uuid
    assert host.name == "esx-a", host.name
    assert host.configManager.firmwareSystem._moId == "ha-firmwareSystem"
    assert content.accountManager._moId == "ha-localacctmgr", content.accountManager._moId
    assert content.sessionManager.currentSession.userName == "root"
    Disconnect(si)


def test_02_backup_bundle():
    _, port = start_server("6.7U3", seed=1, uuid=UUID_A, hostname="esx-a")
    si = connect(port)
    url = firmware(si).BackupFirmwareConfiguration()
    assert re.fullmatch(r"https://\*:%d/downloads/[0-9a-fA-F-]{8,}/configBundle-esx-a\.tgz" % port,
                        url), url
    data = download(url, port)
    assert data[:2] == b"\x1f\x8b", "bundle is not gzip"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
        names = tf.getnames()
    assert "Manifest.txt" in names and "state.tgz" in names, names
    assert not any(n.startswith("/") or ".." in n.split("/") for n in names), names
    manifest, _, files = bundle_parts(data)
    assert manifest.get("RELEASELEVEL") == RELEASE_67U3, manifest
    assert manifest.get("UUID") == UUID_A, manifest
    assert "etc/shadow" in files, sorted(files)
    assert "etc/vmware/esx.conf" in files, sorted(files)
    # The upload URL (no maintenance mode needed to ask for it).
    up = firmware(si).QueryFirmwareConfigUploadURL()
    assert up == "https://*:%d/tmp/configBundle.tgz" % port, up
    Disconnect(si)


def test_03_restore_preconditions():
    _, port = start_server("6.7U3", seed=1, uuid=UUID_A, hostname="esx-a")
    si = connect(port)
    fw = firmware(si)
    f = expect_fault(vim.fault.InvalidState, fw.RestoreFirmwareConfiguration, force=False)
    f = expect_fault(vim.fault.InvalidState, fw.ResetFirmwareToFactoryDefaults)
    enter_mm(si)
    f = expect_fault(vim.fault.FileNotFound, fw.RestoreFirmwareConfiguration, force=False)
    assert f.file == UPLOAD_PATH, f.file
    f = expect_fault(vim.fault.FileNotFound, fw.RestoreFirmwareConfiguration, force=True)
    assert f.file == UPLOAD_PATH, f.file
    # The upload needs credentials.
    _, data = backup_bytes(si, port)
    st = upload(port, data, pwd=None)
    assert st in (401, 403), "PUT without credentials -> HTTP %d" % st
    st = upload(port, data, pwd="wrong-password")
    assert st in (401, 403), "PUT with a wrong password -> HTTP %d" % st
    f = expect_fault(vim.fault.FileNotFound, fw.RestoreFirmwareConfiguration, force=False)
    # Still the same host, same session.
    assert get_host(si).runtime.connectionState == "connected"
    Disconnect(si)


def test_04_foreign_bundle_mismatch_then_force():
    _, port_a = start_server("6.7U3", seed=1, uuid=UUID_A, hostname="esx-a")
    _, port_b = start_server("6.7U3", seed=2, uuid=UUID_B, hostname="esx-b")
    si_b = connect(port_b)
    _, bundle_b = backup_bytes(si_b, port_b)
    Disconnect(si_b)
    assert bundle_parts(bundle_b)[0]["UUID"] == UUID_B

    si = connect(port_a)
    fw = firmware(si)
    # Upload with the session cookie (vCLI style) to the URL the host gives.
    upload_ok(port_a, bundle_b, url=fw.QueryFirmwareConfigUploadURL(), cookie=si._stub.cookie)
    enter_mm(si)
    f = expect_fault(vim.fault.MismatchedBundle, fw.RestoreFirmwareConfiguration, force=False)
    assert f.bundleUuid == UUID_B, f.bundleUuid
    assert f.hostUuid == UUID_A, f.hostUuid
    assert f.bundleBuildNumber == BUILD_67U3, f.bundleBuildNumber
    assert f.hostBuildNumber == BUILD_67U3, f.hostBuildNumber
    assert get_host(si).name == "esx-a"  # rejected: nothing changed, no reboot

    dropped = call_expecting_reboot(fw.RestoreFirmwareConfiguration, force=True)
    si2, saw_down = wait_back(port_a, PASSWORD)
    assert saw_down, "host never became unreachable after the forced restore (dropped=%r)" % dropped
    assert_session_dead(si)
    host = get_host(si2)
    assert host.runtime.inMaintenanceMode is True, "maintenance mode lost across the restore"
    assert host.runtime.connectionState == "connected"
    assert host.name == "esx-b", "hostname after restore: %r" % host.name
    assert host.hardware.systemInfo.uuid == UUID_A.lower(), host.hardware.systemInfo.uuid
    url, fresh = backup_bytes(si2, port_a)
    assert url.endswith("/configBundle-esx-b.tgz"), url
    assert bundle_parts(fresh)[0]["UUID"] == UUID_A, "hardware UUID must not travel with a bundle"
    exit_mm(si2)
    Disconnect(si2)


def test_05_other_release_level_refused_even_forced():
    _, port_ga = start_server("6.7GA", seed=3, uuid=UUID_GA, hostname="esx-ga")
    _, port_a = start_server("6.7U3", seed=1, uuid=UUID_A, hostname="esx-a")
    si_ga = connect(port_ga)
    about = si_ga.RetrieveContent().about
    assert about.fullName == "VMware ESXi 6.7.0 build-%d" % BUILD_67GA, about.fullName
    _, bundle_ga = backup_bytes(si_ga, port_ga)
    Disconnect(si_ga)
    rl = bundle_parts(bundle_ga)[0]["RELEASELEVEL"]
    assert rl != RELEASE_67U3 and rl.startswith("VMware ESXi 6.7.0"), rl

    si = connect(port_a)
    fw = firmware(si)
    upload_ok(port_a, bundle_ga)
    enter_mm(si)
    for force in (False, True):
        f = expect_fault(vim.fault.MismatchedBundle, fw.RestoreFirmwareConfiguration, force=force)
        assert f.bundleUuid == UUID_GA, f.bundleUuid
        assert f.hostUuid == UUID_A, f.hostUuid
        assert f.bundleBuildNumber == BUILD_67GA, f.bundleBuildNumber
        assert f.hostBuildNumber == BUILD_67U3, f.hostBuildNumber
    host = get_host(si)
    assert host.name == "esx-a" and host.runtime.inMaintenanceMode is True
    Disconnect(si)


def test_06_hostile_bundles_rejected():
    _, port = start_server("6.7U3", seed=1, uuid=UUID_A, hostname="esx-a")
    si = connect(port)
    fw = firmware(si)
    set_option(si, "UserVars.SuppressShellWarning", LONG(1))
    _, before = backup_bytes(si, port)
    m0, _, files0 = bundle_parts(before)
    enter_mm(si)
    rnd = bytes((i * 7919 + 13) % 256 for i in range(4096))  # fixed "random" bytes
    traversal = make_tgz([("../../etc/passwd", b"root::0:0:pwned:/:/bin/sh\n"),
                          ("state.tgz", b"junk")])
    just_gzip = gzip.compress(b"this is not a tar archive\n" * 10, mtime=0)
    for label, data in (("random bytes", rnd), ("tgz with ../../etc/passwd", traversal),
                        ("gzip of non-tar", just_gzip), ("empty file", b"")):
        upload_ok(port, data)
        for force in (False, True):
            try:
                fw.RestoreFirmwareConfiguration(force=force)
            except vim.fault.InvalidBundle as f:
                assert isinstance(f.text, str) and f.text, "InvalidBundle without text"
            except Exception as e:
                raise AssertionError("%s (force=%s): expected InvalidBundle, got %s: %s"
                                     % (label, force, type(e).__name__, e))
            else:
                raise AssertionError("%s (force=%s) was accepted" % (label, force))
    # Host unchanged: same session, no reboot, same configuration.
    host = get_host(si)
    assert host.runtime.connectionState == "connected"
    assert host.runtime.inMaintenanceMode is True
    assert host.name == "esx-a", host.name
    assert int(query_option(si, "UserVars.SuppressShellWarning")) == 1
    _, after = backup_bytes(si, port)
    m1, _, files1 = bundle_parts(after)
    assert m0 == m1, (m0, m1)
    for path in ("etc/shadow", "etc/passwd", "etc/vmware/esx.conf", "etc/hosts"):
        if path in files0 or path in files1:
            assert files0.get(path) == files1.get(path), "%s changed" % path
    Disconnect(si)


def test_07_password_change_and_restore_of_older_bundle():
    _, port = start_server("6.7U3", seed=1, uuid=UUID_A, hostname="esx-a")
    si = connect(port)
    _, old_bundle = backup_bytes(si, port)
    am = si.RetrieveContent().accountManager
    am.UpdateUser(vim.host.LocalAccountManager.PosixAccountSpecification(
        id="root", password=NEW_PASSWORD))
    si_new = connect(port, NEW_PASSWORD)
    assert get_host(si_new).name == "esx-a"
    Disconnect(si_new)
    expect_fault(vim.fault.InvalidLogin, connect, port, PASSWORD)
    # Upload needs the current (new) password now.
    st = upload(port, old_bundle, pwd=PASSWORD)
    assert st in (401, 403), "PUT with the old password -> HTTP %d" % st
    upload_ok(port, old_bundle, pwd=NEW_PASSWORD)
    enter_mm(si)
    dropped = call_expecting_reboot(firmware(si).RestoreFirmwareConfiguration, force=False)
    si2, saw_down = wait_back(port, PASSWORD)
    assert saw_down, "host never became unreachable after the restore (dropped=%r)" % dropped
    assert_session_dead(si)
    expect_fault(vim.fault.InvalidLogin, connect, port, NEW_PASSWORD)
    host = get_host(si2)
    assert host.runtime.inMaintenanceMode is True
    assert host.name == "esx-a"
    Disconnect(si2)


def test_08_reset_to_factory_defaults():
    _, port = start_server("6.7U3", seed=1, uuid=UUID_A, hostname="esx-a")
    si = connect(port)
    set_option(si, "UserVars.SuppressShellWarning", LONG(1))
    assert int(query_option(si, "UserVars.SuppressShellWarning")) == 1
    _, saved = backup_bytes(si, port)  # makes sure the change is in /bootbank/state.tgz
    assert b'/adv/UserVars/SuppressShellWarning = "1"' in bundle_parts(saved)[2][
        "etc/vmware/esx.conf"]
    enter_mm(si)
    dropped = call_expecting_reboot(firmware(si).ResetFirmwareToFactoryDefaults)
    si2, saw_down = wait_back(port, "")
    assert saw_down, "host never became unreachable after the reset (dropped=%r)" % dropped
    assert_session_dead(si)
    expect_fault(vim.fault.InvalidLogin, connect, port, PASSWORD)
    host = get_host(si2)
    assert int(query_option(si2, "UserVars.SuppressShellWarning")) == 0, "option survived reset"
    assert host.name == "localhost", "hostname after reset: %r" % host.name
    assert host.hardware.systemInfo.uuid == UUID_A.lower()
    assert host.runtime.inMaintenanceMode is True
    Disconnect(si2)


def test_09_advanced_option():
    _, port = start_server("6.7U3", seed=1, uuid=UUID_A, hostname="esx-a")
    si = connect(port)
    key = "UserVars.SuppressShellWarning"
    assert int(query_option(si, key)) == 0
    set_option(si, key, LONG(1))
    v = query_option(si, key)
    assert int(v) == 1 and not isinstance(v, (str, bool)), repr(v)
    # The change is in esx.conf, so a backup carries it.
    _, data = backup_bytes(si, port)
    esx_conf = bundle_parts(data)[2]["etc/vmware/esx.conf"]
    assert b'/adv/UserVars/SuppressShellWarning = "1"' in esx_conf, esx_conf
    expect_fault(vim.fault.InvalidName,
                 get_host(si).configManager.advancedOption.QueryOptions, "No.Such.Option")
    Disconnect(si)


def test_10_maintenance_mode_tasks():
    _, port = start_server("6.7U3", seed=1, uuid=UUID_A, hostname="esx-a")
    si = connect(port)
    host = get_host(si)
    task = host.EnterMaintenanceMode_Task(timeout=0)
    assert task._moId.startswith("haTask-ha-host-vim.HostSystem.enterMaintenanceMode-"), task._moId
    assert WaitForTask(task, si=si) == "success"
    assert task.info.state == "success", task.info.state
    assert host.runtime.inMaintenanceMode is True
    task2 = host.EnterMaintenanceMode_Task(timeout=0)
    try:
        WaitForTask(task2, si=si)
    except vim.fault.InvalidState:
        pass
    else:
        raise AssertionError("second EnterMaintenanceMode succeeded")
    assert task2.info.state == "error", task2.info.state
    assert isinstance(task2.info.error, vim.fault.InvalidState), task2.info.error
    task3 = host.ExitMaintenanceMode_Task(timeout=0)
    assert WaitForTask(task3, si=si) == "success"
    assert task3.info.state == "success"
    assert host.runtime.inMaintenanceMode is False
    Disconnect(si)


def test_11_logout():
    _, port = start_server("6.7U3", seed=1, uuid=UUID_A, hostname="esx-a")
    si = connect(port)
    host = get_host(si)
    assert host.name == "esx-a"
    Disconnect(si)
    try:
        name = host.name
    except vim.fault.NotAuthenticated:
        pass
    else:
        raise AssertionError("old stub still works after Disconnect (host.name=%r)" % name)
    expect_fault(vim.fault.NotAuthenticated, host.EnterMaintenanceMode_Task, timeout=0)


def test_12_bad_password_and_session_is_active():
    _, port = start_server("6.7U3", seed=1, uuid=UUID_A, hostname="esx-a")
    f = expect_fault(vim.fault.InvalidLogin, connect, port, "not-the-password")
    assert "incorrect user name or password" in (f.msg or ""), f.msg
    expect_fault(vim.fault.InvalidLogin, connect, port, "")
    expect_fault(vim.fault.InvalidLogin, connect, port, PASSWORD, "nosuchuser")
    si = connect(port)
    sm = si.RetrieveContent().sessionManager
    cur = sm.currentSession
    assert cur.userName == "root", cur.userName
    assert sm.SessionIsActive(cur.key, "root") is True
    assert sm.SessionIsActive("0" * 40, "root") is False
    other = connect(port)
    other_key = other.RetrieveContent().sessionManager.currentSession.key
    assert other_key != cur.key
    assert sm.SessionIsActive(other_key, "root") is True
    Disconnect(other)
    assert sm.SessionIsActive(other_key, "root") is False
    Disconnect(si)


def test_13_sync_and_quantum_internal_methods():
    _, port = start_server("6.7U3", seed=1, uuid=UUID_A, hostname="esx-a")
    si = connect(port)
    fw = firmware(si)
    if pyvmomi_has("SyncFirmwareConfiguration"):
        via = "pyVmomi"
        fw.SyncFirmwareConfiguration()
    else:  # internal method, not in pyVmomi's typeinfo: speak SOAP directly with our session
        via = "raw SOAP"
    r = raw_soap(si, port, "QueryFirmwareQuantumMinutes")
    assert r[0] == "ok" and r[1] is not None and int(r[1]) > 0, r
    r = raw_soap(si, port, "QueryFirmwareSyncsPerQuantum")
    assert r[0] == "ok" and r[1] is not None and int(r[1]) > 0, r
    n = int(r[1])
    if n <= 50:
        faults = []
        for _ in range(2 * n + 2):  # at most one quantum boundary can fall in the burst
            r = raw_soap(si, port, "SyncFirmwareConfiguration")
            if r[0] == "fault":
                faults.append(r)
                break
        assert faults, "%d syncs in a row, no TooManyWrites (limit %d per quantum)" % (2 * n + 2, n)
        assert faults[0][1] == "TooManyWrites", faults[0]
    else:
        r = raw_soap(si, port, "SyncFirmwareConfiguration")
        assert r[0] == "ok", r
    if VERBOSE:
        print("    (internal methods via %s)" % via)
    # Without a session: NotAuthenticated.
    Disconnect(si)
    r = raw_soap(si, port, "SyncFirmwareConfiguration")
    assert r[0] == "fault" and r[1] == "NotAuthenticated", r


def test_14_sigterm_is_graceful():
    srv, port = start_server("6.7U3", seed=1, uuid=UUID_A, hostname="esx-a")
    si = connect(port)
    assert get_host(si).name == "esx-a"
    srv.proc.send_signal(signal.SIGTERM)
    try:
        rc = srv.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        raise AssertionError("esxi-sim still running 5s after SIGTERM")
    assert rc == 0, "exit code %r after SIGTERM" % rc


def test_15_other_profiles_identify():
    expect = {"7.0U3": ("7.0.3", 18644231), "8.0U3": ("8.0.3", 24022510)}
    for profile, (version, build) in expect.items():
        srv, port = start_server(profile, seed=5, hostname="esx-p")
        si = connect(port)
        about = si.RetrieveContent().about
        assert about.version == version, (profile, about.version)
        assert about.build == str(build), (profile, about.build)
        assert about.fullName == "VMware ESXi %s build-%d" % (version, build), about.fullName
        assert about.apiType == "HostAgent"
        Disconnect(si)
        stop_server(srv)


# ---------------------------------------------------------------------------------------------
# Fleets behind a vCenter (issue 6): the seed articles' estate-wide backup, as PowerCLI and
# Ansible do it, against `esxi-sim serve --mode vcenter`.

VC_USER = "administrator@vsphere.local"
VC_PASSWORD = "VC!pass1"


def start_fleet(hosts=4, extra=(), ready_timeout=30.0):
    """Starts a vCenter-mode fleet (hosts on 127.1.0.x, any free port each, a control API);
    returns (Server, vcenter_port, control_url)."""
    args = [ESXI_SIM_BIN, "serve", "--mode", "vcenter", "--hosts", str(hosts),
            "--listen", HOST + ":0", "--addresses", "127.1.0.1", "--host-port", "0",
            "--control", HOST + ":0", "--password", PASSWORD, "--seed", "3",
            "--boot-time", BOOT_TIME, "--vcenter-password", VC_PASSWORD] + list(extra)
    # A fleet prints its control, host and timing lines first; `ready:` comes last.
    srv, text = _spawn(args, ready_timeout,
                       lambda buf: re.search(rb"^ready: .*\n", buf, re.M) is not None)
    control = re.search(r"^control: (http://\S+)$", text, re.M).group(1)
    # The control API makes a token at start (issue 12): printed, and written to a file.
    token = re.search(r"^control-token: ([0-9a-f]{64})$", text, re.M).group(1)
    token_file = re.search(r"^control-token-file: (\S+)$", text, re.M).group(1)
    with open(token_file) as f:
        assert f.read().strip() == token
    assert os.stat(token_file).st_mode & 0o077 == 0, "the token file is the owner's only"
    _CONTROL_TOKENS[control] = token
    m = re.search(r"^ready: https://127\.0\.0\.1:(\d+)/sdk$", text, re.M)
    assert m, text
    srv.port = int(m.group(1))
    return srv, srv.port, control


_CONTROL_TOKENS = {}


def control(url, method, path, body=None):
    import json
    import urllib.request
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + _CONTROL_TOKENS[url]})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def connected_esxi_hosts(si, page=2):
    """The seed's PowerCLI selection (Get-VMHost | where ProductLineId -eq embeddedEsx and
    ConnectionState -eq Connected), as RetrievePropertiesEx over a container view, paged."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    PC = vmodl.query.PropertyCollector
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[
            PC.TraversalSpec(name="view", path="view", skip=False, type=vim.view.ContainerView)])],
        propSet=[PC.PropertySpec(type=vim.HostSystem,
                                 pathSet=["name", "runtime.connectionState", "config.product"])])
    res = content.propertyCollector.RetrievePropertiesEx([spec], PC.RetrieveOptions(maxObjects=page))
    found, pages = [], 0
    while res is not None:
        pages += 1
        for o in res.objects:
            props = {p.name: p.val for p in o.propSet}
            if (props["config.product"].productLineId == "embeddedEsx"
                    and props["runtime.connectionState"] == "connected"):
                found.append((o.obj, props["name"]))
        res = (content.propertyCollector.ContinueRetrievePropertiesEx(res.token)
               if res.token else None)
    view.DestroyView()
    return found, pages


def _download(url, timeout=15, context=None):
    import urllib.request
    with urllib.request.urlopen(url, context=context or _ctx(), timeout=timeout) as r:
        return r.read()


def test_16_vcenter_estate_backup():
    srv, port, ctl = start_fleet(hosts=5)
    # Verified TLS throughout: the fleet CA vouches for the vCenter and every host.
    verified = ssl.create_default_context(cadata=control_raw(ctl, "GET", "/v1/ca.pem"))
    si = SmartConnect(host=HOST, port=port, user=VC_USER, pwd=VC_PASSWORD,
                      sslContext=verified, httpConnectionTimeout=15)
    about = si.RetrieveContent().about
    assert about.apiType == "VirtualCenter" and about.productLineId == "vpx", about
    hosts, pages = connected_esxi_hosts(si)
    assert len(hosts) == 5 and pages == 3, (len(hosts), pages)
    assert [h._moId for h, _ in hosts] == ["host-%d" % n for n in range(12, 17)]
    listed = control(ctl, "GET", "/v1/hosts")
    for (h, name), state in zip(hosts, listed):
        assert name == state["name"] and name.startswith("127.1.0."), (name, state)
        # As Ansible's vmware_cfg_backup: the URL's `*` becomes the host's name in vCenter.
        url = h.configManager.firmwareSystem.BackupFirmwareConfiguration()
        assert "*" in url, url
        data = _download(url.replace("*", name), context=verified)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as t:
            manifest = t.extractfile("Manifest.txt").read().decode()
        assert state["uuid"].upper() in manifest, (state["uuid"], manifest)
    # A crashed host drops out of the selection, and calls on it fail as on a real vCenter.
    control(ctl, "POST", "/v1/hosts/host-14/crash")
    hosts, _ = connected_esxi_hosts(si)
    assert [h._moId for h, _ in hosts] == ["host-12", "host-13", "host-15", "host-16"], hosts
    down = vim.HostSystem("host-14", si._stub)
    assert down.runtime.connectionState == "notResponding"
    try:
        down.configManager.firmwareSystem.BackupFirmwareConfiguration()
        raise AssertionError("backup of a crashed host succeeded")
    except vmodl.fault.HostNotReachable as e:
        assert isinstance(e, vmodl.fault.HostCommunication) and "127.1.0.3" in e.msg, e
    Disconnect(si)


def test_17_vcenter_fault_rule_and_maintenance_task():
    srv, port, ctl = start_fleet(hosts=3)
    si = SmartConnect(host=HOST, port=port, user=VC_USER, pwd=VC_PASSWORD,
                      disableSslCertValidation=True, httpConnectionTimeout=15)
    rule = control(ctl, "POST", "/v1/faults", {
        "host": "vcenter", "method": "BackupFirmwareConfiguration", "object_id": "firmwareSystem-13",
        "max_count": 1,
        "action": {"type": "fault", "fault": "PlatformConfigFault",
                   "fields": {"text": "flash is read-only"}}})
    fw = vim.host.FirmwareSystem("firmwareSystem-13", si._stub)
    try:
        fw.BackupFirmwareConfiguration()
        raise AssertionError("the injected fault did not fire")
    except vim.fault.PlatformConfigFault as e:
        assert e.text == "flash is read-only", e
    assert fw.BackupFirmwareConfiguration().endswith("configBundle-esx-02.tgz")
    rules = control(ctl, "GET", "/v1/faults")
    assert [(r["id"], r["matched"], r["fired"]) for r in rules] == [(rule["id"], 2, 1)], rules
    host = vim.HostSystem("host-13", si._stub)
    task = host.EnterMaintenanceMode_Task(0)
    assert task._moId.startswith("task-13-"), task
    WaitForTask(task)
    assert host.runtime.inMaintenanceMode
    assert control(ctl, "GET", "/v1/hosts/1")["maintenance_mode"] is True
    events = control(ctl, "GET", "/v1/events?host=1&kind=maintenance-mode")
    assert [e["text"] for e in events] == ["entered maintenance mode"], events
    faults = control(ctl, "GET", "/v1/events?kind=fault")
    assert [(e["host_name"], e["kind"]) for e in faults] == [("vcenter", "fault")], faults
    Disconnect(si)


def test_18_vcenter_restore_as_powercli_does():
    """Set-VMHostFirmware -Restore through a vCenter: maintenance mode and the restore go through
    the vCenter, the bundle goes straight to the host with the host's credentials."""
    import urllib.parse
    srv, port, ctl = start_fleet(hosts=2)
    si = SmartConnect(host=HOST, port=port, user=VC_USER, pwd=VC_PASSWORD,
                      disableSslCertValidation=True, httpConnectionTimeout=15)
    host = vim.HostSystem("host-13", si._stub)
    fw = host.configManager.firmwareSystem
    put = lambda text: control_raw(ctl, "PUT", "/v1/hosts/1/files/etc/hosts", text)
    put("127.0.0.1 localhost\n10.9.9.9 keep\n")
    backup = _download(fw.BackupFirmwareConfiguration().replace("*", host.name))
    put("127.0.0.1 localhost\n10.6.6.6 changed\n")
    # Past 00:01, when 6.7's hourly auto-backup runs (not past the 30-minute session timeout).
    control(ctl, "POST", "/v1/clock/advance", {"by": "20m"})
    assert control(ctl, "GET", "/v1/hosts/1")["unsaved_changes"] is False
    assert WaitForTask(host.EnterMaintenanceMode_Task(0), si=si) == "success"
    up = urllib.parse.urlsplit(fw.QueryFirmwareConfigUploadURL().replace("*", host.name))
    conn = http.client.HTTPSConnection(up.hostname, up.port, context=_ctx(), timeout=15)
    tok = base64.b64encode(("root:%s" % PASSWORD).encode()).decode()
    conn.request("PUT", up.path, body=backup, headers={"Authorization": "Basic " + tok})
    assert conn.getresponse().status == 200
    conn.close()
    call_expecting_reboot(fw.RestoreFirmwareConfiguration, force=False)
    # vCenter sees the host go and come back.
    deadline, seen = time.monotonic() + 30, []
    while time.monotonic() < deadline:
        state = host.runtime.connectionState
        if not seen or seen[-1] != state:
            seen.append(state)
        if state == "connected" and "notResponding" in seen:
            break
        time.sleep(0.1)
    assert seen[-2:] == ["notResponding", "connected"], seen
    assert host.runtime.inMaintenanceMode is True
    text = control_raw(ctl, "GET", "/v1/hosts/1/files/etc/hosts")
    assert "10.9.9.9 keep" in text and "changed" not in text, text
    kinds = [e["kind"] for e in control(ctl, "GET", "/v1/events?host=1&kind=restored,booted")]
    assert kinds[-2:] == ["restored", "booted"], kinds
    Disconnect(si)


def test_19_control_token_file_for_ctl():
    """Issue 12: `serve` makes the control token, prints it and writes it (0600) where
    `esxi-sim ctl` finds it; a wrong token is refused; the file goes with the process."""
    import json
    srv, port, ctl = start_fleet(hosts=1)
    env = dict(os.environ)
    env.pop("ESXI_SIM_CONTROL_TOKEN", None)
    run = lambda *a: subprocess.run([ESXI_SIM_BIN, "ctl", "--url", ctl] + list(a), env=env,
                                    capture_output=True, text=True, timeout=30)
    r = run("fleet")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["hosts"] == 1
    r = run("--token", "0" * 64, "fleet")
    assert r.returncode != 0 and "HTTP 401" in r.stderr, (r.returncode, r.stderr)
    # A page's simple POST (text/plain) is refused even with the right token.
    import urllib.request
    import urllib.error
    req = urllib.request.Request(ctl + "/v1/hosts/0/crash", data=b"{}", method="POST",
                                 headers={"Content-Type": "text/plain",
                                          "Authorization": "Bearer " + _CONTROL_TOKENS[ctl]})
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("a text/plain POST was taken")
    except urllib.error.HTTPError as e:
        assert e.code == 415, e.code
    assert control(ctl, "GET", "/v1/hosts/0")["power"] == "on"
    token_file = [f for f in os.listdir(os.environ["ESXI_SIM_RUNTIME_DIR"])
                  if f.endswith("-%s.token" % ctl.rsplit(":", 1)[1])]
    assert len(token_file) == 1, token_file
    assert stop_server(srv) == 0
    assert not os.path.exists(os.path.join(os.environ["ESXI_SIM_RUNTIME_DIR"], token_file[0]))


# ---- esxcli over the API (issue 11) and SearchIndex (issue 13) ---------------------------------
# pyVmomi's type tables have no RetrieveManagedMethodExecuter or ExecuteSoap (they are internal,
# vmodl.reflect): scripts reach them with raw SOAP on pyVmomi's session, as below.

XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def soap_call(si, port, mtype, moid, method, params=""):
    """A raw call on pyVmomi's session. Returns ('ok', returnval element or None) or
    ('fault', detail xsi:type, faultstring)."""
    stub = si._stub
    body = ('<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            '<soapenv:Body><%s xmlns="urn:vim25"><_this type="%s">%s</_this>%s</%s>'
            '</soapenv:Body></soapenv:Envelope>' % (method, mtype, moid, params, method))
    headers = {"Content-Type": "text/xml; charset=utf-8", "Cookie": stub.cookie,
               "SOAPAction": stub.versionId}
    status, _, data = _http(port, "POST", "/sdk", body=body.encode(), headers=headers)
    root = ET.fromstring(data)
    ns = {"s": "http://schemas.xmlsoap.org/soap/envelope/", "v": "urn:vim25"}
    fault = root.find(".//s:Fault", ns)
    if fault is not None:
        assert status == 500, status
        detail = fault.find("detail")
        ftype = (detail[0].get(XSI_TYPE) or "").split(":")[-1] if len(detail) else None
        return ("fault", ftype, fault.findtext("faultstring"))
    assert status == 200, (status, data[:300])
    return ("ok", root.find(".//v:%sResponse/v:returnval" % method, ns))


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def execute_soap(si, port, mme, moid, method, args=()):
    """ExecuteSoap as govc sends it; returns ('response', <obj> element) or
    ('fault', faultMsg, <obj> of faultDetail)."""
    params = "<moid>%s</moid><version>urn:vim25/5.0</version><method>%s</method>" % (moid, method)
    for name, value in args:
        params += "<argument><name>%s</name><val>%s</val></argument>" % (
            name, esc("<%s>%s</%s>" % (name, value, name)))
    kind, rv = soap_call(si, port, mme[0], mme[1], "ExecuteSoap", params)[:2]
    assert kind == "ok", "ExecuteSoap faulted: %r" % (rv,)
    ns = {"v": "urn:vim25"}
    response = rv.findtext("v:response", namespaces=ns)
    if response is not None:
        assert rv.find("v:fault", ns) is None, "both response and fault"
        return ("response", ET.fromstring(response))
    fault = rv.find("v:fault", ns)
    assert fault is not None, "a SoapResult with neither response nor fault"
    return ("fault", fault.findtext("v:faultMsg", namespaces=ns),
            ET.fromstring(fault.findtext("v:faultDetail", namespaces=ns)))


def esxcli(si, port, mme, namespace, command, args=()):
    return execute_soap(si, port, mme, "ha-cli-handler-" + namespace.replace(".", "-"),
                        "vim.EsxCLI.%s.%s" % (namespace, command), args)


def retrieve_executer(si, port, host_moid):
    kind, rv = soap_call(si, port, "HostSystem", host_moid, "RetrieveManagedMethodExecuter")
    assert kind == "ok", rv
    return (rv.get("type"), rv.text)


def fields(obj):
    """{local name: text} of a flat esxcli result object."""
    return {c.tag.split("}")[-1]: (c.text or "") for c in obj}


KEY_RE = re.compile(r"\d{6}(-\d{6}){15}")
ID_RE = re.compile(r"\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}")


def test_20_esxcli_execute_soap_flow():
    """govc host.esxcli's calls, raw: executer, CLIInfo, commands; TPM mode and its recovery
    key; the unknown-namespace answer of a 6.7 U3 host."""
    _, port = start_server("8.0U3", seed=20, hostname="esx20.lab.local")
    si = connect(port)
    mme = retrieve_executer(si, port, "ha-host")
    assert mme == ("ReflectManagedMethodExecuter", "ha-managed-method-executer"), mme
    kind, dtm = soap_call(si, port, "HostSystem", "ha-host", "RetrieveDynamicTypeManager")
    assert (kind, dtm.get("type"), dtm.text) == (
        "ok", "InternalDynamicTypeManager", "ha-dynamic-type-manager"), (kind, dtm)

    kind, info = execute_soap(si, port, mme, "ha-dynamic-type-manager-local-cli-cliinfo",
                              "vim.CLIInfo.FetchCLIInfo",
                              [("typeName", "vim.EsxCLI.system.settings.encryption.recovery")])
    assert kind == "response" and info.get(XSI_TYPE) == "VimCLIInfoInfo", (kind, info)
    methods = [m.findtext("{urn:vim25}name") for m in info.findall("{urn:vim25}method")]
    assert methods == ["list", "rotate"], methods

    kind, v = esxcli(si, port, mme, "system.version", "get")
    assert v.get(XSI_TYPE) == "VimEsxCLIsystemversiongetVersionGet", v.get(XSI_TYPE)
    about = si.RetrieveContent().about
    assert fields(v) == {"Build": "Releasebuild-" + about.build, "Patch": "0",
                         "Product": "VMware ESXi", "Update": "3",
                         "Version": about.version}, fields(v)
    kind, h = esxcli(si, port, mme, "system.hostname", "get")
    assert fields(h) == {"DomainName": "lab.local", "FullyQualifiedDomainName": "esx20.lab.local",
                         "HostName": "esx20"}, fields(h)

    kind, e = esxcli(si, port, mme, "system.settings.encryption", "get")
    assert fields(e)["Mode"] == "NONE", fields(e)
    kind, ok = esxcli(si, port, mme, "system.settings.encryption", "set", [("mode", "TPM")])
    assert (ok.get(XSI_TYPE), ok.text) == ("xsd:boolean", "true"), (ok.get(XSI_TYPE), ok.text)
    kind, e = esxcli(si, port, mme, "system.settings.encryption", "get")
    assert fields(e) == {"Mode": "TPM", "RequireExecutablesOnlyFromInstalledVIBs": "false",
                         "RequireSecureBoot": "false"}, fields(e)
    kind, keys = esxcli(si, port, mme, "system.settings.encryption.recovery", "list")
    assert keys.get(XSI_TYPE) == "ArrayOfDataObject", keys.get(XSI_TYPE)
    rows = [fields(r) for r in keys.findall("{urn:vim25}DataObject")]
    assert len(rows) == 1, rows
    assert KEY_RE.fullmatch(rows[0]["Key"]) and ID_RE.fullmatch(rows[0]["RecoveryID"]), rows
    kind, again = esxcli(si, port, mme, "system.settings.encryption.recovery", "list")
    assert [fields(r) for r in again.findall("{urn:vim25}DataObject")] == rows
    # TPM mode cannot be undone: the CLI fault a real host answers.
    kind, msg, detail = esxcli(si, port, mme, "system.settings.encryption", "set",
                               [("mode", "NONE")])
    assert (kind, msg, detail.get(XSI_TYPE)) == (
        "fault", "EsxCLI.CLIFault.summary", "VimEsxCLICLIFault"), (kind, msg)
    # A bad moid is a SOAP fault, InvalidArgument.
    r = soap_call(si, port, mme[0], mme[1], "ExecuteSoap",
                  "<moid>ha-cli-handler-nope</moid><version>urn:vim25/5.0</version>"
                  "<method>vim.EsxCLI.nope.get</method>")
    assert r[:2] == ("fault", "InvalidArgument") and r[2].endswith(": moid"), r
    Disconnect(si)

    _, port = start_server("6.7U3", seed=21)
    si = connect(port)
    mme = retrieve_executer(si, port, "ha-host")
    r = execute_soap(si, port, mme, "ha-dynamic-type-manager-local-cli-cliinfo",
                     "vim.CLIInfo.FetchCLIInfo",
                     [("typeName", "vim.EsxCLI.system.settings.encryption")])
    assert r[:2] == ("fault", "The object or item referred to could not be found."), r
    assert r[2].get(XSI_TYPE) == "NotFound", r[2].get(XSI_TYPE)
    kind, v = esxcli(si, port, mme, "system.version", "get")
    assert fields(v)["Patch"] == "73" and fields(v)["Build"] == "Releasebuild-%d" % BUILD_67U3
    Disconnect(si)


def test_21_esxcli_hosts_found_by_search_index():
    """content.searchIndex finds a host by DNS name, address, inventory path and UUID, on a host
    and through a vCenter; the vCenter's executer for that host runs esxcli on it."""
    _, port = start_server("8.0U3", seed=22, hostname="esx22.lab.local")
    si = connect(port)
    content = si.RetrieveContent()
    search = content.searchIndex
    assert search._moId == "ha-searchindex", search._moId
    host = search.FindByDnsName(dnsName="esx22.lab.local", vmSearch=False)
    assert isinstance(host, vim.HostSystem) and host._moId == "ha-host", host
    assert search.FindByIp(ip=HOST, vmSearch=False) == host
    path = "ha-datacenter/host/esx22.lab.local/esx22.lab.local"
    assert search.FindByInventoryPath(inventoryPath=path) == host
    assert search.FindByUuid(uuid=host.hardware.systemInfo.uuid, vmSearch=False) == host
    dc = content.rootFolder.childEntity[0]
    assert search.FindChild(entity=dc, name="host") == dc.hostFolder
    assert dc.hostFolder.name == "host", dc.hostFolder.name
    assert search.FindByDnsName(dnsName="esx23.lab.local", vmSearch=False) is None
    assert search.FindByIp(ip="10.0.0.1", vmSearch=False) is None
    assert search.FindByInventoryPath(inventoryPath="ha-datacenter/vm/nothing") is None
    assert search.FindAllByIp(ip=HOST, vmSearch=False) == [host]
    assert search.FindAllByDnsName(dnsName="esx22.lab.local", vmSearch=False) == [host]
    assert search.FindAllByUuid(uuid=host.hardware.systemInfo.uuid, vmSearch=False) == [host]
    assert search.FindAllByDnsName(dnsName="esx23.lab.local", vmSearch=False) == []
    Disconnect(si)

    _, port, _ = start_fleet(hosts=3)
    si = SmartConnect(host=HOST, port=port, user=VC_USER, pwd=VC_PASSWORD,
                      disableSslCertValidation=True, httpConnectionTimeout=15)
    search = si.RetrieveContent().searchIndex
    assert search._moId == "SearchIndex", search._moId
    h1 = search.FindByIp(ip="127.1.0.2", vmSearch=False)
    assert h1 is not None and h1._moId == "host-13", h1
    assert search.FindByDnsName(dnsName="esx-02", vmSearch=False) == h1
    assert search.FindByInventoryPath(inventoryPath="/Datacenter/host/Cluster-1/127.1.0.2") == h1
    assert search.FindByUuid(uuid=h1.hardware.systemInfo.uuid, vmSearch=False) == h1
    assert search.FindAllByUuid(uuid=h1.hardware.systemInfo.uuid, vmSearch=False) == [h1]
    assert search.FindAllByDnsName(dnsName="esx-02", vmSearch=False) == [h1]
    cluster = h1.parent
    assert search.FindChild(entity=cluster, name="127.1.0.2") == h1
    mme = retrieve_executer(si, port, h1._moId)
    assert mme == ("ReflectManagedMethodExecuter", "ManagedMethodExecuter-13"), mme
    kind, h = esxcli(si, port, mme, "system.hostname", "get")
    assert fields(h)["HostName"] == "esx-02", fields(h)
    Disconnect(si)


def control_raw(url, method, path, body=None):
    """A control API call with a raw text body and a raw text answer (files)."""
    import urllib.request
    data = None if body is None else body.encode()
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"Content-Type": "application/octet-stream",
                                          "Authorization": "Bearer " + _CONTROL_TOKENS[url]})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def test_22_host_network_time_and_enums_as_typed_clients_read_them():
    """config.network (vmk0 on vSwitch0's Management Network with the host's address, as Salt
    and Ansible's host facts walk it), the virtual NIC manager's management address, the
    date-time system, RetrieveHardwareUptime, and enum
    values typed by their enum, all through pyVmomi's typed deserializer; on a host and through
    a vCenter."""
    _, port = start_server("8.0U3", seed=23, hostname="esx23.lab.local")
    si = connect(port)
    host = si.RetrieveContent().rootFolder.childEntity[0].hostFolder.childEntity[0].host[0]
    net = host.config.network
    assert [pg.spec.name for pg in net.portgroup] == ["Management Network"], net.portgroup
    assert net.portgroup[0].spec.vswitchName == "vSwitch0"
    vmk0 = net.vnic[0]
    assert (vmk0.device, vmk0.portgroup) == ("vmk0", "Management Network"), vmk0
    assert vmk0.spec.ip.ipAddress == HOST, vmk0.spec.ip
    assert [v.name for v in net.vswitch] == ["vSwitch0"] and net.pnic[0].device == "vmnic0"
    assert (net.dnsConfig.hostName, net.dnsConfig.domainName) == ("esx23", "lab.local")
    dts = host.configManager.dateTimeSystem
    assert isinstance(dts, vim.host.DateTimeSystem), dts
    assert dts.dateTimeInfo.timeZone.key == "UTC"
    skew = abs((dts.QueryDateTime() - si.CurrentTime()).total_seconds())
    assert skew < 5, skew
    up = host.RetrieveHardwareUptime()
    assert isinstance(up, int) and up >= 0, up
    # The management address as vmware.vmware.esxi_hosts reads it (its inventory's ansible_host).
    nc = host.configManager.virtualNicManager.QueryNetConfig("management")
    chosen = [n for n in nc.candidateVnic if n.key in nc.selectedVnic]
    assert [n.spec.ip.ipAddress for n in chosen] == [HOST], nc
    assert host.configManager.virtualNicManager.QueryNetConfig("vmotion").selectedVnic == []
    expect_fault(vmodl.fault.InvalidRequest,
                 host.configManager.virtualNicManager.QueryNetConfig, "teleport")
    # Enum-typed values where the schema says anyType (pyVmomi maps them to enum classes).
    pc = si.RetrieveContent().propertyCollector
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=host)],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(
            type=vim.HostSystem, pathSet=["runtime.connectionState", "overallStatus"])])
    props = {p.name: p.val for p in pc.RetrieveContents([spec])[0].propSet}
    assert props["runtime.connectionState"] == vim.HostSystem.ConnectionState.connected, props
    assert props["overallStatus"] == vim.ManagedEntity.Status.green, props
    Disconnect(si)
    # An older host has no RetrieveHardwareUptime (vSphere API 6.5+).
    _, port = start_server("6.0U3", seed=24)
    si = connect(port)
    host = si.RetrieveContent().rootFolder.childEntity[0].hostFolder.childEntity[0].host[0]
    try:
        host.RetrieveHardwareUptime()
        raise AssertionError("6.0 U3 answered RetrieveHardwareUptime")
    except vmodl.fault.MethodNotFound:
        pass
    Disconnect(si)

    _, port, _ = start_fleet(hosts=2)
    si = SmartConnect(host=HOST, port=port, user=VC_USER, pwd=VC_PASSWORD,
                      disableSslCertValidation=True, httpConnectionTimeout=15)
    view = si.RetrieveContent().viewManager.CreateContainerView(
        si.RetrieveContent().rootFolder, [vim.HostSystem], True)
    for h in view.view:
        assert h.config.network.vnic[0].spec.ip.ipAddress == h.name, h.name
        assert h.configManager.dateTimeSystem._moId == "dateTimeSystem-" + h._moId.split("-")[1]
        assert h.configManager.dateTimeSystem.dateTimeInfo.timeZone.key == "UTC"
        vnm = h.configManager.virtualNicManager
        assert vnm._moId == "virtualNicManager-" + h._moId.split("-")[1], vnm
        nc = vnm.QueryNetConfig("management")
        assert [n.spec.ip.ipAddress for n in nc.candidateVnic if n.key in nc.selectedVnic] \
            == [h.name], nc
    Disconnect(si)


def test_23_events_as_pyvmomi_reads_them():
    """EventManager (issue 13): QueryEvents with an entity filter, the description's eventInfo,
    an EventHistoryCollector's latestPage and ReadPreviousEvents, all deserialized by pyVmomi
    into its own event classes; then a reboot through a vCenter, whose event history keeps what
    the host's restarted hostd forgets."""
    _, port = start_server("8.0U3", seed=25, hostname="esx25.lab.local")
    si = connect(port)
    em = si.RetrieveContent().eventManager
    assert em._moId == "ha-eventmgr", em
    host = get_host(si)
    for t in (host.EnterMaintenanceMode_Task(timeout=0), host.ExitMaintenanceMode_Task(timeout=0)):
        assert WaitForTask(t, si=si) == "success"
    spec = vim.event.EventFilterSpec(
        entity=vim.event.EventFilterSpec.ByEntity(entity=host, recursion="all"))
    evs = em.QueryEvents(spec)
    assert [type(e) for e in evs] == [vim.event.ExitMaintenanceModeEvent,
                                      vim.event.EnteredMaintenanceModeEvent], evs
    assert evs[1].host.host == host and evs[1].host.name == "esx25.lab.local", evs[1].host
    assert evs[1].fullFormattedMessage == \
        "Host esx25.lab.local in ha-datacenter has entered maintenance mode"
    assert evs[0].createdTime >= evs[1].createdTime
    # eventInfo keys are type names: pyVmomi reads them as its classes.
    cats = {d.key: d.category for d in em.description.eventInfo}
    assert cats[vim.event.EnteredMaintenanceModeEvent] == "info", cats
    hc = em.CreateCollectorForEvents(spec)
    hc.SetCollectorPageSize(1)
    assert [type(e) for e in hc.latestPage] == [vim.event.ExitMaintenanceModeEvent], hc.latestPage
    hc.ResetCollector()
    older = hc.ReadPreviousEvents(10)
    assert [type(e) for e in older] == [vim.event.EnteredMaintenanceModeEvent], older
    assert len(hc.ReadPreviousEvents(10)) == 0, "at the head"
    hc.DestroyCollector()
    Disconnect(si)

    _, port, _ = start_fleet(hosts=2)
    si = SmartConnect(host=HOST, port=port, user=VC_USER, pwd=VC_PASSWORD,
                      disableSslCertValidation=True, httpConnectionTimeout=15)
    em = si.RetrieveContent().eventManager
    host = vim.HostSystem("host-13", si._stub)
    WaitForTask(host.EnterMaintenanceMode_Task(0))
    WaitForTask(host.RebootHost_Task(force=False))
    spec = vim.event.EventFilterSpec(
        entity=vim.event.EventFilterSpec.ByEntity(entity=host, recursion="self"))
    deadline = time.monotonic() + 30
    while True:
        ids = [getattr(e, "eventTypeId", type(e).__name__) for e in reversed(em.QueryEvents(spec))]
        if "esx.audit.host.boot" in ids or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert ids == ["vim.event.EnteredMaintenanceModeEvent", "esx.audit.host.stop.reboot",
                   "esx.audit.host.boot"], ids
    boot = em.QueryEvents(spec)[0]
    assert isinstance(boot, vim.event.EventEx) and boot.fullFormattedMessage == "Host has booted."
    assert boot.host.host._moId == "host-13" and boot.datacenter.name == "Datacenter", boot
    Disconnect(si)


def test_24_reboot_phases_as_a_client_sees_them():
    """After RestoreFirmwareConfiguration the host answers, then its reverse proxy says 503
    while hostd stops, the port refuses connections while the machine restarts, 503 again
    while hostd starts, then pyVmomi logs in (server/phases.rs; here an 8 s boot: 2 s, 4 s,
    2 s)."""
    _, port = start_server("8.0U3", seed=26, boot_time="8s")
    si = connect(port)
    host = get_host(si)
    _, data = backup_bytes(si, port)
    WaitForTask(host.EnterMaintenanceMode_Task(timeout=0), si=si)
    upload_ok(port, data)
    host.configManager.firmwareSystem.RestoreFirmwareConfiguration(force=False)
    seen = []
    smart_connect_on_503 = None
    t0 = time.monotonic()
    while time.monotonic() - t0 < 20:
        try:
            status, _, body = _http(port, "GET", "/sdk/vimServiceVersions.xml", timeout=2)
            what = {200: "ok", 503: "503"}.get(status, "http %d" % status)
            if status == 503:
                assert b"proxy-sdk-tunnel" in body, body
        except ConnectionRefusedError:
            what = "refused"
        except Exception as e:  # a reset or a timeout would be a finding
            what = "other: %r" % e
        if what == "503" and smart_connect_on_503 is None:
            try:
                connect(port)
                smart_connect_on_503 = "connected"
            except Exception as e:  # what a pyVmomi script meets while the proxy answers
                smart_connect_on_503 = str(e)
        if not seen or seen[-1] != what:
            seen.append(what)
        if what == "ok":
            Disconnect(connect(port))
            break
        time.sleep(0.05)
    assert seen == ["503", "refused", "503", "ok"], seen
    assert "is down or is not a VIM server" in smart_connect_on_503, smart_connect_on_503


def test_25_accounts_roles_and_logs_as_clients_read_them():
    """UserDirectory, AuthorizationManager and DiagnosticManager (issue 13), the calls of
    Ansible's vmware_local_user_info and vmware_object_role_permission: a local user granted a
    role is configuration, so a backup carries the permission and a restore brings it back;
    hostd's log tells the restore's reboot."""
    _, port = start_server("6.7U3", seed=26, hostname="esx26.lab.local")
    si = connect(port)
    content = si.RetrieveContent()
    ud, am = content.userDirectory, content.authorizationManager
    assert (ud._moId, am._moId) == ("ha-user-directory", "ha-authmgr")
    users = ud.RetrieveUserGroups(None, "", None, None, False, True, False)
    root = [u for u in users if u.principal == "root"][0]
    assert isinstance(root, vim.PosixUserSearchResult), type(root)
    assert (root.id, root.shellAccess, root.group) == (0, True, False), root
    roles = {r.roleId: r.name for r in am.roleList}
    assert roles[-1] == "Admin" and roles[-2] == "ReadOnly", roles

    content.accountManager.CreateUser(vim.host.LocalAccountManager.AccountSpecification(
        id="backupop", password="bAck!up9pass", description="Backup operator"))
    am.SetEntityPermissions(content.rootFolder, [vim.AuthorizationManager.Permission(
        principal="backupop", group=False, roleId=-2, propagate=True)])
    granted = {p.principal: p.roleId
               for p in am.RetrieveEntityPermissions(content.rootFolder, False)}
    assert granted == {"root": -1, "backupop": -2}, granted
    assert am.HasPrivilegeOnEntity(get_host(si), content.sessionManager.currentSession.key,
                                   ["Host.Config.Firmware"]) == [True]
    expect_fault(vim.fault.UserNotFound, am.SetEntityPermissions, content.rootFolder,
                 [vim.AuthorizationManager.Permission(principal="nobody", group=False,
                                                      roleId=-2, propagate=True)])

    _, bundle = backup_bytes(si, port)
    am.RemoveEntityPermission(content.rootFolder, "backupop", False)
    assert "backupop" not in [p.principal for p in am.RetrieveAllPermissions()]
    enter_mm(si)
    upload_ok(port, bundle)
    call_expecting_reboot(firmware(si).RestoreFirmwareConfiguration, force=False)
    si, _ = wait_back(port, PASSWORD)
    content = si.RetrieveContent()
    back = {p.principal: p.roleId for p in content.authorizationManager.RetrieveAllPermissions()}
    assert back == {"root": -1, "backupop": -2}, back

    dm = content.diagnosticManager
    assert [d.key for d in dm.QueryDescriptions()] == ["hostd", "vmkernel", "vpxa"]
    log = dm.BrowseDiagnosticLog(key="hostd", start=1)
    assert log.lineStart == 1 and log.lineEnd == len(log.lineText), log
    assert "starting" in log.lineText[0], log.lineText
    assert any("Host has booted." in l for l in log.lineText), log.lineText
    assert content.licenseManager.licenses[0].editionKey == "eval"
    Disconnect(si)


TESTS = [(name, fn) for name, fn in sorted(globals().items())
         if name.startswith("test_") and callable(fn)]

# ---------------------------------------------------------------------------------------------
# Runner


def main(argv):
    global VERBOSE
    args = [a for a in argv if a not in ("-v", "--verbose")]
    VERBOSE = len(args) != len(argv)
    if not os.access(ESXI_SIM_BIN, os.X_OK):
        print("esxi-sim binary not found or not executable: %s (set ESXI_SIM_BIN)" % ESXI_SIM_BIN)
        return 2
    # Control tokens are written where `esxi-sim ctl` finds them: a directory of this run's.
    os.environ["ESXI_SIM_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="esxi-sim-run-")
    selected = [(n, f) for n, f in TESTS if not args or any(a in n for a in args)]
    if not selected:
        print("no test matches %s" % " ".join(args))
        return 2
    failures = []
    t_all = time.monotonic()
    for name, fn in selected:
        del _TEST_PROCS[:]
        t0 = time.monotonic()
        err = None
        try:
            fn()
        except (KeyboardInterrupt, SystemExit):  # interrupted (SIGINT/SIGTERM): stop the run
            raise
        except BaseException:  # noqa: B036 - a test failure of any kind
            err = traceback.format_exc()
        finally:
            logs = []
            for srv in list(_TEST_PROCS):
                rc = stop_server(srv)
                logs.append((srv, rc))
        dt = time.monotonic() - t0
        print("%-52s %-4s %6.2fs" % (name, "ok" if err is None else "FAIL", dt), flush=True)
        if err is not None:
            failures.append(name)
            print("    " + err.rstrip().replace("\n", "\n    "))
            for srv, rc in logs:
                tail = srv.stderr_tail()
                print("    -- server %s (port %s, exit %s) stderr tail:" % (
                    " ".join(srv.args[1:]), srv.port, rc))
                if tail.strip():
                    print("       " + tail.rstrip().replace("\n", "\n       "))
            sys.stdout.flush()
    total = time.monotonic() - t_all
    print("%d tests, %d passed, %d failed in %.1fs%s" % (
        len(selected), len(selected) - len(failures), len(failures), total,
        (": " + ", ".join(failures)) if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    finally:
        _kill_all()
    sys.exit(code)
