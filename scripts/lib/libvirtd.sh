# Shared by the scripts that use a real libvirt as a peer: installing
# Debian's packages, creating what libvirtd's QEMU driver expects, and
# starting `libvirtd -d` without systemd. Source it; it defines functions only.

# Runs a command as root (directly when already root).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

# ensure_packages COMMAND:PACKAGE... installs each PACKAGE whose COMMAND is
# missing (libvirtd is also looked for in /usr/sbin).
ensure_packages() {
    local missing=() pair cmd pkg
    for pair in "$@"; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "Installing ${missing[*]}" >&2
        as_root apt-get update
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "${missing[@]}"
    fi
    PATH=$PATH:/usr/sbin:/sbin
}

# ensure_libvirtd URI creates the groups, user and log directory libvirtd's
# QEMU driver expects (package scripts normally do; containers may lack
# them), then uses the libvirtd answering at URI or starts `libvirtd -d`
# and waits for it. libvirtd is left running: other jobs may use it.
ensure_libvirtd() {
    local uri=$1
    getent group kvm >/dev/null || as_root groupadd --system kvm
    getent group libvirt-qemu >/dev/null || as_root groupadd --system libvirt-qemu
    getent passwd libvirt-qemu >/dev/null ||
        as_root useradd --system --gid libvirt-qemu --groups kvm \
            --home-dir /var/lib/libvirt --shell /usr/sbin/nologin libvirt-qemu
    as_root mkdir -p /var/log/libvirt
    if ! virsh -c "$uri" version >/dev/null 2>&1; then
        echo "Starting libvirtd -d" >&2
        # Another job may start one at the same moment; then this one exits
        # (the pid file is taken) and the wait below finds the other.
        as_root libvirtd -d || true
        for _ in $(seq 1 90); do
            virsh -c "$uri" version >/dev/null 2>&1 && break
            sleep 1
        done
    fi
    virsh -c "$uri" version
}
