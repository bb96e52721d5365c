#!/usr/bin/env python3
"""A stand-in for a team's own backup tool, for the `run` step of scenarios/backup-with-own-tool.toml.

Standard library only: logs in over SOAP, calls BackupFirmwareConfiguration, downloads the bundle
the way Ansible does (replace `*` with the address it connected to, no credentials), and writes
it to $ESXI_WORKDIR/bundle.tgz. Reads the target from the ESXI_* variables the harness sets.
"""

import os
import re
import ssl
import sys
import urllib.request

URL = os.environ["ESXI_URL"]
HOST = os.environ["ESXI_HOST"]
CTX = ssl._create_unverified_context() if os.environ.get("ESXI_INSECURE") == "1" else None
ENV = ('<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
       '<soapenv:Body>%s</soapenv:Body></soapenv:Envelope>')


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def soap(body, cookie=None):
    req = urllib.request.Request(URL, data=(ENV % body).encode(),
                                 headers={"Content-Type": "text/xml; charset=utf-8"})
    if cookie:
        req.add_header("Cookie", cookie)
    with urllib.request.urlopen(req, context=CTX, timeout=60) as r:
        return r.read().decode(), r.headers.get("Set-Cookie")


_, cookie = soap('<Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this>'
                 "<userName>%s</userName><password>%s</password></Login>"
                 % (esc(os.environ["ESXI_USER"]), esc(os.environ["ESXI_PASSWORD"])))
cookie = cookie.split(";")[0]
fw, _ = soap('<Fetch xmlns="urn:vim25"><_this type="HostSystem">ha-host</_this>'
             "<prop>configManager.firmwareSystem</prop></Fetch>", cookie)
fw_id = re.search(r">([^<]+)</returnval>", fw).group(1)
resp, _ = soap('<BackupFirmwareConfiguration xmlns="urn:vim25">'
               '<_this type="HostFirmwareSystem">%s</_this></BackupFirmwareConfiguration>' % fw_id,
               cookie)
url = re.search(r"<returnval>([^<]+)</returnval>", resp).group(1).replace("*", HOST, 1)
with urllib.request.urlopen(url, context=CTX, timeout=60) as r:
    data = r.read()
with open(os.path.join(os.environ["ESXI_WORKDIR"], "bundle.tgz"), "wb") as f:
    f.write(data)
print("wrote %d bytes from %s" % (len(data), url), file=sys.stderr)
