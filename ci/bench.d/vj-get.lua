-- wrk: a VI/JSON property read (GET HostSystem/host-12/name on a vCenter) with the session id
-- from the environment (ESXI_COOKIE holds it; made by ci/bench.d/api.sh with one Login).
wrk.method = "GET"
wrk.path = "/sdk/vim25/8.0.3.0/HostSystem/host-12/name"
wrk.headers["vmware-api-session-id"] = os.getenv("ESXI_COOKIE")

dofile("ci/bench.d/result.lua")
