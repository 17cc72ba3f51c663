#!/usr/bin/env bash
# Stop the one-node cluster started by start_local_cluster.sh: slurmd, slurmctld, then munged.
#
# Jobs still running are killed with the daemons; queued jobs stay in the saved state and run when the
# cluster is started again. Configuration, keys and logs are kept. Safe to run when nothing is running.
# Daemons are found by their pid files, never by name, so nothing else on the machine is touched.
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "stop_local_cluster: must run as root; try: sudo $0" >&2; exit 1; }

stop() {
    local daemon=$1 pidfile=$2 pid
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { echo "stopped $daemon"; return 0; }; sleep 0.1; done
    echo "stop_local_cluster: $daemon (pid $pid) did not stop within 10 s" >&2
    return 1
}

stop slurmd /run/slurmd.pid
stop slurmctld /run/slurmctld.pid
stop munged /run/munge/munged.pid
