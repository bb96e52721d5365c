#!/usr/bin/env python3
"""Restores one ESXi host's configuration through vCenter from the newest bundle backup.py
wrote, the way the API asks for it: maintenance mode first, the upload with the host's own
credentials, RestoreFirmwareConfiguration with force only if the bundle turns out to be another
host's (MismatchedBundle), then wait for the reboot, and take the host out of maintenance mode.

Environment: VC_URL, VC_USER, VC_PASSWORD, VC_CA_FILE, BACKUP_DIR, RESTORE_HOST (its name in
vCenter), HOST_USER, HOST_PASSWORD (the host's own account: a vCenter session cannot upload).

`--break MISTAKE` (see backup.py): no-maintenance-mode, always-force, never-force (gives up at
MismatchedBundle: a host whose board was replaced cannot be restored), no-wait,
stays-in-maintenance-mode.
"""

import base64
import os
import re
import ssl
import sys
import time
import urllib.parse
import urllib.request

from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

MISTAKES = ("no-maintenance-mode", "always-force", "never-force", "no-wait",
            "stays-in-maintenance-mode")
BREAK = sys.argv[sys.argv.index("--break") + 1] if "--break" in sys.argv else None
assert BREAK is None or BREAK in MISTAKES, "--break takes one of %s" % ", ".join(MISTAKES)
DATED = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def connect():
    url = urllib.parse.urlparse(os.environ["VC_URL"])
    ctx = ssl.create_default_context(cafile=os.environ["VC_CA_FILE"])
    si = SmartConnect(host=url.hostname, port=url.port or 443, user=os.environ["VC_USER"],
                      pwd=os.environ["VC_PASSWORD"], sslContext=ctx)
    return si, ctx


def find_host(si, name):
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    try:
        for h in view.view:
            if h.name == name:
                return h
    finally:
        view.DestroyView()
    raise SystemExit("no host %r in vCenter" % name)


def newest_bundle(dest, name):
    for day in sorted((d for d in os.listdir(dest) if DATED.match(d)), reverse=True):
        path = os.path.join(dest, day, name, "configBundle-%s.tgz" % name)
        if os.path.isfile(path):
            return path
    raise SystemExit("no backup of %s under %s" % (name, dest))


def upload(host, ctx, path):
    url = host.configManager.firmwareSystem.QueryFirmwareConfigUploadURL()
    url = url.replace("*", host.name, 1)
    auth = base64.b64encode(("%s:%s" % (os.environ["HOST_USER"],
                                        os.environ["HOST_PASSWORD"])).encode()).decode()
    with open(path, "rb") as f:
        req = urllib.request.Request(url, data=f.read(), method="PUT",
                                     headers={"Authorization": "Basic " + auth,
                                              "Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
        r.read()


def restore(host):
    fw = host.configManager.firmwareSystem
    force = BREAK == "always-force"
    try:
        fw.RestoreFirmwareConfiguration(force=force)
    except vim.fault.MismatchedBundle:
        # The bundle's UUID is not the host's (a replaced board, a clone): only now is force
        # right. The build must still match; force does not override that.
        if BREAK == "never-force":
            raise
        fw.RestoreFirmwareConfiguration(force=True)
    except vim.fault.InvalidState:
        raise
    except Exception:
        pass  # the host may drop the connection as it goes down for the reboot


def wait_for_reboot(si, host, timeout=300):
    """Down (vCenter sees it not responding), then connected again."""
    deadline = time.time() + timeout
    seen_down = False
    while time.time() < deadline:
        try:
            state = host.runtime.connectionState
        except Exception:
            state = "unknown"
        if state != "connected":
            seen_down = True
        elif seen_down:
            return
        time.sleep(0.5)
    raise SystemExit("%s did not come back within %d s" % (host.name, timeout))


def main():
    name = os.environ["RESTORE_HOST"]
    path = newest_bundle(os.environ["BACKUP_DIR"], name)
    si, ctx = connect()
    try:
        host = find_host(si, name)
        if BREAK != "no-maintenance-mode":
            assert WaitForTask(host.EnterMaintenanceMode_Task(timeout=0)) == "success"
        upload(host, ctx, path)
        restore(host)
        print("restoring %s from %s" % (name, path))
        if BREAK == "no-wait":
            return 0
        wait_for_reboot(si, host)
        if BREAK != "stays-in-maintenance-mode":
            assert WaitForTask(host.ExitMaintenanceMode_Task(timeout=0)) == "success"
        print("restored %s" % name)
        return 0
    finally:
        try:
            Disconnect(si)
        except Exception:
            pass


if __name__ == "__main__":
    sys.exit(main())
