# The systemd service's install and removal, sourced by setup.sh (--service, --uninstall-service).
# NTA_SERVICE_ROOT, when set, is a folder that stands for / (a test or a package build): the files go
# under it, no user is created and systemctl is not called.

SERVICE_NAME=network-traffic-analyzer
SERVICE_USER=nta  # the account the analyzer becomes after opening the capture (--run-as in the unit)
SERVICE_ROOT="${NTA_SERVICE_ROOT:-}"
UNIT_FILE="$SERVICE_ROOT/etc/systemd/system/$SERVICE_NAME.service"
CONFIG_DIR="$SERVICE_ROOT/etc/$SERVICE_NAME"
DATA_DIR="$SERVICE_ROOT/var/lib/$SERVICE_NAME"

systemd_running() {
  [[ -z $SERVICE_ROOT && -d /run/systemd/system ]]
}

require_root_for_service() {
  if [[ -z $SERVICE_ROOT && $EUID -ne 0 ]]; then
    echo "setup: installing or removing the service writes to /etc and /var/lib; run: sudo ./setup.sh $MODE" >&2
    exit 1
  fi
}

install_service() {
  require_root_for_service
  local here python script
  here=$(pwd -P)
  python="$here/.venv/bin/python"
  script="$here/network_traffic_analyzer.py"
  if [[ $here == *[[:space:]]* ]]; then
    echo "setup: the service cannot run from a path with spaces ($here); move the checkout" >&2
    exit 1
  fi
  install -d -m 0755 "$(dirname "$UNIT_FILE")"
  sed -e "s|@PYTHON@|$python|g" -e "s|@SCRIPT@|$script|g" -e "s|@README@|$here/README.md|g" \
    "deploy/$SERVICE_NAME.service" >"$UNIT_FILE.tmp"
  chmod 0644 "$UNIT_FILE.tmp"
  mv "$UNIT_FILE.tmp" "$UNIT_FILE"
  echo "setup: wrote $UNIT_FILE" >&2
  if [[ -z $SERVICE_ROOT ]] && ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    useradd --system --home-dir "/var/lib/$SERVICE_NAME" --no-create-home --shell /usr/sbin/nologin \
      --comment "Network Traffic Analyzer" "$SERVICE_USER"
    echo "setup: created the system user $SERVICE_USER" >&2
  fi
  # The config file is Python that runs as root at the start: only root may change it. Group
  # $SERVICE_USER may read it, as a reload (SIGHUP) re-reads it after root was dropped. An existing
  # one is kept as it is, with these owners and modes.
  install -d -m 0750 "$CONFIG_DIR"
  if [[ ! -f $CONFIG_DIR/config.py ]]; then
    install -m 0640 config.example.py "$CONFIG_DIR/config.py"
    echo "setup: wrote $CONFIG_DIR/config.py (from config.example.py; edit it, then restart the service)" >&2
  else
    echo "setup: kept $CONFIG_DIR/config.py" >&2
  fi
  chmod 0750 "$CONFIG_DIR"
  chmod 0640 "$CONFIG_DIR/config.py"
  install -d -m 0750 "$DATA_DIR"  # the analyzer hands it to $SERVICE_USER at each start
  if [[ -z $SERVICE_ROOT ]]; then
    chown "root:$SERVICE_USER" "$CONFIG_DIR" "$CONFIG_DIR/config.py"
    # After dropping root the analyzer still imports modules from the checkout.
    if ! runuser -u "$SERVICE_USER" -- test -r "$script" -a -x "$python"; then
      echo "setup: warning: user $SERVICE_USER cannot read $script or run $python; the service would" \
        "fail after dropping root (make the checkout readable, e.g. chmod o+rx on its parent folders)" >&2
    fi
  fi
  if systemd_running; then
    systemctl daemon-reload
    systemctl enable "$SERVICE_NAME" >/dev/null 2>&1
    echo "setup: service $SERVICE_NAME enabled; start it with: sudo systemctl start $SERVICE_NAME" >&2
  else
    echo "setup: systemd is not running here: the unit is written but not enabled" >&2
  fi
}

uninstall_service() {
  require_root_for_service
  if systemd_running; then
    systemctl disable --now "$SERVICE_NAME" >/dev/null 2>&1 || true
  fi
  rm -f "$UNIT_FILE"
  if systemd_running; then
    systemctl daemon-reload
  fi
  echo "setup: removed $UNIT_FILE; kept $CONFIG_DIR (settings) and $DATA_DIR (results)." \
    "To remove them and the user too: sudo rm -r $CONFIG_DIR $DATA_DIR && sudo userdel $SERVICE_USER" >&2
}
