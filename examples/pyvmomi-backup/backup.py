#!/usr/bin/env python3
"""A fleet backup of ESXi host configuration through vCenter, as the seeds' PowerCLI scripts do
it, done right: every connected embeddedEsx host (optionally only those in a host list file),
once each, into DEST/YYYY-MM-DD/HOST/configBundle-HOST.tgz, keeping the newest KEEP dated
folders. Certificates are verified against the CA file. A host that fails does not stop the
others; the exit status is 1 if any failed.

Environment: VC_URL (https://vcenter/sdk), VC_USER, VC_PASSWORD, VC_CA_FILE, BACKUP_DIR,
HOST_LIST (optional), KEEP (default 7).

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
"""

import datetime
import os
import re
import shutil
import ssl
import sys
import tarfile
import urllib.parse
import urllib.request

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

DATED = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MISTAKES = ("duplicate-loop", "vcenter-for-star", "no-state-filter", "leaves-parts", "no-verify",
            "no-retention", "stops-at-first", "always-succeeds", "trusts-short-downloads",
            "no-redirects")
BREAK = sys.argv[sys.argv.index("--break") + 1] if "--break" in sys.argv else None
assert BREAK is None or BREAK in MISTAKES, "--break takes one of %s" % ", ".join(MISTAKES)


def connect():
    url = urllib.parse.urlparse(os.environ["VC_URL"])
    ctx = ssl.create_default_context(cafile=os.environ["VC_CA_FILE"])
    if BREAK == "no-verify":
        ctx = ssl._create_unverified_context()
    si = SmartConnect(host=url.hostname, port=url.port or 443, user=os.environ["VC_USER"],
                      pwd=os.environ["VC_PASSWORD"], sslContext=ctx)
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
        with opener.open(url, timeout=60) as r, open(tmp, "wb") as f:
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
