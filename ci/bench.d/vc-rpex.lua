-- wrk: the SOAP side of vj-rpex.lua: RetrievePropertiesEx of a vCenter's host (name, runtime,
-- config.product), the session cookie from ESXI_COOKIE.
wrk.method = "POST"
wrk.path = "/sdk"
wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
wrk.headers["SOAPAction"] = "\"urn:vim25/8.0.3.0\""
wrk.headers["Cookie"] = os.getenv("ESXI_COOKIE")
wrk.body = [[<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>HostSystem</type><pathSet>name</pathSet><pathSet>runtime</pathSet><pathSet>config.product</pathSet></propSet><objectSet><obj type="HostSystem">host-12</obj></objectSet></specSet><options/></RetrievePropertiesEx></soapenv:Body></soapenv:Envelope>]]

dofile("ci/bench.d/result.lua")
