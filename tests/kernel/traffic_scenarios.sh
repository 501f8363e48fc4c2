#!/bin/sh
# Kernel VM scenarios 4 and 5 of the router-sync issue, with the product's
# binaries as deployed (run by tests/kernel/vm_run.sh, which puts
# ila-server, ila-router-sync, ilactl and udp_echo in /t on PATH):
#   4. UDP and ping from a probing host to a task's SIR address reach the
#      task, and still reach it after MoveTask to another host;
#   5. each task host's agent (--role host) keeps the translation entry of
#      its locator, and packets are translated back to the SIR address.
# Topology: tests/kernel/lib.sh (../shared/kernel-lab.md's). Nothing
# ILA-related is configured by hand: ila-server runs in the
# root namespace on a Unix socket, ila-router-sync in ilar (router) and in
# h1, h2 (host). The task's own part (its SIR address on lo of the host it
# runs on) is done by the script, as the scheduler's task would.
set -u
. "$(dirname "$0")/lib.sh"
SIR=fd00:1::2000:0:0:42 # SIR prefix fd00:1::/64 + identifier 2000:0:0:42
make_topology

# The task web/1 listens on UDP 7000 on either host (the reply names it).
start echo-h1 $IP netns exec h1 udp_echo serve 7000 h1 300
start echo-h2 $IP netns exec h2 udp_echo serve 7000 h2 300

start server ila-server --listen $SOCK --data-dir $W/db --sync none
until_ok 100 ilactl --server $SOCK status || fail "ila-server did not start"
start ilar $IP netns exec ilar ila-router-sync --server $SOCK --name ilar \
  --via 2001:db8:f1::1 --state-dir $W
ilactl --server $SOCK task register web/1 --locator 2001:db8:1:: \
  --identifier 2000:0:0:42 --sir-prefix fd00:1:: || fail "register web/1"
$IP -n h1 addr add $SIR/128 dev lo nodad

until_ok 100 route_to $SIR 2001:db8:1:0 || fail "ilar has no ILA route to $SIR"
echo "ilar: $($IP -n ilar -6 route show $SIR/128 proto 73)"

# Without the host's translation entry the packet reaches h1 addressed to
# the ILA address (2001:db8:1:0:2000:0:0:42), which h1 does not own.
$IP netns exec tr udp_echo send $SIR 7000 before-host-agent 1000 &&
  fail "a reply came back before h1 translates ILA addresses"
echo "ok: no reply before h1's agent runs (the router translated, h1 did not)"

start h1 $IP netns exec h1 ila-router-sync --server $SOCK --name h1 \
  --role host --locator 2001:db8:1::
start h2 $IP netns exec h2 ila-router-sync --server $SOCK --name h2 \
  --role host --locator 2001:db8:2::
until_ok 100 entries h1 1 || fail "h1 has no translation entry"
entries h2 0 || fail "h2 has a translation entry without a task"

# Scenario 4 and 5: UDP and ping reach the task on h1.
reply=$($IP netns exec tr udp_echo send $SIR 7000 hello-1 5000) ||
  fail "UDP to $SIR got no answer"
[ "$reply" = "h1 hello-1" ] || fail "UDP answer \"$reply\", want h1"
echo "ok: UDP to $SIR answered by \"$reply\""
$IP netns exec tr ping6 -c 3 -W 2 $SIR || fail "ping $SIR"
echo "ok: ping $SIR while on h1"

# MoveTask to h2: the task's address moves with it; the router's route and
# the hosts' entries follow.
t0=$(now_ms)
ilactl --server $SOCK task move web/1 --locator 2001:db8:2:: || fail "move"
$IP -n h1 addr del $SIR/128 dev lo
$IP -n h2 addr add $SIR/128 dev lo nodad
until_ok 100 route_to $SIR 2001:db8:2:0 || fail "ilar's route did not follow"
until_ok 100 entries h2 1 || fail "h2 has no translation entry"
until_ok 100 entries h1 0 || fail "h1 kept its translation entry"
until_ok 50 $IP netns exec tr udp_echo send $SIR 7000 hello-2 200 ||
  fail "UDP to $SIR got no answer after the move"
t1=$(now_ms)
reply=$($IP netns exec tr udp_echo send $SIR 7000 hello-3 5000)
[ "$reply" = "h2 hello-3" ] || fail "UDP answer \"$reply\" after the move, want h2"
echo "ok: UDP to $SIR answered by \"$reply\" after the move ($((t1 - t0)) ms from MoveTask to the first answer, under TCG)"
$IP netns exec tr ping6 -c 3 -W 2 $SIR || fail "ping $SIR after the move"
echo "ok: ping $SIR while on h2"

# Every agent is current and reported no error.
ilactl --server $SOCK subscribers
ilactl --server $SOCK subscribers -o json >$W/subs.json
for n in ilar h1 h2; do
  grep -q "\"node\":\"$n\"" $W/subs.json || fail "$n is not subscribed"
done
grep -q '"last_nack_revision":[1-9]' $W/subs.json && fail "an agent sent a Nack"
echo "PASS: traffic_scenarios"
exit 0
