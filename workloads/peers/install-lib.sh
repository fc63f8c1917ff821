# install-lib.sh - sourced by the peers' install scripts (bash).
#
# Conventions every peer's install follows: progress goes to stderr, the versions the benchmark
# report names go to stdout; a peer that cannot be installed says why on stderr and exits 1, so
# that callers report it as skipped with that reason. Packages come from Debian's archive
# (apt-get) and the npm registry only.

# Exits 1 after saying why this peer cannot be installed.
peer_fail() {
    echo "$PEER peer: cannot install: $*" >&2
    exit 1
}

# Installs those of the given Debian packages that are missing. `apt-get update` runs only if
# the install fails, once (the package lists may be absent or stale on a fresh machine).
apt_ensure() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || peer_fail "needs ${missing[*]} and there is no apt-get"
    [ "$(id -u)" = 0 ] || peer_fail "needs root to apt-get install ${missing[*]}"
    echo "$PEER peer: apt-get install ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
        { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; } ||
        peer_fail "apt-get install ${missing[*]} failed"
}

# Prints how long the install took and what the given paths occupy (stderr).
peer_done() {
    local start=$1
    shift
    echo "$PEER peer: ready in $((SECONDS - start)) s; $(du -sch "$@" 2>/dev/null | tail -1 | cut -f1) on disk in $*" >&2
}
