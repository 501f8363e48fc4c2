# Shared by the kernel VM scenario scripts (sourced; busybox sh): the
# kernel-lab topology of namespaces joined by veth, background processes
# that are stopped at exit, bounded waits.
#   tr (probing host, 2001:db8:f0::2) - tor - ilar (ILA router)
#                                       tor - h1 (locator 2001:db8:1::/64)
#                                       tor - h2 (locator 2001:db8:2::/64)
# tor routes the SIR prefix fd00:1::/64 to ilar and each locator to its
# host. ila-server listens on a Unix socket ($SOCK) so that agents in any
# namespace reach it.
IP=/sbin/ip
W=/tmp/ila-scenarios
SOCK=unix:$W/ila.sock
PIDS=""
NAMESPACES="tr tor ilar h1 h2"

fail() {
  echo "FAIL: $*"
  for ns in ilar h1 h2; do
    echo "--- $ns routes / ila entries:"
    $IP -n $ns -6 route show 2>&1
    $IP -n $ns ila list 2>&1
  done
  for f in "$W"/*.log; do
    echo "--- $f:"
    tail -n 20 "$f"
  done
  exit 1
}
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null; done
  for p in $PIDS; do wait "$p" 2>/dev/null; done
  for ns in $NAMESPACES; do $IP netns del $ns 2>/dev/null; done
}
trap cleanup EXIT
start() { # LOG COMMAND...: runs COMMAND in the background
  log=$1
  shift
  "$@" >"$W/$log.log" 2>&1 &
  PIDS="$PIDS $!"
}
# until_ok TRIES COMMAND...: runs COMMAND every 0.1 s until it succeeds (at
# most TRIES times).
until_ok() {
  n=$1
  shift
  while [ "$n" -gt 0 ]; do
    "$@" >/dev/null 2>&1 && return 0
    n=$((n - 1))
    sleep 0.1
  done
  return 1
}
now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }

link() { # NS_A IF_A ADDR_A NS_B IF_B ADDR_B
  $IP link add "$2" netns "$1" type veth peer name "$5" netns "$4" ||
    fail "veth $1/$2 - $4/$5"
  $IP -n "$1" addr add "$3" dev "$2" nodad
  $IP -n "$4" addr add "$6" dev "$5" nodad
  $IP -n "$1" link set "$2" up
  $IP -n "$4" link set "$5" up
}

make_topology() {
  mkdir -p $W
  for ns in $NAMESPACES; do
    $IP netns add $ns || fail "ip netns add $ns"
    $IP -n $ns link set lo up
    $IP netns exec $ns sysctl -qw net.ipv6.icmp.ratelimit=0
    $IP netns exec $ns sysctl -qw net.ipv6.conf.all.accept_dad=0
    $IP netns exec $ns sysctl -qw net.ipv6.conf.default.accept_dad=0
  done
  for ns in tor ilar; do
    $IP netns exec $ns sysctl -qw net.ipv6.conf.all.forwarding=1
  done
  link tr tr0 2001:db8:f0::2/64 tor tor-tr 2001:db8:f0::1/64
  link ilar ilar0 2001:db8:f1::2/64 tor tor-ilar 2001:db8:f1::1/64
  link h1 h10 2001:db8:e1::2/64 tor tor-h1 2001:db8:e1::1/64
  link h2 h20 2001:db8:e2::2/64 tor tor-h2 2001:db8:e2::1/64
  $IP -n tr -6 route add default via 2001:db8:f0::1
  $IP -n ilar -6 route add default via 2001:db8:f1::1
  $IP -n h1 -6 route add default via 2001:db8:e1::1
  $IP -n h2 -6 route add default via 2001:db8:e2::1
  $IP -n tor -6 route add fd00:1::/64 via 2001:db8:f1::2
  $IP -n tor -6 route add 2001:db8:1::/64 via 2001:db8:e1::2
  $IP -n tor -6 route add 2001:db8:2::/64 via 2001:db8:e2::2
  until_ok 50 $IP netns exec tr ping6 -c 1 -W 1 2001:db8:e1::2 ||
    fail "the plain network does not work: tr cannot reach h1"
  until_ok 50 $IP netns exec tr ping6 -c 1 -W 1 2001:db8:e2::2 ||
    fail "the plain network does not work: tr cannot reach h2"
}

# ilar's route to SIR address $1 goes to locator $2.
route_to() {
  $IP -n ilar -6 route show "$1/128" proto 73 | grep -q "encap ila  *$2 "
}
# Namespace $1 holds $2 translation entries.
entries() {
  [ "$($IP -n "$1" ila list | wc -l)" -eq "$2" ]
}
