#!/bin/sh
# Kernel VM acceptance of the trace issue, with the binaries as deployed
# (tests/kernel/vm_run.sh puts ila-server, ila-router-sync, ilactl, Debian's
# traceroute and lib.sh in /t). Topology: tests/kernel/lib.sh; ila-server
# runs in tr, the probing host (the probes leave from its host), ila-router-
# sync as router in ilar and as host in h1 and h2; nothing ILA-related is
# configured by hand.
#   1. Debian's traceroute shows `*` for the hop after the ILA router (tor,
#      which sees the translated packet); `ilactl trace` shows that hop's
#      address for UDP, ICMP and TCP probes and marks it translated with the
#      task's locator, host and task, and reaches the task.
#   2. The same for a task whose mapping uses csum-mode neutral-map (the
#      quoted identifier's low 16 bits and C-bit differ: undone).
#   3. Two ILA routers on the path (a second one, ilar2, translates first
#      and hands the packet to ilar): every hop after ilar2 is translated
#      and explained.
#   4. A task moved while the ILA router's agent is down (its route stale):
#      the trace marks that hop stale, naming the database's locator.
#   5. ila-server restarted without CAP_NET_RAW: UDP and ICMP traces of the
#      same path still show and explain the translated hop, TCP is refused
#      saying why, and the result says what it cannot see.
set -u
. "$(dirname "$0")/lib.sh"
SIR1=fd00:1::2000:0:0:42 # web/1 on h1, adj-transport
SIR2=fd00:1::2000:0:0:43 # web/2 on h2, neutral-map
make_topology

start server $IP netns exec tr ila-server --listen $SOCK --data-dir $W/db \
  --sync none
SERVER=$!
until_ok 100 ilactl --server $SOCK status || fail "ila-server did not start"
start ilar $IP netns exec ilar ila-router-sync --server $SOCK --name ilar \
  --via 2001:db8:f1::1
ILAR_AGENT=$! # `ip netns exec` execs the agent: this is its PID
start h1 $IP netns exec h1 ila-router-sync --server $SOCK --name h1 \
  --role host --locator 2001:db8:1::
start h2 $IP netns exec h2 ila-router-sync --server $SOCK --name h2 \
  --role host --locator 2001:db8:2::
ilactl --server $SOCK task register web/1 --locator 2001:db8:1:: \
  --identifier 2000:0:0:42 --sir-prefix fd00:1:: || fail "register web/1"
ilactl --server $SOCK task register web/2 --locator 2001:db8:2:: \
  --identifier 2000:0:0:43 --sir-prefix fd00:1:: --csum-mode neutral-map ||
  fail "register web/2"
$IP -n h1 addr add $SIR1/128 dev lo nodad
$IP -n h2 addr add $SIR2/128 dev lo nodad
until_ok 100 route_to $SIR1 2001:db8:1:0 || fail "no ILA route to $SIR1"
until_ok 100 route_to $SIR2 2001:db8:2:0 || fail "no ILA route to $SIR2"
until_ok 100 entries h1 1 || fail "h1 has no translation entry"
until_ok 100 entries h2 1 || fail "h2 has no translation entry"
until_ok 50 $IP netns exec tr ping6 -c 1 -W 1 $SIR1 || fail "ping $SIR1"

# 1. Debian's traceroute: hop 3 (tor, after the translation) is missing.
$IP netns exec tr traceroute.db -6 -n -q 1 -w 1 -m 6 $SIR1 >$W/traceroute.out 2>&1
cat $W/traceroute.out
grep -q '^ 2  2001:db8:f1::2 ' $W/traceroute.out || fail "traceroute: hop 2 is not ilar"
grep -q '^ 3  \*' $W/traceroute.out || fail "traceroute: hop 3 is not *"

# hop N of a JSON trace: its object.
hop() { # FILE TTL
  tr '{' '\n' <"$1" | grep "^\"ttl\":$2,"
}
# expect_hop FILE TTL WHAT PATTERN...: that hop's object has every PATTERN.
expect_hop() {
  f=$1 t=$2 what=$3
  shift 3
  h=$(hop "$f" "$t")
  for p in "$@"; do
    echo "$h" | grep -q "$p" || fail "$what: hop $t lacks $p ($h)"
  done
}
for proto in udp icmp tcp; do
  out=$W/trace-$proto.json
  $IP netns exec tr ilactl --server $SOCK trace web/1 --proto $proto \
    --queries 2 --wait-ms 1000 --max-hops 8 -o json >$out ||
    fail "ilactl trace --proto $proto"
  cat $out
  grep -q '"reached":true' $out || fail "$proto: did not reach web/1"
  expect_hop $out 3 $proto '"address":"2001:db8:f1::1"' '"translated":true' \
    '"locator":"2001:db8:1:0"' '"host":"h1"' '"task":"web/1"' '"stale":false'
  expect_hop $out 2 $proto '"translated":false'
  expect_hop $out 4 $proto "\"address\":\"$SIR1\""
  echo "ok: $proto: hop 3 2001:db8:f1::1 (tor) translated -> 2001:db8:1:0 (h1) web/1"
done
ilactl --server $SOCK trace web/1 --queries 1 --wait-ms 1000 ||
  fail "ilactl trace (table)"

