-- wrk: the SOAP side of vj-get.lua: Fetch(host-12, name) on a vCenter (the property read both
-- wires make through the same core), the session cookie from ESXI_COOKIE.
wrk.method = "POST"
wrk.path = "/sdk"
wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
wrk.headers["SOAPAction"] = "\"urn:vim25/8.0.3.0\""
wrk.headers["Cookie"] = os.getenv("ESXI_COOKIE")
wrk.body = [[<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><Fetch xmlns="urn:vim25"><_this type="HostSystem">host-12</_this><prop>name</prop></Fetch></soapenv:Body></soapenv:Envelope>]]

dofile("ci/bench.d/result.lua")
