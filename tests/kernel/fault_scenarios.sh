#!/bin/sh
# ila-router-sync under server faults, in the kernel VM with the product's
# binaries (issue #7; run by tests/kernel/vm_run.sh like
# traffic_scenarios.sh). The router agent (ilar) and a host agent (h1)
# follow ila-server through:
#   1. a restart (SIGKILL, started again on the same data directory);
#   2. the server unreachable for a while: stopped (SIGSTOP, a hung
#      server) and then down (killed, started again 4 s later) — the
#      kernel keeps its routes meanwhile;
#   3. the server replaced by one restored from a backup taken at an older
#      revision: the agents must resync to the backup's mappings (routes of
#      tasks registered after the backup removed, unregistered tasks' routes
#      back, a moved task back at its old locator), not keep what the new
#      server no longer has.
# After each, the kernel must equal the mappings exactly: ilar's ILA routes
# (proto 73) = every mapping's SIR address -> locator, and h1 has a
# translation entry exactly when its locator has tasks. A route the product
# did not create (proto static, in the SIR prefix) must survive it all.
set -u
. "$(dirname "$0")/lib.sh"
make_topology

SERVER_FLAGS="--listen $SOCK --sync always --retain-revisions 1000"
start_server() { # DATA_DIR
  start server ila-server $SERVER_FLAGS --data-dir "$1"
  SERVER=$!
  until_ok 150 ilactl --server $SOCK status || fail "ila-server did not start"
}
stop_server() { # SIGNAL
  kill -"$1" $SERVER
  wait $SERVER 2>/dev/null
}
c() { ilactl --server $SOCK "$@" >/dev/null || fail "ilactl $*"; }

# "SIR-ADDRESS LOCATOR" per mapping, and per ILA route of ilar, sorted.
db_pairs() {
  ilactl --server $SOCK list |
    awk 'NR > 1 && $3 ~ /:/ && $4 ~ /:/ { print $4, $3 }' | sort
}
kernel_pairs() {
  $IP -n ilar -6 route show proto 73 |
    awk '{ for (i = 1; i < NF; i++) if ($i == "ila") print $1, $(i + 1) }' |
    sort
}
# The kernel equals the database: every route, and h1's entry.
in_sync() {
  db_pairs >$W/db.txt || return 1
  kernel_pairs >$W/kernel.txt
  cmp -s $W/db.txt $W/kernel.txt || return 1
  want=0
  grep -q ' 2001:db8:1:0$' $W/db.txt && want=1
  entries h1 $want
}
expect_sync() { # WHAT
  until_ok 60 in_sync || { # a try takes ~0.5 s under TCG
    echo "database:"
    cat $W/db.txt
    echo "kernel (ilar):"
    cat $W/kernel.txt
    fail "$1: the kernel is not equal to the mappings"
  }
  echo "ok: $1: kernel = mappings ($(wc -l <$W/db.txt) routes)"
}
has_route() { $IP -n ilar -6 route show "$1/128" proto 73 | grep -q ila; }

# A route someone else made inside the SIR prefix: never ours to remove.
$IP -n ilar -6 route add fd00:1::dead/128 via 2001:db8:f1::1 proto static ||
  fail "foreign route"

mkdir -p $W/ilar-state $W/h1-state
start_server $W/db
start ilar $IP netns exec ilar ila-router-sync --server $SOCK --name ilar \
  --via 2001:db8:f1::1 --state-dir $W/ilar-state
ILAR=$!
start h1 $IP netns exec h1 ila-router-sync --server $SOCK --name h1 \
  --role host --locator 2001:db8:1:: --state-dir $W/h1-state
for i in 1 2 3 4 5 6; do
  loc=2001:db8:$((i % 2 + 1))::
  c task register web/$i --locator $loc --identifier 2000:0:0:$i \
    --sir-prefix fd00:1::
done
expect_sync "start (6 tasks)"

