#!/bin/sh
# Install triad's build, test and benchmark dependencies on Debian 12 (bookworm).
#
#   docker/install-deps.sh           install whatever in docker/packages.txt is missing
#   docker/install-deps.sh --check   only report: exit 0 if all are installed, 1 otherwise
#   docker/install-deps.sh [--check] LIST...   the same for other lists, e.g.
#                                    docker/packages-docker.txt (the docker suite's)
#
# A package list has one Debian package per line ('#' comments allowed).
# Installing needs root (or sudo). "apt-get update" runs only if a first install attempt fails,
# which is what happens on a fresh image whose package lists are empty.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
check=0
if [ "${1:-}" = "--check" ]; then
    check=1
    shift
fi
[ $# -gt 0 ] || set -- "$here/packages.txt"

packages=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$@" | grep -v '^$')

missing=""
for p in $packages; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *" installed") ;;
        *) missing="$missing $p" ;;
    esac
done

if [ -z "$missing" ]; then
    [ "$check" = 1 ] || echo "install-deps: all $(echo "$packages" | wc -w) packages installed"
    exit 0
fi
if [ "$check" = 1 ]; then
    echo "install-deps: missing:$missing"
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "install-deps: missing:$missing; run this script as root to install them" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing$missing"
# shellcheck disable=SC2086  # word splitting of the package list is intended
if ! $sudo apt-get install -y $missing; then
    echo "install-deps: install failed; running apt-get update and retrying"
    $sudo apt-get update
    $sudo apt-get install -y $missing
fi
