#!/usr/bin/env bash
# Builds every fuzz target of fuzz/ once (cargo-fuzz, libFuzzer) and runs each
# for SECONDS_PER_TARGET seconds (default 20), seeded from libvirt's test data
# in ../shared/conformance/libvirt-10.7 when it is there. Fails when a target
# crashes, names the target and the input that crashed it.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]
#
# cargo-fuzz needs nightly features: the stable toolchain is used with
# RUSTC_BOOTSTRAP=1. Seeds and the growing corpus live under the target
# directory ($CARGO_TARGET_DIR/fuzz-run), never in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-20}
case $secs in
    '' | *[!0-9]*)
        echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2
        exit 2
        ;;
esac

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# One optimised build of every target (debug assertions on); the binaries are
# then run directly, so nothing is rebuilt per target.
cargo fuzz build -O
bin_dir=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release
mapfile -t targets < <(cargo fuzz list)

work=$CARGO_TARGET_DIR/fuzz-run
conformance=${CPUMODEL_FUZZ_SEEDS:-../shared/conformance/libvirt-10.7}

# seed TARGET FILE...: copies seed files into the target's seed directory.
seed() {
    local t=$1
    shift
    mkdir -p "$work/seeds/$t"
    [ $# -eq 0 ] || cp -- "$@" "$work/seeds/$t/"
}

# map_seed NAME MODEL...: a CPU map as the cpu_map target reads it: index.xml,
# then each file after a line '%%%% FILE'.
map_seed() {
    local name=$1 m
    shift
    {
        echo "<cpus>"
        echo "  <arch name='x86'>"
        echo "    <include filename='x86_vendors.xml'/>"
        echo "    <include filename='x86_features.xml'/>"
        for m in "$@"; do echo "    <include filename='x86_$m.xml'/>"; done
        echo "  </arch>"
        echo "</cpus>"
        for f in vendors features "$@"; do
            echo "%%%% x86_$f.xml"
            cat "$conformance/cpu_map/x86_$f.xml"
        done
    } >"$work/seeds/cpu_map/$name"
}

rm -rf "$work/seeds" "$work/crashes"
for t in "${targets[@]}"; do
    seed "$t"
    mkdir -p "$work/corpus/$t" "$work/crashes/$t"
done
if [ -d "$conformance/cputestdata" ]; then
    data=$conformance/cputestdata
    mapfile -t dumps < <(grep -l '<cpudata' "$data"/*.xml)
    seed cpudata "${dumps[@]}"
    seed cpu "$data"/*.xml
    seed xml_tree "$data"/*.xml "$conformance"/cpu_map/*.xml
    seed qmp "$data"/*.json
    map_seed vendors-features
    map_seed westmere Nehalem Westmere
    map_seed epyc EPYC EPYC-Rome EPYC-Milan
else
    echo "fuzz: no $conformance: running without libvirt seeds"
fi
printf '%s\n' '[libvirt]' 'virt_type = kvm' 'cpu_mode = custom' \
    'cpu_models = Nehalem, Westmere, SandyBridge' 'cpu_model_extra_flags = -vmx, PCID, +ssbd' \
    '%%%% policy' 'vcpus=8' 'hw:cpu_max_sockets=2' 'image hw_cpu_threads=2' \
    'require=avx' 'trait:HW_CPU_X86_AVX2=required' >"$work/seeds/policy/custom"
printf '%s\n' '[libvirt]' 'cpu_mode = host-model' '%%%% policy' 'host=Skylake-Client-IBRS' \
    'flag=-vmx' 'vcpus=12' 'hw:cpu_sockets=2' 'hw:cpu_threads=2' >"$work/seeds/policy/host-model"
printf '%s\n' '[libvirt]' 'cpu_mode = host-passthrough' '%%%% policy' 'host=EPYC-Rome' \
    'flag=+svm' 'vcpus=6' 'image hw_cpu_max_sockets=1' >"$work/seeds/policy/passthrough"

failed=()
for t in "${targets[@]}"; do
    log=$work/$t.log
    start=$SECONDS
    if "$bin_dir/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/crashes/$t/" \
        "$work/corpus/$t" "$work/seeds/$t" >"$log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
        echo "fuzz: $t: ok, $runs runs in $((SECONDS - start)) s"
    else
        failed+=("$t")
        echo "fuzz: $t: FAILED (log: $log)"
        grep -E '^(==[0-9]+==|thread .* panicked|SUMMARY|artifact_prefix)' "$log" | head -n 5 || true
        tail -n 30 "$log" | sed -n '/panicked/,/^$/p' | head -n 10
        for crash in "$work/crashes/$t"/*; do
            [ -e "$crash" ] || continue
            echo "fuzz: $t: crashing input: $crash"
            echo "fuzz:   reproduce: $bin_dir/$t $crash"
        done
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failed targets: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran $secs s each without a crash"
