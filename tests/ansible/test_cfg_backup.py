#!/usr/bin/env python3
"""Ansible's `community.vmware.vmware_cfg_backup` (PyPI `ansible` 12.x) against `esxi-sim serve`.

The three states users script, each checked from the outside with pyVmomi:
  saved  -> a configBundle-<host>.tgz on disk with Manifest.txt and state.tgz of this host;
  loaded -> (always force=true) the host reboots into the bundle and stays in maintenance mode;
  absent -> the host reboots into factory defaults: root logs in with an empty password.
Then a local user's role (vmware_local_user_manager, vmware_object_role_permission,
vmware_local_user_info: local_users.yml) is configuration the bundle carries: granted, saved,
revoked, loaded, and back.

Usage: ESXI_SIM_BIN=target/debug/esxi-sim python tests/ansible/test_cfg_backup.py
"""

import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("ESXI_SIM_BIN", "target/debug/esxi-sim")
BIN = BIN if os.path.isabs(BIN) else os.path.join(REPO, BIN)
PASSWORD = "S3cret!pw"
NEW_PASSWORD = "Chang3d!pw"


def start(seed, hostname):
    p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--profile", "6.7U3",
                          "--password", PASSWORD, "--seed", str(seed), "--hostname", hostname,
                          "--boot-time", "1s"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline().strip()
    assert line.startswith("ready: https://127.0.0.1:"), "no ready line: %r" % line
    return p, int(line.rsplit(":", 1)[1].split("/")[0])


def start_vcenter():
    """A three-host vCenter-mode fleet; hosts on 127.1.0.1-3, each on any free port."""
    p = subprocess.Popen([BIN, "serve", "--mode", "vcenter", "--hosts", "3", "--listen",
                          "127.0.0.1:0", "--addresses", "127.1.0.1", "--host-port", "0",
                          "--password", PASSWORD, "--vcenter-password", "VC!pass1"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    while True:
        line = p.stdout.readline()
        assert line, "the fleet exited before its ready line"
        if line.startswith("ready: "):
            return p, int(line.strip().rsplit(":", 1)[1].split("/")[0])


def connect(port, pwd, timeout=30):
    deadline = time.time() + timeout
    while True:
        try:
            return SmartConnect(host="127.0.0.1", port=port, user="root", pwd=pwd,
                                disableSslCertValidation=True)
        except vim.fault.InvalidLogin:
            raise
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def host_of(si):
    c = si.RetrieveContent()
    return c.rootFolder.childEntity[0].hostFolder.childEntity[0].host[0]


def run_playbook(playbook_file, what, workdir, result_file, **extra_vars):
    """Runs one of this directory's playbooks as users run it; returns the JSON it wrote."""
    ev = dict(result_file=result_file, ansible_python_interpreter=sys.executable, **extra_vars)
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
           os.path.join(HERE, playbook_file), "-e", json.dumps(ev)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir,
                       env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="0"))
    if r.returncode != 0:
        raise AssertionError("%s %s failed:\n%s\n%s" % (playbook_file, what, r.stdout[-4000:], r.stderr[-2000:]))
    with open(result_file) as f:
        return json.loads(f.read())


def playbook(port, state, workdir, password=PASSWORD, **extra):
    return run_playbook("cfg_backup.yml", "state=" + state, workdir,
                        os.path.join(workdir, "result-%s.json" % state),
                        esxi_port=port, esxi_password=password, cfg_state=state, **extra)


def users(port, step, workdir, password=PASSWORD):
    """Runs local_users.yml's `step`; returns {user: role} as vmware_local_user_info reports."""
    got = run_playbook("local_users.yml", "step=" + step, workdir,
                       os.path.join(workdir, "users-%s.json" % step),
                       esxi_port=port, esxi_password=password, step=step)
    return {u["user_name"]: u["role"] for u in got}


