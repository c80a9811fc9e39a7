#!/usr/bin/env bash
# bench/micro.sh BASE [HEAD] — hook6's Go micro-benchmarks (core, the lease
# store, the hooks runtimes) on two commits, compared with benchstat.
#
#   bench/micro.sh HEAD~1            HEAD~1 against HEAD
#   bench/micro.sh main .            main against the working tree, edits included
#   COUNT=10 BENCH='Solicit|Request' bench/micro.sh v0.1.0 HEAD
#
# Each commit is checked out in a temporary git worktree (the working tree is
# left alone) and benchmarked with
#   go test -run '^$' -bench "$BENCH" -count "$COUNT" ./core/ ./core/lease/ ./hooks/... ./extensions/
# one commit after the other, so both meet the same machine; the raw outputs
# are kept in $OUT (default: a temporary directory, printed at the end). The
# comparison is `go run golang.org/x/perf/cmd/benchstat@latest old new`.
# On a shared machine, read the ± column: differences inside it are noise.
set -euo pipefail

usage() { echo "usage: bench/micro.sh BASE [HEAD|.]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
base=$1
head=${2:-HEAD}
count=${COUNT:-6}
bench=${BENCH:-.}
benchtime=${BENCHTIME:-1s}
pkgs=(./core/ ./core/lease/ ./hooks/... ./extensions/)

repo=$(git rev-parse --show-toplevel)
out=${OUT:-$(mktemp -d -t hook6-micro-XXXXXX)}
mkdir -p "$out"
worktrees=()
cleanup() {
	for w in "${worktrees[@]}"; do
		git -C "$repo" worktree remove --force "$w" >/dev/null 2>&1 || true
	done
}
trap cleanup EXIT

# checkout REV: sets dir to a directory holding REV ("." is the working tree).
checkout() {
	if [ "$1" = . ]; then
		dir=$repo
		return
	fi
	local rev
	rev=$(git -C "$repo" rev-parse --verify --quiet "$1^{commit}") || { echo "micro.sh: no commit $1" >&2; exit 2; }
	dir=$(mktemp -d -t hook6-micro-wt-XXXXXX)
	rmdir "$dir"
	git -C "$repo" worktree add --detach --quiet "$dir" "$rev"
	worktrees+=("$dir")
}

# run NAME REV: benchmarks REV into $out/NAME.txt.
run() {
	checkout "$2"
	echo "micro.sh: $1 = $2 ($(git -C "$dir" rev-parse --short HEAD)$([ "$2" = . ] && echo ', working tree')): go test -bench '$bench' -count $count" >&2
	(cd "$dir" && go test -run '^$' -bench "$bench" -benchtime "$benchtime" -count "$count" -timeout 2h "${pkgs[@]}") >"$out/$1.txt"
}

run old "$base"
run new "$head"
echo "micro.sh: load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores; raw results in $out" >&2
label() { if [ "$1" = . ]; then echo "working-tree"; else echo "$1"; fi; }
go run golang.org/x/perf/cmd/benchstat@latest "$(label "$base")=$out/old.txt" "$(label "$head")=$out/new.txt"
