#!/usr/bin/env bash
# SOAP throughput and latency of `esxi-sim serve` over HTTPS, measured as govmomi's vcsim was
# (issue 4): wrk from Debian on loopback, 32 connections, 10 s, keep-alive; plus idle RSS. Then
# VI/JSON next to SOAP on a vCenter (issue 15): a property read and RetrievePropertiesEx.
# Each figure is the median of RUNS runs. Reproduce one run by hand with the commands printed.
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
PASSWORD='Bench!pw1'

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "==> installing wrk (Debian)"
        apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null; }
    else
        echo "api bench skipped: wrk not installed (apt-get install wrk)"; exit 0
    fi
fi

cargo build --release --locked --bin esxi-sim 2>&1 | tail -1
BIN=target/release/esxi-sim
OUT=$(mktemp); ERR=$(mktemp)
"$BIN" serve --listen 127.0.0.1:0 --password "$PASSWORD" --seed 1 >"$OUT" 2>"$ERR" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -f "$OUT" "$ERR"' EXIT
for _ in $(seq 100); do grep -q '^ready:' "$OUT" && break; sleep 0.05; done
URL=$(sed -n 's/^ready: //p' "$OUT")
[ -n "$URL" ] || { echo "server did not start"; cat "$ERR"; exit 1; }
sleep 0.5
echo "idle RSS: $(( $(ps -o rss= -p $PID) / 1024 )) MiB  (ps -o rss= -p <pid> of '$BIN serve')"

# The peer, side by side: govmomi's vcsim in ESXi mode (../shared/tools/vcsim; VCSIM=path),
# measured in the same rounds, interleaved, so that a noisy machine slows both alike.
VCSIM=${VCSIM:-../shared/tools/vcsim}
VURL=
if [ -x "$VCSIM" ]; then
    VPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$VCSIM" -esx -l "127.0.0.1:$VPORT" >/dev/null 2>&1 &
    VPID=$!
    trap 'kill $PID $VPID 2>/dev/null; rm -f "$OUT" "$ERR"' EXIT
    for _ in $(seq 100); do curl -sk -o /dev/null "https://127.0.0.1:$VPORT/about" && break; sleep 0.05; done
    VURL=https://127.0.0.1:$VPORT/sdk
    sleep 0.5
    echo "vcsim idle RSS: $(( $(ps -o rss= -p $VPID) / 1024 )) MiB  ($VCSIM -esx)"
else
    echo "vcsim not found at $VCSIM: esxi-sim only, against issue 4's vcsim figures"
fi

soap() { # url cookie body-file -> response on stdout
    curl -sk -H 'Content-Type: text/xml; charset=utf-8' ${2:+-H "Cookie: $2"} --data-binary @"$3" "$1"
}
body() { # lua file -> its wrk.body
    grep '^wrk.body = \[\[' "$1" | sed 's/^wrk.body = \[\[//; s/\]\]$//'
}
login() { # url password -> the session cookie
    local f c
    f=$(mktemp)
    printf '%s' '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this><userName>root</userName><password>'"$2"'</password></Login></soapenv:Body></soapenv:Envelope>' >"$f"
    c=$(curl -sk -D - -o /dev/null -H 'Content-Type: text/xml' --data-binary @"$f" "$1" \
        | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(vmware_soap_session=[^;]*\).*/\1/p')
    rm -f "$f"
    [ -n "$c" ] || { echo "login to $1 failed" >&2; exit 1; }
    echo "$c"
}
COOKIE=$(login "$URL" "$PASSWORD")
[ -z "$VURL" ] || VCOOKIE=$(login "$VURL" "$PASSWORD")

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

one() { # url cookie lua -> "rps p50 p99"
    local line
    line=$(ESXI_COOKIE=$2 wrk -t2 -c"$CONNS" -d"$DURATION" -s "$3" "$1" | grep '^RESULT')
    case $line in *errors=0) ;; *) echo "errors against $1: $line" >&2; exit 1;; esac
    sed 's/.*rps=\([0-9.]*\).*p50_ms=\([0-9.]*\).*p99_ms=\([0-9.]*\).*/\1 \2 \3/' <<<"$line"
}

