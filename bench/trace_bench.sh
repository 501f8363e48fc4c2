#!/bin/sh
# trace_bench: how long a full trace of the kernel-lab ILA path takes,
# `ilactl trace` (defaults: UDP, 3 probes per hop, 2 s wait) next to
# Debian's `traceroute` with its defaults, 5 runs each: the commands' wall
# time, and for ilactl also the trace itself (request to summary, printed
# by ilactl; its process start-up, gRPC's libraries loaded under the VM's
# emulated CPU, is measured apart with `ilactl status`). Runs inside the
# kernel VM (the ILA path needs kernel ILA):
#   ILA_VM_TIMEOUT=600 tests/kernel/vm_run.sh /var/cache/ila-kernel \
#     --with build/bin/ila-server --with build/bin/ila-router-sync \
#     --with build/bin/ilactl --with /usr/bin/traceroute.db \
#     --with tests/kernel/lib.sh bench/trace_bench.sh
# Router ICMPv6 rate limits stay at the kernel's defaults here (the
# scenario tests turn them off), as on a real path.
set -u
. "$(dirname "$0")/lib.sh"
SIR=fd00:1::2000:0:0:42
make_topology
for ns in $NAMESPACES; do
  $IP netns exec $ns sysctl -qw net.ipv6.icmp.ratelimit=1000
done
start server $IP netns exec tr ila-server --listen $SOCK --data-dir $W/db \
  --sync none
until_ok 100 ilactl --server $SOCK status || fail "ila-server did not start"
start ilar $IP netns exec ilar ila-router-sync --server $SOCK --name ilar \
  --via 2001:db8:f1::1
start h1 $IP netns exec h1 ila-router-sync --server $SOCK --name h1 \
  --role host --locator 2001:db8:1::
ilactl --server $SOCK task register web/1 --locator 2001:db8:1:: \
  --identifier 2000:0:0:42 --sir-prefix fd00:1:: >/dev/null || fail "register"
$IP -n h1 addr add $SIR/128 dev lo nodad
until_ok 100 route_to $SIR 2001:db8:1:0 || fail "no ILA route"
until_ok 100 entries h1 1 || fail "no translation entry"
until_ok 50 $IP netns exec tr ping6 -c 1 -W 1 $SIR || fail "ping"

run() { # NAME COMMAND...: prints the run's milliseconds and hops seen
  name=$1
  shift
  t0=$(now_ms)
  "$@" >$W/out 2>&1
  t1=$(now_ms)
  seen=$(grep -c '^ *[0-9][0-9]*  [0-9a-f:]*[0-9a-f]' $W/out)
  trace_ms=$(sed -n 's/.* in \([0-9]*\) ms$/\1/p' $W/out)
  echo "$name: ${trace_ms:+trace $trace_ms ms, }command $((t1 - t0)) ms," \
    "$seen hops answered"
}
for i in 1 2 3 4 5; do
  run "ilactl-status" $IP netns exec tr ilactl --server $SOCK status
  sleep 1.1 # let the routers' ICMPv6 token buckets refill between runs
  run "traceroute" $IP netns exec tr traceroute.db -6 -n $SIR
  sleep 1.1
  run "ilactl-trace" $IP netns exec tr ilactl --server $SOCK trace web/1
done
cat $W/out
grep "probing took" $W/server.log | tail -5
exit 0
