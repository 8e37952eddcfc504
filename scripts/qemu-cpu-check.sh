#!/usr/bin/env bash
# Check a guest CPU policy against a real QEMU.
#
#   scripts/qemu-cpu-check.sh [cpumodel guest arguments...]
#   scripts/qemu-cpu-check.sh --mode custom --model Westmere --flag +avx --flag=-vmx
#
# Generates the -cpu argument with `cpumodel guest --format qemu`, starts
# qemu-system-x86_64 paused under TCG with QMP on stdio, reads every feature
# named in the argument back from the vCPU object (qom-get on the qom-path of
# query-cpus-fast) and prints one line per feature:
#
#   ok                 the property reads back as asked
#   ok (TCG lacks it)  asked on, but TCG cannot emulate it: QEMU warned that
#                      TCG does not support it, it is absent from TCG's `max`
#                      CPU, and it reads back off
#   MISMATCH           anything else
#
# Exit status: 0 all features match, 1 a mismatch, 2 cpumodel or QEMU refused
# the policy, 77 skipped (no qemu-system-x86_64, or a model it does not know).
#
# Environment: CPUMODEL (default: target/release/cpumodel if built, else
# `cargo run --release`), QEMU (default: qemu-system-x86_64).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
qemu="${QEMU:-qemu-system-x86_64}"

if ! command -v "$qemu" >/dev/null 2>&1; then
    echo "skipped: $qemu not installed"
    exit 77
fi

cpumodel() {
    if [[ -n "${CPUMODEL:-}" ]]; then
        "$CPUMODEL" "$@"
    elif [[ -x "$repo/target/release/cpumodel" ]]; then
        "$repo/target/release/cpumodel" "$@"
    else
        cargo run --quiet --release --manifest-path "$repo/Cargo.toml" -p cpumodel -- "$@"
    fi
}

arg="$(cpumodel guest "$@" --format qemu)" || exit 2
echo "-cpu $arg"

model="${arg%%,*}"
if ! "$qemu" -cpu help | awk '$1 == "x86" { print $2 }' | grep -qxF -- "$model"; then
    echo "skipped: this QEMU has no CPU model $model"
    exit 77
fi

tmp="$(mktemp -d)"
cleanup() {
    if [[ -n "${QEMU_PID:-}" ]]; then
        kill "$QEMU_PID" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

coproc QEMU_PROC {
    exec "$qemu" -no-user-config -machine pc,accel=tcg -nodefaults -nographic -S \
        -cpu "$arg" -qmp stdio 2>"$tmp/stderr"
}
QEMU_PID="$QEMU_PROC_PID"
exec {to_qemu}>&"${QEMU_PROC[1]}" {from_qemu}<&"${QEMU_PROC[0]}"

# One QMP command; prints its reply line (events are skipped).
qmp() {
    local line
    printf '%s\n' "$1" >&"$to_qemu"
    while IFS= read -r -t 30 line <&"$from_qemu"; do
        case "$line" in
            *'"return"'* | *'"error"'*)
                printf '%s\n' "$line"
                return 0
                ;;
        esac
    done
    echo "QEMU stopped answering during $1" >&2
    return 1
}

# QEMU greets before it creates the CPU, so a refused -cpu shows as QEMU
# exiting before it answers qmp_capabilities.
if ! IFS= read -r -t 30 greeting <&"$from_qemu" || [[ "$greeting" != *'"QMP"'* ]] ||
    ! qmp '{"execute": "qmp_capabilities"}' >/dev/null 2>&1; then
    wait "$QEMU_PID" 2>/dev/null || true
    QEMU_PID=""
    echo "QEMU refused -cpu $arg:" >&2
    cat "$tmp/stderr" >&2
    exit 2
fi

cpus="$(qmp '{"execute": "query-cpus-fast"}')"
path="$(sed -n 's/.*"qom-path": "\([^"]*\)".*/\1/p' <<<"$cpus")"
max="$(qmp '{"execute": "query-cpu-model-expansion", "arguments": {"type": "full", "model": {"name": "max"}}}')"

features=()
IFS=',' read -r -a parts <<<"$arg"
for part in "${parts[@]:1}"; do
    [[ "$part" == migratable=* ]] && continue
    features+=("$part")
done

results=()
for part in "${features[@]}"; do
    name="${part%%=*}"
    asked="${part#*=}"
    reply="$(qmp "{\"execute\": \"qom-get\", \"arguments\": {\"path\": \"$path\", \"property\": \"$name\"}}")"
    case "$reply" in
        *'"return": true'*) got=on ;;
        *'"return": false'*) got=off ;;
        *) got="?" ;;
    esac
    results+=("$name $asked $got")
done

qmp '{"execute": "quit"}' >/dev/null || true
wait "$QEMU_PID" 2>/dev/null || true
QEMU_PID=""

status=0
printf '%-30s %-6s %-6s %s\n' FEATURE ASKED QEMU RESULT
for r in "${results[@]}"; do
    read -r name asked got <<<"$r"
    if [[ "$asked" == "$got" ]]; then
        verdict=ok
    elif [[ "$asked" == on && "$got" == off ]] &&
        ! grep -qF "\"$name\": true" <<<"$max" &&
        grep -F "TCG doesn't support requested feature" "$tmp/stderr" | grep -qF ".$name [bit"; then
        verdict="ok (TCG lacks it)"
    else
        verdict=MISMATCH
        status=1
    fi
    printf '%-30s %-6s %-6s %s\n' "$name" "$asked" "$got" "$verdict"
done

if [[ $status -ne 0 ]]; then
    echo "QEMU's messages:" >&2
    cat "$tmp/stderr" >&2
fi
exit $status
