#!/usr/bin/env bash
# System packages that PyPI does not provide: Icarus Verilog (simulator) and liblz4
# (Verilator's FST waveforms). Installed with apt-get when we are root, else we say what to run.
set -euo pipefail
need=()
command -v iverilog >/dev/null 2>&1 || need+=(iverilog)
[ -e /usr/include/lz4.h ] || need+=(liblz4-dev)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing ${need[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
else
    echo "setup: missing system packages; run: sudo apt-get install ${need[*]}" >&2
    exit 1
fi