run() { # name lua expect-in-response issue-4-vcsim-rps
    local name=$1 lua=$2 expect=$3 ref=$4 b
    b=$(mktemp); body "$lua" >"$b"
    # The request must do what it claims, on both servers, before it is timed.
    soap "$URL" "$COOKIE" "$b" | grep -q "$expect" || { echo "$name: esxi-sim's response lacks $expect"; exit 1; }
    if [ -n "$VURL" ]; then
        soap "$VURL" "$VCOOKIE" "$b" | grep -q "$expect" || { echo "$name: vcsim's response lacks $expect"; exit 1; }
    fi
    rm -f "$b"
    local e=() v=()
    for _ in $(seq "$RUNS"); do
        e+=("$(one "$URL" "$COOKIE" "$lua")")
        [ -z "$VURL" ] || v+=("$(one "$VURL" "$VCOOKIE" "$lua")")
    done
    col() { printf '%s\n' "${@:2}" | awk -v c="$1" '{print $c}' | median; }
    local r m n
    r=$(col 1 "${e[@]}"); m=$(col 2 "${e[@]}"); n=$(col 3 "${e[@]}")
    printf '%-22s esxi-sim %8s req/s  p50 %6s ms  p99 %6s ms  runs: %s\n' "$name" "$r" "$m" "$n" \
        "$(printf '%s\n' "${e[@]}" | awk '{printf "%s ", $1}')"
    if [ -n "$VURL" ]; then
        local vr vm vn
        vr=$(col 1 "${v[@]}"); vm=$(col 2 "${v[@]}"); vn=$(col 3 "${v[@]}")
        printf '%-22s vcsim    %8s req/s  p50 %6s ms  p99 %6s ms  runs: %s\n' "" "$vr" "$vm" "$vn" \
            "$(printf '%s\n' "${v[@]}" | awk '{printf "%s ", $1}')"
        printf '%-22s ratio    %8s× throughput, p99 %s×\n' "" \
            "$(awk -v a="$r" -v b="$vr" 'BEGIN{printf "%.1f", a/b}')" \
            "$(awk -v a="$n" -v b="$vn" 'BEGIN{printf "%.2f", a/b}')"
    else
        printf '%-22s (%s× issue 4'"'"'s vcsim %s req/s)\n' "" \
            "$(awk -v a="$r" -v b="$ref" 'BEGIN{printf "%.1f", a/b}')" "$ref"
    fi
}

echo "wrk -t2 -c$CONNS -d$DURATION, median of $RUNS interleaved rounds; reproduce:"
echo "  $BIN serve --listen 127.0.0.1:8443 --password '$PASSWORD' &"
echo "  $VCSIM -esx -l 127.0.0.1:8989 &"
echo "  wrk -t2 -c$CONNS -d$DURATION -s ci/bench.d/rsc.lua https://127.0.0.1:8443/sdk"
echo "  ESXI_COOKIE='vmware_soap_session=\"<from Login>\"' wrk ... -s ci/bench.d/rpex.lua ..."
run RetrieveServiceContent ci/bench.d/rsc.lua RetrieveServiceContentResponse 8000
run RetrievePropertiesEx ci/bench.d/rpex.lua '<obj type="HostSystem">ha-host</obj>' 6500
echo "RSS after load: esxi-sim $(( $(ps -o rss= -p $PID) / 1024 )) MiB${VURL:+, vcsim $(( $(ps -o rss= -p ${VPID:-0}) / 1024 )) MiB}"

# VI/JSON next to SOAP (issue 15) on one vCenter (8.0U3, one host), the same calls through the
# same core: a property read (GET .../name; SOAP: Fetch) and RetrievePropertiesEx. Interleaved
# rounds, so noise slows both alike. vcsim speaks no VI/JSON: no peer here.
VC_OUT=$(mktemp)
"$BIN" serve --mode vcenter --hosts 1 --profile 8.0U3 --listen 127.0.0.1:0 --ports 0 \
    --vcenter-password "$PASSWORD" --seed 1 >"$VC_OUT" 2>/dev/null &
VCPID=$!
trap 'kill $PID ${VPID:-} $VCPID 2>/dev/null; rm -f "$OUT" "$ERR" "$VC_OUT"' EXIT
for _ in $(seq 100); do grep -q '^ready:' "$VC_OUT" && break; sleep 0.05; done
VC=$(sed -n 's/^ready: //p' "$VC_OUT"); VC=${VC%/sdk}
[ -n "$VC" ] || { echo "the vCenter did not start"; exit 1; }
JTOKEN=$(curl -sk -D - -o /dev/null -H 'Content-Type: application/json' \
    -d '{"userName":"administrator@vsphere.local","password":"'"$PASSWORD"'"}' \
    "$VC/sdk/vim25/8.0.3.0/SessionManager/SessionManager/Login" \
    | tr -d '\r' | sed -n 's/^vmware-api-session-id: //Ip')
