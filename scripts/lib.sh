# Shared by scripts/main and scripts/test. Source it; do not run it.
# shellcheck shell=bash
set -euo pipefail

NC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NC_CACHE=${NC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/netfilter.conntrack}
# A per-checkout scratch area, so that several checkouts can test side by side.
NC_WORK=${NC_WORK:-/tmp/netfilter.conntrack-$(printf '%s' "$NC_ROOT" | sha256sum | cut -c1-12)}

log() { printf '\n==> %s\n' "$*" >&2; }

nc_apt_packages() {
    # The package names of scripts/apt/$1.txt: the first word of each line.
    local line
    while read -r line; do
        line=${line%%#*}
        [[ -n ${line// /} ]] && printf '%s\n' "${line%% *}"
    done < "$NC_ROOT/scripts/apt/$1.txt"
}

nc_apt() {
    # $@: lists under scripts/apt/ (main, test, vm). apt-get only for what is missing, so a
    # warm machine skips the network. The main job's list goes in without recommends (they
    # pull daemons in); the test and VM lists keep them, the set this project is tested with.
    local list missing pkg flags
    for list in "$@"; do
        missing=()
        while read -r pkg; do
            dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
        done < <(nc_apt_packages "$list")
        ((${#missing[@]})) || continue
        flags=()
        [[ $list != main ]] || flags=(--no-install-recommends)
        log "apt-get install ${flags[*]} ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # Several checkouts may set up at once: wait for another apt's lock instead of failing.
        apt-get -o DPkg::Lock::Timeout=600 update -qq
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${flags[@]}" "${missing[@]}" >/dev/null
    done
}

nc_promtool() {
    # promtool without a Prometheus server: Debian ships it only inside the prometheus
    # package, whose install starts the server (and, with recommends, node-exporter). Take
    # the one binary out of the .deb instead (no maintainer scripts run) into $NC_CACHE/bin.
    command -v promtool >/dev/null && return 0
    local bin=$NC_CACHE/bin tmp
    if [[ ! -x $bin/promtool ]]; then
        log "promtool: unpacking it from the prometheus .deb into $bin (the package itself would start a server)"
        tmp=$(mktemp -d)
        (cd "$tmp" && apt-get -o APT::Sandbox::User=root download -qq prometheus >/dev/null) || { rm -rf "$tmp"; return 1; }
        mkdir -p "$bin"
        dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
        mv "$tmp/usr/bin/promtool" "$bin/promtool"
        rm -rf "$tmp"
    fi
    export PATH=$PATH:$bin
}

nc_requirements_closure() {
    # $1 and every file it pulls in with -r, so that a venv is keyed on what it installs.
    local file=$1 dir line
    [[ -e $file ]] || return 0
    printf '%s\n' "$file"
    dir=$(dirname "$file")
    while read -r line; do
        if [[ $line == "-r "* ]]; then nc_requirements_closure "$dir/${line#-r }"; fi
    done < "$file"
}

nc_venv() {
    # $1: requirements file under requirements/ without .txt (controller, test,
    # matrix/ansible-core-2.16). The venv is rebuilt when the pins it installs change:
    # a new matrix file builds only its own venv, not the shared test venv.
    local kind=${1:-controller} req stamp
    req=$NC_ROOT/requirements/$kind.txt
    NC_VENV=${NC_VENV:-$NC_CACHE/venv-${kind//\//-}}
    stamp=$(nc_requirements_closure "$req" | xargs cat | sha256sum | cut -c1-16)
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
    # Under a lock: two scripts/test runs of one checkout (a stage beside the VM stage) share
    # $NC_WORK, and one's rm -rf would pull the tarball from under the other's install.
    local dist=$NC_WORK/dist
    mkdir -p "$NC_WORK"
    (
        flock 9
        rm -rf "$dist" "$NC_WORK/collections/ansible_collections/netfilter/conntrack"
        mkdir -p "$dist" "$NC_WORK/collections"
        ansible-galaxy collection build "$NC_ROOT" --output-path "$dist" --force >/dev/null
        ansible-galaxy collection install --offline --force -p "$NC_WORK/collections" "$dist"/netfilter-conntrack-*.tar.gz >/dev/null
    ) 9>"$NC_WORK/build.lock"
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

NC_MANAGED_PYTHONS=(3.8 3.9 3.10 3.11 3.12 3.13)
nc_managed_pythons() {
    # Put python3.8 ... python3.13 on PATH for ansible-test's module tests: pyenv's
    # builds where the system has none (pyenv's shims name them but refuse to run them
    # outside `pyenv shell`). Fails when one is missing: the managed-node versions are a
    # claim the sanity stages test.
    local v bin dir=$NC_WORK/pythons missing=()
    rm -rf "$dir"
    mkdir -p "$dir"
    for v in "${NC_MANAGED_PYTHONS[@]}"; do
        "python$v" -c '' 2>/dev/null && continue
        bin=$(compgen -G "${PYENV_ROOT:-$HOME/.pyenv}/versions/$v.*/bin/python$v" | sort -V | tail -1 || true)
        if [[ -n $bin ]]; then ln -sfn "$bin" "$dir/python$v"; else missing+=("$v"); fi
    done
    ((${#missing[@]} == 0)) || { echo "no interpreter for Python ${missing[*]} (install them, e.g. with pyenv)" >&2; return 1; }
    export PATH=$dir:$PATH
}
