#!/usr/bin/env bash
# The guest lab: cpumodel inside real guests, on a standard /dev/kvm.
#
#   scripts/lab.sh            (CPUMODEL=path/to/cpumodel to pick the binary)
#
# This machine's own /dev/kvm may be unusable or non-standard, but QEMU's
# TCG emulates an AMD CPU with SVM, so a Linux guest under
# `-cpu EPYC-Rome,+svm` can load kvm_amd and has a standard /dev/kvm. The
# lab builds an initramfs from Debian packages (the kernel of
# linux-image-amd64, busybox-static) plus the freshly built cpumodel and its
# shared libraries, all under target/lab (nothing is committed), then:
#
# 1. boots one guest under -cpu EPYC-Rome,+svm, loads kvm_amd and runs
#    `cpumodel verify` for every model with a QEMU definition that this QEMU
#    knows, and for several topologies: each must exit 0;
# 2. boots one guest per -cpu model of a handful, runs `cpumodel dump` and
#    `cpumodel host --raw` inside and captures its /proc/cpuinfo, and checks
#    on this side that decoding the guest's dump (the features QEMU really
#    gave, TCG's filtering included) gives the CPU `host --raw` printed in
#    the guest, that the guest saw the -cpu model's signature, and that
#    decoding the guest's /proc/cpuinfo gives the dump's model, or names it
#    as what the CPU would be with the features cpuinfo cannot show.
#
# The last line is `lab: N passed, M failed`; exit 0 when M is 0.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${LAB_DIR:-$repo/target/lab}"
qemu="${QEMU:-qemu-system-x86_64}"
mkdir -p "$work"
cd "$work"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
finish() {
    echo "lab: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# The cpumodel binary: $CPUMODEL, else a fresh debug build.
if [ -z "${CPUMODEL:-}" ]; then
    (cd "$repo" && cargo build --quiet --locked -p cpumodel)
    CPUMODEL="${CARGO_TARGET_DIR:-$repo/target}/debug/cpumodel"
fi
cpumodel="$CPUMODEL"

# --- Debian packages: the kernel and busybox --------------------------------
need() { command -v "$1" >/dev/null 2>&1; }
for tool in "$qemu" apt-get dpkg-deb cpio gzip; do
    if ! need "$tool"; then
        fail "$tool is not installed"
        finish
    fi
done
kpkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
if [ -z "$kpkg" ]; then
    fail "apt-cache knows no linux-image-amd64 (run apt-get update)"
    finish
fi
mkdir -p debs
for pkg in "$kpkg" busybox-static; do
    if ! ls debs/"${pkg}"_*.deb >/dev/null 2>&1; then
        # apt warns that it downloads as root when _apt cannot write here.
        if ! (cd debs && apt-get download "$pkg" >/dev/null 2>../apt.log); then
            cat apt.log >&2
            fail "apt-get download $pkg"
            finish
        fi
    fi
done
if [ ! -d kernel ]; then
    rm -rf kernel.tmp && mkdir kernel.tmp
    dpkg-deb -x debs/"${kpkg}"_*.deb kernel.tmp
    mv kernel.tmp kernel
fi
if [ ! -d busybox ]; then
    rm -rf busybox.tmp && mkdir busybox.tmp
    dpkg-deb -x debs/busybox-static_*.deb busybox.tmp
    mv busybox.tmp busybox
fi
vmlinuz="$(ls kernel/boot/vmlinuz-* | head -1)"
kver="${vmlinuz##*/vmlinuz-}"
moddir="kernel/lib/modules/$kver/kernel"

# --- The initramfs ----------------------------------------------------------
# Copies module $1 into $2/lib/modules after the modules it depends on (read
# from its .modinfo: the package has no modules.dep) and appends it to the
# load order.
load_module() {
    local name="$1" root="$2" file dep
    if grep -qxF -- "$name" "$root/lib/modules/order"; then
        return
    fi
    file="$(find "$moddir" \( -name "$name.ko*" -o -name "${name//_/-}.ko*" -o -name "${name//-/_}.ko*" \) | head -1)"
    if [ -z "$file" ]; then
        echo "lab: no module $name in $kpkg" >&2
        return
    fi
    local plain="$root/lib/modules/$name.ko"
    case "$file" in
        *.xz) xz -dc "$file" > "$plain" ;;
        *.zst) zstd -qdc "$file" > "$plain" ;;
        *) cp "$file" "$plain" ;;
    esac
    for dep in $(grep -a -o 'depends=[^[:cntrl:]]*' "$plain" | head -1 | sed 's/^depends=//; s/,/ /g'); do
        load_module "$dep" "$root"
    done
    echo "$name" >> "$root/lib/modules/order"
}

