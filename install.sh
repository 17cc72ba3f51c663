#!/usr/bin/env bash
# Set up lejepa-bench on a fresh Debian machine: system packages, a virtual environment in .venv, the
# suite itself (editable) with its test tools. Idempotent: a second run only checks what is there.
#
# System packages (needs root, or sudo): dataset-fashion-mnist (the offline data the main job uses),
# slurm-wlm and munge (the one-node cluster the integration tests submit to; slurm/start_local_cluster.sh
# starts it), chromium and chromium-driver (the headless browser the report.html test opens the page in).
# Set LEJEPA_SKIP_APT=1 to skip them on a machine where you cannot install packages.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ "${LEJEPA_SKIP_APT:-0}" != 1 ]; then
    missing=""
    [ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing="$missing dataset-fashion-mnist"
    command -v slurmctld >/dev/null || missing="$missing slurm-wlm"
    command -v munged >/dev/null || missing="$missing munge"
    command -v chromium >/dev/null || missing="$missing chromium"
    command -v chromedriver >/dev/null || missing="$missing chromium-driver"
    if [ -n "$missing" ]; then
        echo "install.sh: apt-get install$missing"
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq $missing >/dev/null
    fi
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch and torchvision pinned to the builds this project is tested with (pip finds them on local disk
# on the project's machines; elsewhere it downloads them).
if ! [ -x .venv/bin/lejepa ] || ! .venv/bin/python -c "import torch, torchvision, timm, pytest, tensorboard, selenium" 2>/dev/null; then
    .venv/bin/pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
    .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
fi
echo "install.sh: ready (.venv/bin/lejepa, .venv/bin/python -m pytest)"
