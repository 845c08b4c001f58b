# shellcheck shell=bash
# Sourced by localstack/build-image.sh and deploy/build-base.sh: what the host's apt
# already knows about reaching Debian, so a debootstrap on this machine uses the same
# mirror and proxy (often the only ones reachable: a snapshot mirror, a caching proxy).

# The first URI of the host's apt sources that serve suite $1 (deb822 or one-line format).
host_mirror() {
    local suite=$1 f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        awk -v suite="$suite" '
            /^[[:space:]]*$/ { if (uri != "" && ok) { print uri; exit } uri = ""; ok = 0; next }
            tolower($1) == "uris:" { uri = $2 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
            END { if (uri != "" && ok) print uri }
        ' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        sed -E -n 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+'"$suite"'[[:space:]].*/\2/p' "$f"
    done
}

# apt may be configured with a proxy that plain http clients (debootstrap's wget, pip)
# only see through the environment: export it as http_proxy unless one is set.
export_apt_proxy() {
    local apt_proxy
    [[ -z ${http_proxy:-} ]] || return 0
    apt_proxy=$(apt-config shell P Acquire::http::Proxy 2>/dev/null | sed -n "s/^P='\(.*\)'$/\1/p")
    if [[ -n $apt_proxy && $apt_proxy != DIRECT ]]; then
        export http_proxy=$apt_proxy
    fi
}
