#!/usr/bin/env bash
# Installs what the analyzer needs on Debian/Ubuntu: tshark from apt and the Python packages in ./.venv.
#   sudo ./setup.sh          what the analyzer needs
#   sudo ./setup.sh --dev    plus what the tests need (chromium, chromium-driver, iproute2, nmap, tcpdump, dig, hping3, postgresql)
#   sudo ./setup.sh --service             what the analyzer needs, then the systemd service (deploy/)
#   sudo ./setup.sh --uninstall-service   removes the service; keeps its settings and results
# NTA_SERVICE_ROOT=/some/dir puts the service's files under that folder instead of / (for tests and
# packaging): no user is created and systemctl is not called.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")"
MODE="${1:-}"
source deploy/service.sh
if [[ $MODE == "--uninstall-service" ]]; then
  uninstall_service
  exit 0
fi

APT_PACKAGES=(tshark python3 python3-venv python3-pip)
REQUIREMENTS=requirements.txt
if [[ $MODE == "--dev" ]]; then
  APT_PACKAGES+=(chromium chromium-driver iproute2 nmap tcpdump iputils-ping procps dnsutils hping3 postgresql)
  # the benign lab of bench/make_benign_traffic.py (tests/integration/test_benign_traffic.py)
  APT_PACKAGES+=(curl openssh-server openssh-client dnsmasq-base iperf3 ethtool)
  APT_PACKAGES+=(openssl)  # a self-signed certificate for the SMTP TLS tests (tests/integration/test_alert_channels.py)
  APT_PACKAGES+=(tcpreplay)  # the live benchmark's traffic (bench/live_bench.py)
  APT_PACKAGES+=(hydra)  # password guessing against sshd in test namespaces (tests/system/test_detect_brute_force_live.py)
  REQUIREMENTS=requirements-dev.txt
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $EUID -ne 0 ]]; then
    echo "setup: these system packages are missing: ${missing[*]}; run: sudo ./setup.sh $*" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  # tshark asks whether non-root users may capture; keep Debian's default (no): capture runs with sudo.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  if [[ " ${missing[*]} " == *" openssh-server "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now ssh >/dev/null 2>&1 || true  # only for sshd; the tests start their own in namespaces
  fi
fi

PYTHON=/usr/bin/python3
[[ -x $PYTHON ]] || PYTHON=$(command -v python3)
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $PYTHON" >&2
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat requirements.txt "$REQUIREMENTS" | sha256sum | cut -c1-16)"
if [[ ! -f $stamp ]]; then
  echo "setup: installing Python packages from $REQUIREMENTS" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS"
  touch "$stamp"
fi
# Byte-code the project once here (as pip does for the packages): a run then reads it even where
# PYTHONDONTWRITEBYTECODE is set, instead of compiling every module at each start (about 0.5 s of CPU).
.venv/bin/python -m compileall -q traffic_analyzer network_traffic_analyzer.py >/dev/null || true
echo "setup: ready (tshark $(tshark --version 2>/dev/null | head -1 | awk '{print $3}'), $(.venv/bin/python --version))" >&2
if [[ $MODE == "--service" ]]; then
  install_service
fi