# 1. Restart.
stop_server KILL
start_server $W/db
c task move web/1 --locator 2001:db8:1::
c task rm web/2
c task register web/7 --locator 2001:db8:2:: --identifier 2000:0:0:7 \
  --sir-prefix fd00:1::
expect_sync "after a restart and 3 changes"

# 2a. A hung server (SIGSTOP for 4 s): the agents wait, the kernel keeps
# its routes, nothing is lost.
cp $W/db.txt $W/before-stop.txt
kill -STOP $SERVER
sleep 4 # the fault's duration, not a wait for a condition
kernel_pairs >$W/kernel.txt
cmp -s $W/before-stop.txt $W/kernel.txt ||
  fail "routes changed while the server was stopped"
kill -CONT $SERVER
c task move web/3 --locator 2001:db8:1::
expect_sync "after the server was stopped 4 s"

# 2b. The server down for 4 s: the agents retry; the kernel keeps every
# route meanwhile (a down server is not an empty table).
db_pairs >$W/before-down.txt
stop_server KILL
sleep 4 # the fault's duration
kernel_pairs >$W/kernel.txt
cmp -s $W/before-down.txt $W/kernel.txt ||
  fail "routes changed while the server was down"
entries h1 1 || fail "h1 lost its entry while the server was down"
start_server $W/db
c task rm web/4
c task register web/8 --locator 2001:db8:1:: --identifier 2000:0:0:8 \
  --sir-prefix fd00:1::
expect_sync "after the server was down 4 s"

# 3. A backup, then changes, then the server replaced by the restore.
c snapshot save $W/backup
cp $W/db.txt $W/backup-pairs.txt
c task register web/9 --locator 2001:db8:2:: --identifier 2000:0:0:9 \
  --sir-prefix fd00:1::
c task rm web/5
c task move web/6 --locator 2001:db8:1::
# h1's locator gets no task after the backup: make it lose all of them so
# that its entry must come back after the restore.
for t in web/1 web/3 web/6 web/8; do c task rm $t; done
expect_sync "after the changes that follow the backup"
entries h1 0 || fail "h1 kept an entry without tasks"
# The router agent is down while the server is replaced (a rolling
# restart): when it comes back, its saved state says revision R+7 of the
# old history, and the restored server has gone past R+7 with other
# writes. Only the history id tells the agent that its routes are from
# another history; it must take a snapshot, not the changes after R+7.
# The host agent stays connected throughout (the live case).
start_ilar() {
  start ilar $IP netns exec ilar ila-router-sync --server $SOCK --name ilar \
    --via 2001:db8:f1::1 --state-dir $W/ilar-state
  ILAR=$!
}
kill $ILAR
wait $ILAR 2>/dev/null
stop_server TERM
ila-server --restore $W/backup --data-dir $W/db-restored >$W/restore.log 2>&1 ||
  fail "restore: $(cat $W/restore.log)"
start_server $W/db-restored
db_pairs >$W/restored-pairs.txt
cmp -s $W/backup-pairs.txt $W/restored-pairs.txt ||
  fail "the restored server does not have the backup's mappings"
for i in 10 11 12 13 14 15 16 17 18; do
  c task register web/$i --locator 2001:db8:2:: --identifier 2000:0:0:$i \
    --sir-prefix fd00:1::
done
start_ilar
expect_sync "after the server was replaced by an older backup"
has_route fd00:1::2000:0:0:9 && fail "ilar kept web/9's route (not in the backup)"
has_route fd00:1::2000:0:0:5 || fail "web/5's route did not come back"
grep -q "snapshot" $W/ilar.log || fail "ilar did not take a snapshot"

$IP -n ilar -6 route show fd00:1::dead/128 proto static | grep -q . ||
  fail "the foreign route was removed"
echo "ok: the foreign route (proto static) is untouched"
ilactl --server $SOCK subscribers -o json >$W/subs.json
grep -q '"last_nack_revision":[1-9]' $W/subs.json && fail "an agent sent a Nack"
echo "PASS: fault_scenarios"
