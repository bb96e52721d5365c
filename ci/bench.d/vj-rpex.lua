-- wrk: VI/JSON RetrievePropertiesEx of a vCenter's host (name, runtime, config.product), the same
-- spec as vc-rpex.lua sends over SOAP; the session id from ESXI_COOKIE.
wrk.method = "POST"
wrk.path = "/sdk/vim25/8.0.3.0/PropertyCollector/propertyCollector/RetrievePropertiesEx"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["vmware-api-session-id"] = os.getenv("ESXI_COOKIE")
wrk.body = [[{"specSet":[{"_typeName":"PropertyFilterSpec","propSet":[{"_typeName":"PropertySpec","type":"HostSystem","pathSet":["name","runtime","config.product"]}],"objectSet":[{"_typeName":"ObjectSpec","obj":{"_typeName":"ManagedObjectReference","type":"HostSystem","value":"host-12"}}]}],"options":{"_typeName":"RetrieveOptions"}}]]

dofile("ci/bench.d/result.lua")