[ -n "$JTOKEN" ] || { echo "VI/JSON login to $VC failed"; exit 1; }
f=$(mktemp)
printf '%s' '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>administrator@vsphere.local</userName><password>'"$PASSWORD"'</password></Login></soapenv:Body></soapenv:Envelope>' >"$f"
SCOOKIE=$(curl -sk -D - -o /dev/null -H 'Content-Type: text/xml' --data-binary @"$f" "$VC/sdk" \
    | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(vmware_soap_session=[^;]*\).*/\1/p')
rm -f "$f"
[ -n "$SCOOKIE" ] || { echo "SOAP login to $VC failed"; exit 1; }
# Each request must answer what it claims before it is timed.
curl -sk -H "vmware-api-session-id: $JTOKEN" "$VC/sdk/vim25/8.0.3.0/HostSystem/host-12/name" | grep -q '^"' \
    || { echo "the VI/JSON property read fails"; exit 1; }
curl -sk -H "vmware-api-session-id: $JTOKEN" -H 'Content-Type: application/json' --data-binary "$(body ci/bench.d/vj-rpex.lua)" \
    "$VC/sdk/vim25/8.0.3.0/PropertyCollector/propertyCollector/RetrievePropertiesEx" | grep -q '"HostRuntimeInfo"' \
    || { echo "VI/JSON RetrievePropertiesEx fails"; exit 1; }
b=$(mktemp); body ci/bench.d/vc-fetch.lua >"$b"
soap "$VC/sdk" "$SCOOKIE" "$b" | grep -q 'FetchResponse' || { echo "SOAP Fetch fails"; exit 1; }
body ci/bench.d/vc-rpex.lua >"$b"
soap "$VC/sdk" "$SCOOKIE" "$b" | grep -q 'HostRuntimeInfo' || { echo "SOAP RetrievePropertiesEx fails"; exit 1; }
rm -f "$b"
wires() { # name json-lua soap-lua
    local j=() s=()
    for _ in $(seq "$RUNS"); do
        j+=("$(one "$VC/" "$JTOKEN" "$2")")
        s+=("$(one "$VC/sdk" "$SCOOKIE" "$3")")
    done
    col() { printf '%s\n' "${@:2}" | awk -v c="$1" '{print $c}' | median; }
    local jr jn sr sn
    jr=$(col 1 "${j[@]}"); jn=$(col 3 "${j[@]}"); sr=$(col 1 "${s[@]}"); sn=$(col 3 "${s[@]}")
    printf '%-22s VI/JSON  %8s req/s  p50 %6s ms  p99 %6s ms  runs: %s\n' "$1" "$jr" "$(col 2 "${j[@]}")" "$jn" \
        "$(printf '%s\n' "${j[@]}" | awk '{printf "%s ", $1}')"
    printf '%-22s SOAP     %8s req/s  p50 %6s ms  p99 %6s ms  runs: %s\n' "" "$sr" "$(col 2 "${s[@]}")" "$sn" \
        "$(printf '%s\n' "${s[@]}" | awk '{printf "%s ", $1}')"
    printf '%-22s ratio    %8s× throughput (JSON/SOAP)\n' "" "$(awk -v a="$jr" -v b="$sr" 'BEGIN{printf "%.2f", a/b}')"
}
echo "VI/JSON next to SOAP on a vCenter (8.0U3, 1 host): $BIN serve --mode vcenter --hosts 1 --profile 8.0U3 ...;"
echo "  ESXI_COOKIE=<vmware-api-session-id> wrk ... -s ci/bench.d/vj-get.lua https://<vcenter>/  (vj-rpex.lua; SOAP: vc-fetch.lua, vc-rpex.lua)"
wires "property read (Fetch)" ci/bench.d/vj-get.lua ci/bench.d/vc-fetch.lua
wires RetrievePropertiesEx ci/bench.d/vj-rpex.lua ci/bench.d/vc-rpex.lua