def main():
    procs = []
    failures = 0
    t0 = time.time()
    with tempfile.TemporaryDirectory() as work:
        try:
            p, port = start(1, "esx-ansible")
            procs.append(p)

            # saved: the bundle Ansible writes is this host's.
            res = playbook(port, "saved", work, cfg_dest=work + "/")
            dest = res["dest_file"]
            assert os.path.basename(dest) == "configBundle-esx-ansible.tgz", dest
            with tarfile.open(dest, "r:gz") as t:
                names = t.getnames()
                manifest = t.extractfile("Manifest.txt").read().decode()
            assert "Manifest.txt" in names and "state.tgz" in names, names
            assert "RELEASELEVEL=VMware ESXi 6.7.0 Update 3" in manifest, manifest
            print("saved    ok  (%s, %d bytes)" % (os.path.basename(dest), os.path.getsize(dest)))

            # Change the root password, then load the bundle saved before: the old one is back.
            si = connect(port, PASSWORD)
            si.RetrieveContent().accountManager.UpdateUser(
                vim.host.LocalAccountManager.PosixAccountSpecification(id="root", password=NEW_PASSWORD))
            Disconnect(si)
            # Ansible logs in (and uploads) with the current password.
            playbook(port, "loaded", work, password=NEW_PASSWORD, cfg_src=dest)
            time.sleep(0.3)
            si = connect(port, PASSWORD)
            h = host_of(si)
            assert h.runtime.inMaintenanceMode is True, "loaded must leave the host in maintenance mode"
            assert h.name == "esx-ansible", h.name
            Disconnect(si)
            try:
                connect(port, NEW_PASSWORD, timeout=5)
                raise AssertionError("the password set after the backup still works")
            except vim.fault.InvalidLogin:
                pass
            print("loaded   ok  (old root password back, host in maintenance mode)")

            # absent: factory defaults, root with an empty password.
            playbook(port, "absent", work)
            time.sleep(0.3)
            si = connect(port, "")
            h = host_of(si)
            assert h.name == "localhost", h.name
            Disconnect(si)
            print("absent   ok  (factory defaults: host name localhost, empty root password)")

            # A role is configuration: granted, saved, revoked, loaded, and back.
            p, port = start(2, "esx-roles")
            procs.append(p)
            roles = users(port, "grant", work)
            assert roles.get("root") == "admin" and roles.get("backupop") == "read-only", roles
            res = playbook(port, "saved", work, cfg_dest=work + "/roles-")
            roles = users(port, "revoke", work)
            assert roles.get("backupop") is None and roles.get("root") == "admin", roles
            playbook(port, "loaded", work, cfg_src=res["dest_file"])
            time.sleep(0.3)
            connect(port, PASSWORD)  # waits for the reboot
            roles = users(port, "info", work)
            assert roles.get("backupop") == "read-only", roles
            print("roles    ok  (backupop read-only: granted, saved, revoked, loaded, back)")

            # saved through a vCenter: Ansible asks vCenter for the host by name, backs it up
            # there, and downloads from `host.name` (the address it was added by).
            vc, vc_port = start_vcenter()
            procs.append(vc)
            res = playbook(vc_port, "saved", work, password="VC!pass1",
                           esxi_user="administrator@vsphere.local", esxi_hostname="127.1.0.2",
                           cfg_dest=work + "/")
            dest = res["dest_file"]
            assert os.path.basename(dest) == "configBundle-esx-02.tgz", dest
            with tarfile.open(dest, "r:gz") as t:
                assert "state.tgz" in t.getnames()
            print("vcenter  ok  (saved host 127.1.0.2 through the vCenter: %s)" % os.path.basename(dest))
        except Exception as e:  # report, clean up, fail
            failures += 1
            print("FAIL: %s" % e)
        finally:
            for p in procs:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
    print("ansible vmware_cfg_backup: %s in %.1fs" % ("FAILED" if failures else "3 states, a role restored and a vCenter backup passed", time.time() - t0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
