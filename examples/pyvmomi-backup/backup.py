#!/usr/bin/env python3
"""A fleet backup of ESXi host configuration through vCenter, as the seeds' PowerCLI scripts do
it, done right: every connected embeddedEsx host (optionally only those in a host list file),
once each, into DEST/YYYY-MM-DD/HOST/configBundle-HOST.tgz, keeping the newest KEEP dated
folders. Certificates are verified against the CA file. A host in TPM mode (7.0 U2 and later)
has its recovery key saved beside its bundle, as recovery-key-HOST.txt: a bundle of a TPM host
cannot be restored onto a new board without it. A host that fails does not stop the others; the
exit status is 1 if any failed.

Environment: VC_URL (https://vcenter/sdk), VC_USER, VC_PASSWORD, VC_CA_FILE, BACKUP_DIR,
HOST_LIST (optional), KEEP (default 7), CALL_TIMEOUT (seconds a call or a download may stall
before that host is given up, default 10; its TOOL.toml promises the same).

`--break MISTAKE` makes it one of the tools real users have written, so that esxi-harness's
suite can be seen to catch each (ci/tool):
  duplicate-loop   every host twice (seed 001: "seven output lines when I only have three")
  vcenter-for-star the vCenter's address put for the "*" in the download URL
  no-state-filter  no connectionState filter: asks the host that is not responding too
  leaves-parts     leaves its partial downloads (*.part) beside the bundles
  no-verify        trusts any certificate (though its TOOL.toml says it verifies)
  no-retention     never removes old dated folders (though its TOOL.toml promises 7)
  stops-at-first   the first failed host ends the run (the rest are not backed up)
  always-succeeds  exits 0 whatever failed
  trusts-short-downloads  keeps a download that broke off (no length or archive check)
  no-redirects     does not follow port 80's 301 to https (real hosts' URLs say http://*/)
  recovery-id-only saves the Recovery ID column, not the Key (the ID alone unlocks nothing)
  no-timeouts      no timeouts of its own: a host that stops answering holds the whole run
"""

import datetime
import http.client
import os
import re
import shutil
import ssl
import sys
import tarfile
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

DATED = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MISTAKES = ("duplicate-loop", "vcenter-for-star", "no-state-filter", "leaves-parts", "no-verify",
            "no-retention", "stops-at-first", "always-succeeds", "trusts-short-downloads",
            "no-redirects", "recovery-id-only", "no-timeouts")
BREAK = sys.argv[sys.argv.index("--break") + 1] if "--break" in sys.argv else None
assert BREAK is None or BREAK in MISTAKES, "--break takes one of %s" % ", ".join(MISTAKES)
# Seconds without progress before a call or download is given up (urllib's and pyVmomi's
# timeouts are per socket operation: a slow but moving download is not cut off).
CALL_TIMEOUT = None if BREAK == "no-timeouts" else float(os.environ.get("CALL_TIMEOUT", "10"))


def connect():
    url = urllib.parse.urlparse(os.environ["VC_URL"])
    ctx = ssl.create_default_context(cafile=os.environ["VC_CA_FILE"])
    if BREAK == "no-verify":
        ctx = ssl._create_unverified_context()
    si = SmartConnect(host=url.hostname, port=url.port or 443, user=os.environ["VC_USER"],
                      pwd=os.environ["VC_PASSWORD"], sslContext=ctx,
                      httpConnectionTimeout=CALL_TIMEOUT)
    return si, ctx


def hosts_to_back_up(si):
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    try:
        hosts = list(view.view)
    finally:
        view.DestroyView()
    wanted = None
    if os.environ.get("HOST_LIST"):
        with open(os.environ["HOST_LIST"]) as f:
            wanted = {line.strip() for line in f if line.strip()}
    seen = set()
    for h in hosts:
        if h._moId in seen and BREAK != "duplicate-loop":  # once each, whatever the walk returns
            continue
        seen.add(h._moId)
        if wanted is not None and h.name not in wanted:
            continue
        if h.summary.config.product.productLineId != "embeddedEsx":
            continue
        if h.runtime.connectionState != "connected" and BREAK != "no-state-filter":
            print("skipped %s: %s" % (h.name, h.runtime.connectionState))
            continue
        yield h
        if BREAK == "duplicate-loop":
            yield h


def backup(host, ctx, day_dir):
    url = host.configManager.firmwareSystem.BackupFirmwareConfiguration()
    # The URL names the host as "*": the host's own name in vCenter goes there, the port stays.
    star = host.name
    if BREAK == "vcenter-for-star":
        star = urllib.parse.urlparse(os.environ["VC_URL"]).hostname
    url = url.replace("*", star, 1)
    folder = os.path.join(day_dir, host.name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "configBundle-%s.tgz" % host.name)
    tmp = path + ".part"
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx))
    if BREAK == "no-redirects":
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args):
                return None
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), NoRedirect)
    try:
        with opener.open(url, timeout=CALL_TIMEOUT) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f)
            want = r.headers.get("Content-Length")
        # A connection that breaks off mid-body can look like a short, successful read: a
        # truncated bundle must never take the place of a good one.
        got = os.path.getsize(tmp)
        if want is not None and int(want) != got and BREAK != "trusts-short-downloads":
            raise IOError("download broke off: %d of %s bytes" % (got, want))
        if BREAK != "trusts-short-downloads":
            with tarfile.open(tmp, "r:gz") as t:
                t.getmembers()
        if BREAK == "leaves-parts":
            shutil.copyfile(tmp, path)
            return path
        os.replace(tmp, path)
        return path
    finally:
        if BREAK != "leaves-parts" and os.path.exists(tmp):
            os.remove(tmp)


