#!/usr/bin/env bash
# A two-namespace lab to try hook6 by hand (root needed):
#
#   examples/lab/lab.sh up       server and client namespaces joined by a veth,
#                                hook6d serving examples/lab/hook6.yaml
#   examples/lab/lab.sh client   dhclient -6 asking for an address and a /56
#                                (foreground; Ctrl-C stops it)
#   examples/lab/lab.sh leases   hook6ctl lease list
#   examples/lab/lab.sh down     stop hook6d, remove the namespaces
#
# Run from anywhere. LAB (default h6lab) prefixes the namespace names; VAR
# (default ./var/lab of the repository) holds hook6d's state, socket and log;
# HOOK6_BIN (default ./bin, built when missing) holds hook6d and hook6ctl.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
root="$(cd "$(dirname "$self")/../.." && pwd)"
cd "$root"
lab="${LAB:-h6lab}"
srv="$lab-srv" cli="$lab-cli"
var="$(mkdir -p "${VAR:-$root/var/lab}" && cd "${VAR:-$root/var/lab}" && pwd)"
bin="${HOOK6_BIN:-$root/bin}"
ctl=("$bin/hook6ctl" --socket "$var/control.sock")

up() {
	[ -x "$bin/hook6d" ] && [ -x "$bin/hook6ctl" ] || make build
	for ns in "$srv" "$cli"; do
		ip netns add "$ns"
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
		ip -n "$ns" link set lo up
	done
	ip link add srv0 netns "$srv" type veth peer name cli0 netns "$cli"
	ip -n "$srv" link set srv0 up
	ip -n "$cli" link set cli0 up
	ip -n "$srv" -6 addr add 2001:db8:1::1/64 dev srv0 nodad
	# dhclient needs cli0's link-local address, which comes with the carrier.
	for _ in $(seq 50); do
		ip -n "$cli" -6 addr show dev cli0 scope link | grep -v tentative | grep -q inet6 && break
		sleep 0.1
	done
	# hook6.yaml's relative paths are resolved in $var.
	(cd "$var" && exec ip netns exec "$srv" "$bin/hook6d" -c "$root/examples/lab/hook6.yaml" >hook6d.log 2>&1) &
	echo $! >"$var/hook6d.pid"
	for _ in $(seq 50); do
		"${ctl[@]}" status >/dev/null 2>&1 && break
		sleep 0.1
	done
	"${ctl[@]}" status
	echo "lab up: hook6d log in $var/hook6d.log; next: $self client"
}

client() {
	exec ip netns exec "$cli" dhclient -6 -N -P -d -v \
		-lf "$var/dhclient.leases" -pf "$var/dhclient.pid" -sf /bin/true cli0
}

down() {
	if [ -f "$var/hook6d.pid" ]; then
		kill "$(cat "$var/hook6d.pid")" 2>/dev/null || true
		rm -f "$var/hook6d.pid"
	fi
	for ns in "$cli" "$srv"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
	echo "lab down"
}

case "${1:-}" in
up) up ;;
client) client ;;
leases) "${ctl[@]}" lease list ;;
down) down ;;
*) sed -n '2,13p' "$self"; exit 2 ;;
esac