# $1: the directory; the guest's job is /job in it.
build_root() {
    local root="$1"
    rm -rf "$root"
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
    cp busybox/bin/busybox "$root/bin/busybox"
    for applet in sh mount insmod mkdir cat echo poweroff sleep ls; do
        ln -s busybox "$root/bin/$applet"
    done
    cp "$cpumodel" "$root/bin/cpumodel"
    # The binary's shared libraries, at the paths it asks for.
    ldd "$cpumodel" | grep -o '/[^ ]*' | while read -r lib; do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
    # kvm_amd and the modules it needs, in load order (/lib/modules/order).
    : > "$root/lib/modules/order"
    load_module kvm-amd "$root"
    cat > "$root/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo
echo "@@lab-begin"
. /job
echo "@@lab-end"
poweroff -f
EOF
    chmod +x "$root/init"
}

# $1: the root, $2: -cpu; prints the guest's output between the markers.
boot() {
    local root="$1" cpu="$2"
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$root.cpio.gz"
    timeout --foreground 600 "$qemu" -accel tcg -machine q35 -cpu "$cpu" -smp 1 -m 1024 -net none \
        -kernel "$vmlinuz" -initrd "$root.cpio.gz" \
        -append "console=ttyS0 quiet panic=-1" \
        -nographic -no-reboot </dev/null 2>/dev/null |
        tr -d '\r' | sed -n '/@@lab-begin$/,/^@@lab-end$/p' | sed '1d;$d'
}

# --- 1. cpumodel verify for every model, on a standard /dev/kvm -------------
known="$("$qemu" -cpu help | awk '$1 == "x86" { print $2 }')"
models=()
while read -r m; do
    if grep -qxF -- "$m" <<<"$known" && "$cpumodel" cpuid --model "$m" >/dev/null 2>&1; then
        models+=("$m")
    fi
done < <("$cpumodel" models | awk 'NR > 1 { print $1 }')
topologies=(
    ""
    "--sockets 2 --cores 2 --threads 2"
    "--sockets 1 --cores 3 --threads 2"
    "--sockets 2 --dies 2 --cores 2 --threads 1"
    "--vcpus 16"
)
{
    echo 'for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko; done'
    echo '[ -c /dev/kvm ] && echo "@kvm ok" || echo "@kvm failed"'
    for m in "${models[@]}"; do
        echo "cpumodel verify --model $m >/tmp/out 2>&1; echo \"@verify $m|: exit \$?\"; [ -s /tmp/out ] && grep -E '^(MISMATCH|cpumodel:)' /tmp/out | head -3"
    done
    for m in Westmere Skylake-Server-v4 EPYC-Rome Cascadelake-Server EPYC; do
        for t in "${topologies[@]:1}"; do
            echo "cpumodel verify --model $m $t >/tmp/out 2>&1; echo \"@verify $m|$t: exit \$?\"; [ -s /tmp/out ] && grep -E '^(MISMATCH|cpumodel:)' /tmp/out | head -3"
        done
    done
} > job.verify
build_root root-verify
cp job.verify root-verify/job
echo "lab: booting -cpu EPYC-Rome,+svm for ${#models[@]} models and $(( (${#topologies[@]} - 1) * 5 )) topology runs"
start=$(date +%s)
boot root-verify EPYC-Rome,+svm > verify.out
echo "lab: verify guest done in $(( $(date +%s) - start )) s"
if grep -q '^@kvm ok' verify.out; then
    pass "kvm_amd loaded in the guest: /dev/kvm"
else
    fail "kvm_amd did not load in the -cpu EPYC-Rome,+svm guest"
fi
runs=0
while IFS= read -r line; do
    case "$line" in
        "@verify "*)
            runs=$((runs + 1))
            what="${line#@verify }"
            what="${what%%: exit *}"
            model="${what%%|*}"
            topo="${what#*|}"
            code="${line##*: exit }"
            if [ "$code" = 0 ]; then
                pass "verify $model${topo:+ $topo}"
            else
                fail "verify $model${topo:+ $topo}: exit $code"
            fi
            ;;
        MISMATCH*|cpumodel:*) echo "    $line" ;;
    esac