# ---- the recovery key: esxcli over the API ------------------------------------------------------
# `esxcli system settings encryption recovery list` is what prints a TPM host's key. pyVmomi has
# no types for the calls govc and PowerCLI's Get-EsxCli make for it (RetrieveManagedMethodExecuter,
# ExecuteSoap), so they are sent raw on pyVmomi's own session, through the vCenter.
V = "{urn:vim25}"


def soap(si, ctx, mtype, moid, method, params=""):
    url = urllib.parse.urlparse(os.environ["VC_URL"])
    body = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
            '<%s xmlns="urn:vim25"><_this type="%s">%s</_this>%s</%s></soapenv:Body>'
            '</soapenv:Envelope>' % (method, mtype, moid, params, method))
    conn = http.client.HTTPSConnection(url.hostname, url.port or 443, context=ctx,
                                       timeout=CALL_TIMEOUT)
    try:
        conn.request("POST", url.path or "/sdk", body=body.encode(), headers={
            "Content-Type": "text/xml; charset=utf-8", "Cookie": si._stub.cookie,
            "SOAPAction": si._stub.versionId})
        r = conn.getresponse()
        root = ET.fromstring(r.read())
    finally:
        conn.close()
    if r.status != 200:
        raise IOError("%s: %s" % (method, root.findtext(".//faultstring")))
    return root.find(".//%sreturnval" % V)


def esxcli(si, ctx, host, namespace, command):
    mme = soap(si, ctx, "HostSystem", host._moId, "RetrieveManagedMethodExecuter")
    params = ("<moid>ha-cli-handler-%s</moid><version>urn:vim25/5.0</version>"
              "<method>vim.EsxCLI.%s.%s</method>" % (namespace.replace(".", "-"), namespace,
                                                     command))
    rv = soap(si, ctx, mme.get("type"), mme.text, "ExecuteSoap", params)
    if rv.find(V + "fault") is not None:
        raise IOError("esxcli %s %s: %s" % (namespace, command, rv.findtext(V + "fault/" + V +
                                                                             "faultMsg")))
    return ET.fromstring(rv.findtext(V + "response"))


def fields(obj):
    return {c.tag.split("}")[-1]: (c.text or "") for c in obj}


def save_recovery_key(si, ctx, host, folder):
    """A TPM-mode host's recovery key beside its bundle (None for any other host)."""
    version = tuple(int(x) for x in host.summary.config.product.version.split(".")[:3])
    if version < (7, 0, 2):  # 7.0 U2 and later encrypt their configuration
        return None
    if fields(esxcli(si, ctx, host, "system.settings.encryption", "get"))["Mode"] != "TPM":
        return None
    rows = [fields(r) for r in esxcli(si, ctx, host, "system.settings.encryption.recovery",
                                      "list")]
    if len(rows) != 1:
        raise IOError("a TPM host with %d recovery keys listed" % len(rows))
    row = rows[0]
    text = "Recovery ID: %s\nKey: %s\n" % (row["RecoveryID"], row["Key"])
    if BREAK == "recovery-id-only":
        text = "Recovery ID: %s\n" % row["RecoveryID"]
    path = os.path.join(folder, "recovery-key-%s.txt" % host.name)
    with open(path + ".part", "w") as f:
        f.write(text)
    os.chmod(path + ".part", 0o600)
    os.replace(path + ".part", path)
    return path


def prune(dest, keep):
    if BREAK == "no-retention":
        return
    days = sorted(d for d in os.listdir(dest) if DATED.match(d))
    for d in days[:-keep] if keep > 0 else []:
        shutil.rmtree(os.path.join(dest, d))
        print("removed %s (keeping %d)" % (d, keep))


def main():
    dest = os.environ["BACKUP_DIR"]
    keep = int(os.environ.get("KEEP", "7"))
    day_dir = os.path.join(dest, datetime.date.today().isoformat())
    si, ctx = connect()
    failed = []
    try:
        for h in hosts_to_back_up(si):
            try:
                print("backed up %s: %s" % (h.name, backup(h, ctx, day_dir)))
                key = save_recovery_key(si, ctx, h, os.path.join(day_dir, h.name))
                if key:
                    print("saved %s's recovery key: %s" % (h.name, key))
            except Exception as e:  # one host's failure must not stop the others
                failed.append(h.name)
                print("FAILED %s: %s" % (h.name, e), file=sys.stderr)
                if BREAK == "stops-at-first":
                    break
    finally:
        Disconnect(si)
    prune(dest, keep)
    if failed:
        print("%d host(s) failed: %s" % (len(failed), ", ".join(failed)), file=sys.stderr)
        return 0 if BREAK == "always-succeeds" else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
