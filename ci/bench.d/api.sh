#!/usr/bin/env bash
# SOAP throughput and latency of `esxi-sim serve` over HTTPS, measured as govmomi's vcsim was
# (issue 4): wrk from Debian on loopback, 32 connections, 10 s, keep-alive; plus idle RSS.
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

soap() { # body-file -> response on stdout
    curl -sk -H 'Content-Type: text/xml; charset=utf-8' ${COOKIE:+-H "Cookie: $COOKIE"} --data-binary @"$1" "$URL"
}
body() { # lua file -> its wrk.body
    grep '^wrk.body = \[\[' "$1" | sed 's/^wrk.body = \[\[//; s/\]\]$//'
}
LOGIN=$(mktemp)
printf '%s' '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this><userName>root</userName><password>'"$PASSWORD"'</password></Login></soapenv:Body></soapenv:Envelope>' >"$LOGIN"
COOKIE=$(curl -sk -D - -o /dev/null -H 'Content-Type: text/xml' --data-binary @"$LOGIN" "$URL" \
    | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(vmware_soap_session="[0-9a-f]*"\).*/\1/p')
rm -f "$LOGIN"
[ -n "$COOKIE" ] || { echo "login failed"; exit 1; }
export ESXI_COOKIE="$COOKIE"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run() { # name lua expect-in-response vcsim-rps
    local name=$1 lua=$2 expect=$3 ref=$4 b
    b=$(mktemp); body "$lua" >"$b"
    # The request must do what it claims before we time it.
    soap "$b" | grep -q "$expect" || { echo "$name: response lacks $expect"; soap "$b" | head -c 600; exit 1; }
    rm -f "$b"
    local rps=() p50=() p99=()
    for _ in $(seq "$RUNS"); do
        local line
        line=$(wrk -t2 -c"$CONNS" -d"$DURATION" -s "$lua" "$URL" | grep '^RESULT')
        case $line in *errors=0) ;; *) echo "$name: errors: $line"; exit 1;; esac
        rps+=("$(sed 's/.*rps=\([0-9.]*\).*/\1/' <<<"$line")")
        p50+=("$(sed 's/.*p50_ms=\([0-9.]*\).*/\1/' <<<"$line")")
        p99+=("$(sed 's/.*p99_ms=\([0-9.]*\).*/\1/' <<<"$line")")
    done
    local r m n
    r=$(printf '%s\n' "${rps[@]}" | median)
    m=$(printf '%s\n' "${p50[@]}" | median)
    n=$(printf '%s\n' "${p99[@]}" | median)
    printf '%-22s %8s req/s  p50 %6s ms  p99 %6s ms  (%s× vcsim %s req/s)  runs: %s\n' \
        "$name" "$r" "$m" "$n" "$(awk -v a="$r" -v b="$ref" 'BEGIN{printf "%.1f", a/b}')" "$ref" "${rps[*]}"
}

echo "wrk -t2 -c$CONNS -d$DURATION, median of $RUNS runs; reproduce:"
echo "  $BIN serve --listen 127.0.0.1:8443 --password '$PASSWORD' &"
echo "  wrk -t2 -c$CONNS -d$DURATION -s ci/bench.d/rsc.lua https://127.0.0.1:8443/sdk"
echo "  ESXI_COOKIE='vmware_soap_session=\"<from Login>\"' wrk ... -s ci/bench.d/rpex.lua ..."
run RetrieveServiceContent ci/bench.d/rsc.lua RetrieveServiceContentResponse 8000
run RetrievePropertiesEx ci/bench.d/rpex.lua '<obj type="HostSystem">ha-host</obj>' 6500
echo "RSS after load: $(( $(ps -o rss= -p $PID) / 1024 )) MiB"