# 2. neutral-map: the quoted identifier is not web/2's; decoded, it is.
for proto in udp icmp tcp; do
  out=$W/trace-neutral-$proto.json
  $IP netns exec tr ilactl --server $SOCK trace web/2 --proto $proto \
    --queries 1 --wait-ms 1000 --max-hops 8 -o json >$out ||
    fail "trace web/2 --proto $proto"
  cat $out
  # The quote has the C-bit; the identifier is undone.
  expect_hop $out 3 "neutral-map $proto" \
    '"quoted_destination":"2001:db8:2:0:3000:' '"identifier":"2000:0:0:43"' \
    '"task":"web/2"'
  grep -q '"reached":true' $out || fail "neutral-map $proto: did not reach web/2"
  echo "ok: neutral-map $proto: quoted identifier decoded to web/2"
done

# 3. Two ILA routers: tor sends the SIR prefix to ilar2, which translates
# and forwards to ilar, which routes the locator back through tor.
NAMESPACES="$NAMESPACES ilar2"
$IP netns add ilar2 || fail "ip netns add ilar2"
$IP -n ilar2 link set lo up
for k in net.ipv6.icmp.ratelimit=0 net.ipv6.conf.all.accept_dad=0 \
  net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.forwarding=1; do
  $IP netns exec ilar2 sysctl -qw $k
done
link ilar2 ilar2a 2001:db8:f3::2/64 tor tor-ilar2 2001:db8:f3::1/64
link ilar2 ilar2b 2001:db8:f4::1/64 ilar ilar1 2001:db8:f4::2/64
$IP -n ilar2 -6 route add default via 2001:db8:f3::1
start ilar2 $IP netns exec ilar2 ila-router-sync --server $SOCK --name ilar2 \
  --via 2001:db8:f4::2
until_ok 100 sh -c "$IP -n ilar2 -6 route show $SIR1/128 proto 73 | grep -q 'encap ila'" ||
  fail "ilar2 has no ILA route"
$IP -n tor -6 route replace fd00:1::/64 via 2001:db8:f3::2
out=$W/trace-two-routers.json
$IP netns exec tr ilactl --server $SOCK trace web/1 --proto icmp --queries 1 \
  --wait-ms 1000 --max-hops 8 -o json >$out || fail "trace via two routers"
cat $out
grep -q '"reached":true' $out || fail "two routers: did not reach web/1"
# ilar2 before translation; ilar and tor after it; then the task.
expect_hop $out 2 "two routers" '"address":"2001:db8:f3::2".*"translated":false'
for ttl in 3 4; do
  expect_hop $out $ttl "two routers" '"translated":true' \
    '"locator":"2001:db8:1:0","identifier":"2000:0:0:42","host":"h1","task":"web/1"'
done
expect_hop $out 3 "two routers" '"address":"2001:db8:f4::2"'
expect_hop $out 5 "two routers" "\"address\":\"$SIR1\""
$IP -n tor -6 route replace fd00:1::/64 via 2001:db8:f1::2
echo "ok: two ILA routers: hops 3 (ilar) and 4 (tor) translated and explained"

# 4. Stale router: ilar's agent stops, web/1 moves -> ilar still sends to
# h1's locator.
kill $ILAR_AGENT
wait $ILAR_AGENT
# (to a locator no host here announces: h2 keeps web/2's neutral-map entry)
ilactl --server $SOCK task move web/1 --locator 2001:db8:3:: || fail "move"
out=$W/trace-stale.json
$IP netns exec tr ilactl --server $SOCK trace web/1 --proto icmp --queries 1 \
  --wait-ms 1000 --max-hops 8 -o json >$out || fail "trace after move"
cat $out
expect_hop $out 3 stale '"locator":"2001:db8:1:0"' '"stale":true'
ilactl --server $SOCK trace web/1 --proto icmp --queries 1 --wait-ms 1000 |
  grep "STALE: the database has locator 2001:db8:3:0" ||
  fail "stale: the table output does not say so"
echo "ok: stale router marked"

# 5. ila-server without CAP_NET_RAW (ping sockets allowed for its group).
kill $SERVER
wait $SERVER
$IP netns exec tr sysctl -qw net.ipv4.ping_group_range="0 2147483647"
start server-unprivileged $IP netns exec tr drop_net_raw ila-server \
  --listen $SOCK --data-dir $W/db --sync none
until_ok 100 ilactl --server $SOCK status || fail "ila-server did not restart"
for proto in udp icmp; do
  out=$W/trace-unprivileged-$proto.json
  $IP netns exec tr ilactl --server $SOCK trace web/2 --proto $proto \
    --queries 1 --wait-ms 1000 --max-hops 8 -o json >$out ||
    fail "unprivileged trace --proto $proto"
  cat $out
  grep -q '"reached":true' $out || fail "unprivileged $proto: not reached"
  expect_hop $out 3 "unprivileged $proto" '"address":"2001:db8:f1::1"' \
    '"translated":true' '"task":"web/2"'
  grep -q '"limitations":"without CAP_NET_RAW: no TCP probes' $out ||
    fail "unprivileged $proto: the limitations are not reported"
done
ilactl --server $SOCK trace web/2 --proto tcp >$W/tcp.out 2>&1 &&
  fail "unprivileged tcp trace did not fail"
cat $W/tcp.out
grep -q "TCP SYN probes need CAP_NET_RAW" $W/tcp.out ||
  fail "unprivileged tcp: the error does not say why"
echo "ok: without CAP_NET_RAW: udp and icmp explained, tcp refused"
echo "PASS: trace_scenarios"
exit 0
