#!/usr/bin/env bash
# Start a real one-node SLURM cluster on this machine (for the launcher's tests and for local use).
#
# Idempotent: run it again and it only starts what is not running. Needs root (it writes /etc/slurm and
# starts daemons). No systemd and no cgroups: plain daemons, so it works in containers and CI sessions;
# processes end with the session that started them, so CI must call this script itself.
# Tested on Debian 12 with Slurm 22.05 and munge 0.5; the settings below are the ones that worked there.
#
# Environment knobs: LEJEPA_SLURM_CONF (default /etc/slurm/slurm.conf), LEJEPA_SLURM_FORCE_CONF=1 to
# overwrite a slurm.conf this script did not write.
set -euo pipefail

CONF=${LEJEPA_SLURM_CONF:-/etc/slurm/slurm.conf}
MARKER="# written by lejepa-bench slurm/start_local_cluster.sh"
STATE_DIR=/var/spool/slurmctld
SPOOL_DIR=/var/spool/slurmd
LOG_DIR=/var/log/slurm

die() { echo "start_local_cluster: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it writes $CONF and starts munged, slurmctld, slurmd); try: sudo $0"

# 1. Packages. Only when missing: apt-get needs network, the rest of the script does not.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    echo "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# 2. Munge key: created once, 0400 owned by munge (munged refuses group/world-readable keys).
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

# 3. slurm.conf for this machine. RealMemory stays below the machine's so slurmd does not drain the
# node for "low RealMemory"; the node's CPUs are all of this machine's cores.
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
REAL_MEM=$(( MEM_MB * 9 / 10 ))
if [ -e "$CONF" ] && ! grep -qF "$MARKER" "$CONF" && [ "${LEJEPA_SLURM_FORCE_CONF:-0}" != 1 ]; then
    die "$CONF exists and was not written by this script (a real cluster's configuration?); refusing to \
overwrite it. Move it away, or set LEJEPA_SLURM_FORCE_CONF=1 to replace it."
fi
install -d -m 0755 "$(dirname "$CONF")" "$STATE_DIR" "$SPOOL_DIR" "$LOG_DIR"
NEW_CONF=$(mktemp)
cat >"$NEW_CONF" <<EOF
$MARKER
ClusterName=lejepa-local
SlurmctldHost=$HOST
AuthType=auth/munge
# A requeued job may start again only after the job credential lifetime (default 120 s); 10 s is plenty
# on one node and keeps a preempted job's restart quick.
AuthInfo=cred_expire=10
SlurmUser=root
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
# Pending jobs are looked at every few seconds (defaults: 60 s and 30 s), so a requeued job whose begin
# time has passed starts promptly instead of waiting for the next full pass.
SchedulerParameters=sched_interval=2,bf_interval=2
ReturnToService=2
# Short kill grace and a quick requeue make preemption tests fast; finished jobs stay visible to
# scontrol for MinJobAge seconds (there is no accounting database for sacct).
KillWait=5
MinJobAge=600
MaxArraySize=10001
NodeName=$HOST CPUs=$CPUS RealMemory=$REAL_MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
CONF_CHANGED=0
if ! cmp -s "$NEW_CONF" "$CONF"; then
    install -m 0644 "$NEW_CONF" "$CONF"
    CONF_CHANGED=1
fi
rm -f "$NEW_CONF"

# Daemons are found by their pid files, never by name, so nothing else on the machine is touched.
pidfile() { case "$1" in munged) echo /run/munge/munged.pid ;; *) echo "/run/$1.pid" ;; esac; }
running() { local f; f=$(pidfile "$1"); [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

# 4. Daemons, in dependency order. A changed configuration restarts the slurm daemons.
if [ "$CONF_CHANGED" = 1 ]; then
    for daemon in slurmd slurmctld; do
        if running "$daemon"; then
            echo "configuration changed: restarting $daemon"
            kill "$(cat "$(pidfile "$daemon")")"
            for _ in $(seq 50); do running "$daemon" || break; sleep 0.1; done
        fi
    done
fi
if ! running munged; then
    su -s /bin/sh munge -c /usr/sbin/munged || die "munged did not start; see /var/log/munge/munged.log"
fi
for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
munge -n | unmunge >/dev/null || die "munge does not work (munge -n | unmunge failed); see /var/log/munge/munged.log"
if ! running slurmctld; then
    slurmctld -f "$CONF" || die "slurmctld did not start; see $LOG_DIR/slurmctld.log"
fi
if ! running slurmd; then
    slurmd -f "$CONF" || die "slurmd did not start; see $LOG_DIR/slurmd.log"
fi

# 5. Wait for the node to accept jobs. A node left "down" or "drained" by an earlier session is resumed.
for _ in $(seq 60); do
    state=$(sinfo -h -N -n "$HOST" -o %t 2>/dev/null | head -n1 || true)
    case "$state" in
        idle|mix|alloc|comp) echo "local SLURM cluster up: node $HOST ($CPUS CPUs, ${REAL_MEM} MB) is $state"; exit 0 ;;
        down*|drain*|drng*|fail*) scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
die "node $HOST is not idle after 30 s (sinfo says '${state:-nothing}'); see $LOG_DIR/slurmctld.log and $LOG_DIR/slurmd.log"