done < verify.out
expected=$(( ${#models[@]} + (${#topologies[@]} - 1) * 5 ))
if [ "$runs" -ne "$expected" ]; then
    fail "the verify guest reported $runs of $expected runs"
fi

# --- 2. dump and host --raw in guests of a handful of -cpu models ----------
# $1: the -cpu model, $2: decode's extra flag (--guest or nothing). Compares
# the decode of the guest's /proc/cpuinfo with the decode of its dump.
check_cpuinfo() {
    local cpu="$1" kind="${2:-}" what dump_model linux_cpu linux_model would_be
    what="decode${kind:+ $kind} of the guest's /proc/cpuinfo"
    dump_model="$("$cpumodel" decode $kind "dump-$cpu.xml" 2>&1 | grep -o '<model[^>]*>[^<]*</model>' | head -1 | sed 's/<[^>]*>//g')"
    if ! linux_cpu="$("$cpumodel" decode $kind "cpuinfo-$cpu.txt" 2>&1)"; then
        fail "-cpu $cpu: $what: $linux_cpu"
        return
    fi
    linux_model="$(grep -o '<model[^>]*>[^<]*</model>' <<<"$linux_cpu" | head -1 | sed 's/<[^>]*>//g')"
    would_be="$(sed -n 's/^<!-- with every undetermined feature present it would be \([^,]*\), which needs \(.*\) -->$/\1: \2/p' <<<"$linux_cpu")"
    if [ -n "$dump_model" ] && [ "$linux_model" = "$dump_model" ]; then
        pass "-cpu $cpu: $what = decode of its dump ($dump_model)"
    elif [ -n "$dump_model" ] && [ "${would_be%%:*}" = "$dump_model" ]; then
        pass "-cpu $cpu: $what is $linux_model; with what it cannot show, $would_be (the dump's)"
    else
        fail "-cpu $cpu: $what is $linux_model (${would_be:-no other model named}), of its dump $dump_model"
    fi
}

for cpu in Westmere Skylake-Client-IBRS Cascadelake-Server EPYC-Rome Opteron_G3; do
    cat > job.dump <<'EOF'
echo "@@dump"
cpumodel dump
echo "@@host"
cpumodel host --raw
echo "@@cpuinfo"
cat /proc/cpuinfo
echo "@@done"
EOF
    build_root "root-$cpu"
    cp job.dump "root-$cpu/job"
    boot "root-$cpu" "$cpu" > "guest-$cpu.out"
    sed -n '/^@@dump$/,/^@@host$/p' "guest-$cpu.out" | sed '1d;$d' > "dump-$cpu.xml"
    sed -n '/^@@host$/,/^@@cpuinfo$/p' "guest-$cpu.out" | sed '1d;$d' > "host-$cpu.txt"
    sed -n '/^@@cpuinfo$/,/^@@done$/p' "guest-$cpu.out" | sed '1d;$d' > "cpuinfo-$cpu.txt"
    if [ ! -s "dump-$cpu.xml" ] || [ ! -s "host-$cpu.txt" ]; then
        fail "-cpu $cpu: the guest printed no dump or host"
        continue
    fi
    # The expected answer comes from the features the guest saw: the
    # guest's own dump, decoded here.
    expected_cpu="$("$cpumodel" decode "dump-$cpu.xml" 2>&1)" || true
    # host --raw prints a first line naming its source, then the same
    # host <cpu> that decode prints, then the guest <cpu>.
    if grep -qF -- "$expected_cpu" "host-$cpu.txt"; then
        pass "-cpu $cpu: host --raw in the guest = decode of the guest's dump ($(grep -o '<model[^<]*</model>' <<<"$expected_cpu" | head -1))"
    else
        fail "-cpu $cpu: host --raw in the guest differs from the decode of its dump"
        diff <(echo "$expected_cpu") "host-$cpu.txt" | head -20 || true
    fi
    # The guest's /proc/cpuinfo decodes to the dump's model, as a host and
    # as a guest CPU, or says that the dump's model is what it would be with
    # the features it cannot show present (and which they are).
    check_cpuinfo "$cpu"
    check_cpuinfo "$cpu" --guest
    # The guest's signature is the -cpu model's (QEMU's definition).
    want="$("$cpumodel" cpuid --model "$cpu" | awk '$1 == "0x00000001" { print $3 }')"
    got="$(grep -o "eax_in='0x00000001' ecx_in='0x00000000' eax='0x[0-9a-f]*'" "dump-$cpu.xml" | sed "s/.* eax='//; s/'//")"
    if [ "$want" = "$got" ]; then
        pass "-cpu $cpu: signature $got as cpumodel cpuid says"
    else
        fail "-cpu $cpu: signature $got, cpumodel cpuid says $want"
    fi
done

finish
