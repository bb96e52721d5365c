-- wrk: RetrievePropertiesEx of the host (name, runtime, config.product) with a session cookie
-- from the environment (ESXI_COOKIE, made by ci/bench with one Login).
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
wrk.headers["SOAPAction"] = "\"urn:vim25/6.7.3\""
wrk.headers["Cookie"] = os.getenv("ESXI_COOKIE")
wrk.body = [[<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">ha-property-collector</_this><specSet><propSet><type>HostSystem</type><pathSet>name</pathSet><pathSet>runtime</pathSet><pathSet>config.product</pathSet></propSet><objectSet><obj type="Folder">ha-folder-root</obj><skip>false</skip><selectSet xsi:type="TraversalSpec"><name>f2dc</name><type>Folder</type><path>childEntity</path><skip>false</skip><selectSet><name>dc2hf</name></selectSet><selectSet><name>cr2h</name></selectSet><selectSet><name>f2dc</name></selectSet></selectSet><selectSet xsi:type="TraversalSpec"><name>dc2hf</name><type>Datacenter</type><path>hostFolder</path><skip>false</skip><selectSet><name>f2dc</name></selectSet></selectSet><selectSet xsi:type="TraversalSpec"><name>cr2h</name><type>ComputeResource</type><path>host</path><skip>false</skip></selectSet></objectSet></specSet><options/></RetrievePropertiesEx></soapenv:Body></soapenv:Envelope>]]

-- The RESULT line ci/bench.d/api.sh reads (wrk runs from the repository root).
dofile("ci/bench.d/result.lua")
