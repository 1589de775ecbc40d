# Shared by scripts/main and scripts/test. Source it; do not run it.
# shellcheck shell=bash
set -euo pipefail

NC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NC_CACHE=${NC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/netfilter.conntrack}
# A per-checkout scratch area, so that several checkouts can test side by side.
NC_WORK=${NC_WORK:-/tmp/netfilter.conntrack-$(printf '%s' "$NC_ROOT" | sha256sum | cut -c1-12)}

log() { printf '\n==> %s\n' "$*" >&2; }

nc_apt() {
    # apt-get only when something is missing: a warm machine skips the network.
    local missing=() pkg
    while read -r pkg; do
        [[ -z $pkg || $pkg == \#* ]] && continue
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done < "$NC_ROOT/scripts/apt-packages.txt"
    if ((${#missing[@]})); then
        log "apt-get install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # With recommends: the set this project is tested with (podman and chromium lean on them).
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

nc_venv() {
    # $1: requirements file. The venv is rebuilt when the pins change.
    local kind=${1:-controller} req stamp
    req=$NC_ROOT/requirements/$kind.txt
    NC_VENV=${NC_VENV:-$NC_CACHE/venv-$kind}
    stamp=$(cat "$NC_ROOT"/requirements/*.txt | sha256sum | cut -c1-16)
    if [[ ! -x $NC_VENV/bin/python || $(cat "$NC_VENV/.stamp" 2>/dev/null) != "$stamp" ]]; then
        log "creating venv $NC_VENV from $req"
        rm -rf "$NC_VENV"
        mkdir -p "$(dirname "$NC_VENV")"
        python3 -m venv "$NC_VENV"
        "$NC_VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
        echo "$stamp" > "$NC_VENV/.stamp"
    fi
    export PATH=$NC_VENV/bin:$PATH
    export VIRTUAL_ENV=$NC_VENV
    # Under pyenv, ansible otherwise picks a python without our venv.
    export ANSIBLE_PYTHON_INTERPRETER=$NC_VENV/bin/python
}

nc_build_install() {
    # Build the collection tarball from this checkout and install it into $NC_WORK/collections.
    local dist=$NC_WORK/dist
    rm -rf "$dist" "$NC_WORK/collections/ansible_collections/netfilter/conntrack"
    mkdir -p "$dist" "$NC_WORK/collections"
    ansible-galaxy collection build "$NC_ROOT" --output-path "$dist" --force >/dev/null
    ansible-galaxy collection install --offline --force -p "$NC_WORK/collections" "$dist"/netfilter-conntrack-*.tar.gz >/dev/null
    export ANSIBLE_COLLECTIONS_PATH=$NC_WORK/collections
}

nc_link_collection() {
    # For fast test iterations: the checkout itself, seen at an ansible_collections path.
    local dir=$NC_WORK/linked/ansible_collections/netfilter
    mkdir -p "$dir"
    ln -sfn "$NC_ROOT" "$dir/conntrack"
    export ANSIBLE_COLLECTIONS_PATH=$NC_WORK/linked
}

nc_copy_collection() {
    # ansible-test needs a real directory ending in ansible_collections/netfilter/conntrack.
    local dest=$NC_WORK/copy/ansible_collections/netfilter/conntrack
    rm -rf "$dest"
    mkdir -p "$dest"
    (cd "$NC_ROOT" && git ls-files -co --exclude-standard -z | tar -c --null -T - --ignore-failed-read 2>/dev/null) | tar -x -C "$dest"
    printf '%s\n' "$dest"
}
