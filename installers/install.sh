#!/bin/sh
# Install credguard for the current user in its own environment, check the machine with
# `credguard doctor`, and run the protection daemon as a per-user service
# (systemd user unit on Linux, launchd agent on macOS: `credguard service install`).
#
#   installers/install.sh               install (or upgrade in place) and (re)start the service
#   installers/install.sh --no-start    install; install the service without starting it
#   installers/install.sh --venv        use a venv even when pipx is available
#   installers/install.sh --uninstall   remove the service, the environment and the command
#                                       link; the vault and the configuration are kept
#   installers/install.sh --uninstall --purge-vault --purge-vault
#                                       ...and destroy the vault first: it must be asked twice
#                                       (given once, a terminal asks you to type 'destroy')
#
# The environment is pipx's when pipx is present, else a venv in
# ${XDG_DATA_HOME:-~/.local/share}/credguard/venv linked as ~/.local/bin/credguard (this works
# with Debian's own python3, which refuses `pip install` outside a venv). An existing venv is
# always upgraded in place. Without a reachable service manager (no systemd user session, no
# macOS GUI login), the daemon is started in the background instead, logging to
# ~/.local/state/credguard/daemon.log. Without an OS keyring it runs in alert-only mode.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}/credguard
venv=$data/venv
bindir=$HOME/.local/bin
state=${XDG_STATE_HOME:-$HOME/.local/state}/credguard
python=${PYTHON:-python3}
start=1 uninstall=0 purge=0 use_venv=0
STATE_EXIT=7 # credguard's exit code when no service manager can be reached

for arg in "$@"; do
  case $arg in
    --no-start | --no-run) start=0 ;;
    --venv) use_venv=1 ;;
    --uninstall) uninstall=1 ;;
    --purge-vault) purge=$((purge + 1)) ;;
    -h | --help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option: $arg" >&2; exit 2 ;;
  esac
done
if [ "$purge" -gt 0 ] && [ "$uninstall" -eq 0 ]; then
  echo "install.sh: --purge-vault only goes with --uninstall" >&2; exit 2
fi

die() { echo "install.sh: $*" >&2; exit 1; }

# The installed credguard command, or nothing.
installed_cg() {
  for c in "$venv/bin/credguard" "$bindir/credguard"; do
    if [ -x "$c" ]; then echo "$c"; return 0; fi
  done
}

pipx_has_credguard() {
  command -v pipx >/dev/null 2>&1 && pipx list --short 2>/dev/null | grep -q '^credguard '
}

# Stop a daemon started outside any service manager (by an earlier run of this script).
stop_background() {
  if "$1" service status >/dev/null 2>&1; then return 0; fi # the service manager runs it
  pid=$("$1" status --json 2>/dev/null | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
  [ -n "$pid" ] || return 0
  echo "install.sh: stopping the credguard daemon started earlier (pid $pid)" >&2
  kill "$pid" 2>/dev/null || return 0
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 60 ]; do sleep 0.1; i=$((i + 1)); done
}

start_background() {
  mkdir -p "$state"
  nohup "$1" daemon >>"$state/daemon.log" 2>&1 </dev/null &
  i=0
  until "$1" status >/dev/null 2>&1 || [ $i -ge 50 ]; do sleep 0.2; i=$((i + 1)); done
  echo "credguard daemon started in the background. Stop it with: kill <pid below>" >&2
  echo "  log: $state/daemon.log" >&2
}

# True when the user asked twice to destroy the vault: the flag twice, or once plus 'destroy'
# typed on a terminal.
purge_confirmed() {
  [ "$purge" -ge 2 ] && return 0
  [ "$purge" -eq 1 ] || return 1
  if [ -t 0 ]; then
    printf "Destroy the vault in %s? Every credential in it becomes unreadable for good.\n" \
      "$data/vault" >&2
    printf "Type 'destroy' to continue: " >&2
    read -r answer || answer=""
    [ "$answer" = destroy ] && return 0
  fi
  echo "install.sh: the vault is kept (--purge-vault must be given twice to destroy it)." >&2
  return 1
}

purge_vault() {
  [ -d "$data/vault" ] || { echo "install.sh: no vault at $data/vault" >&2; return 0; }
  [ -n "$1" ] || die "credguard is not installed, so the vault cannot be destroyed (its key" \
    "is in the keyring): install it again, then run this again. Nothing was removed."
  "$1" vault destroy --yes || die "destroying the vault failed; nothing was removed"
  kept="the vault is destroyed; the configuration is kept"
}

do_uninstall() {
  cg=$(installed_cg)
  kept="the vault and the configuration are kept"
  if purge_confirmed; then purge_vault "$cg"; fi
  if [ -n "$cg" ]; then
    "$cg" service uninstall || echo "install.sh: warning: the service was not removed" >&2
    stop_background "$cg"
  fi
  if pipx_has_credguard; then pipx uninstall credguard >&2; fi
  rm -rf "$venv"
  if [ -L "$bindir/credguard" ]; then rm -f "$bindir/credguard"; fi
  echo "credguard: service and environment removed; $kept." >&2
}

install_venv() {
  "$python" -c 'import venv, ensurepip' >/dev/null 2>&1 || die "$python cannot create" \
    "virtual environments. On Debian/Ubuntu: sudo apt-get install python3-venv"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "credguard needs Python 3.11 or newer ($python is older)."
  mkdir -p "$data"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade "$src"
  mkdir -p "$bindir"
  ln -sf "$venv/bin/credguard" "$bindir/credguard"
  cg=$venv/bin/credguard
}

install_pipx() {
  pipx install --force "$src" >&2
  pipx_bin=$(pipx environment --value PIPX_BIN_DIR 2>/dev/null || echo "$bindir")
  cg=$pipx_bin/credguard
  bindir=$pipx_bin
}

# Install the service; fall back to a background daemon when no service manager answers.
install_service() {
  if [ "$start" -eq 0 ]; then
    rc=0
    "$cg" service install --no-start || rc=$?
    [ "$rc" -eq 0 ] && return 0
    [ "$rc" -eq "$STATE_EXIT" ] || exit "$rc"
    echo "install.sh: no service for this system; run 'credguard daemon' yourself." >&2
    return 0
  fi
  stop_background "$cg" # an older, unmanaged daemon: the service replaces it
  rc=0
  "$cg" service install || rc=$?
  if [ "$rc" -eq "$STATE_EXIT" ]; then
    "$cg" service install --no-start >/dev/null 2>&1 || true # for the next login
    start_background "$cg"
  elif [ "$rc" -ne 0 ]; then
    exit "$rc"
  fi
  "$cg" status || true
}

umask 077
if [ "$uninstall" -eq 1 ]; then do_uninstall; exit 0; fi

if [ "$use_venv" -eq 0 ] && [ ! -d "$venv" ] && command -v pipx >/dev/null 2>&1; then
  install_pipx
else
  install_venv
fi
echo "credguard $("$cg" --version | cut -d' ' -f2) installed: $bindir/credguard" >&2
case ":$PATH:" in *":$bindir:"*) ;; *) echo "  (add $bindir to your PATH)" >&2 ;; esac

echo "== credguard doctor" >&2
"$cg" doctor || echo "install.sh: doctor found problems (above); the install goes on." >&2

echo "== credguard service install" >&2
install_service
