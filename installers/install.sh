#!/bin/sh
# Install credguard for the current user in its own virtual environment and start its main job,
# the protection daemon (in the background, logging to ~/.local/state/credguard/daemon.log).
#
#   installers/install.sh              install (or upgrade in place), then start the daemon
#   installers/install.sh --no-run     install only
#   installers/install.sh --uninstall  remove the environment and the command link;
#                                      the vault and configuration are never touched
#
# Works with Debian's own python3 (which refuses `pip install` outside a venv): everything goes
# into ${XDG_DATA_HOME:-~/.local/share}/credguard/venv, and ~/.local/bin/credguard links to it.
# Without an OS keyring (a fresh server) the daemon still starts, in alert-only mode, and
# `credguard status` says why.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}/credguard
venv=$data/venv
bindir=$HOME/.local/bin
python=${PYTHON:-python3}
run=1

for arg in "$@"; do
  case $arg in
    --no-run) run=0 ;;
    --uninstall)
      rm -rf "$venv"
      [ -L "$bindir/credguard" ] && rm -f "$bindir/credguard"
      echo "credguard: environment removed ($venv); vault and configuration kept."
      exit 0 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option: $arg" >&2; exit 2 ;;
  esac
done

if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "install.sh: $python cannot create virtual environments." >&2
  echo "  On Debian/Ubuntu: sudo apt-get install python3-venv" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "install.sh: credguard needs Python 3.11 or newer ($python is older)." >&2
  exit 1
fi

umask 077
mkdir -p "$data"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade "$src"
mkdir -p "$bindir"
ln -sf "$venv/bin/credguard" "$bindir/credguard"
echo "credguard $("$venv/bin/credguard" --version | cut -d' ' -f2) installed: $bindir/credguard" >&2
case ":$PATH:" in *":$bindir:"*) ;; *) echo "  (add $bindir to your PATH)" >&2 ;; esac

[ "$run" -eq 1 ] || exit 0
cg="$venv/bin/credguard"
if "$cg" status >/dev/null 2>&1; then
  echo "credguard daemon already running; restart it to use the new version:" >&2
  echo "  kill \$("$cg" status --json | sed -n 's/.*\"pid\": \([0-9]*\).*/\1/p') && $0" >&2
else
  state=${XDG_STATE_HOME:-$HOME/.local/state}/credguard
  mkdir -p "$state"
  nohup "$cg" daemon >>"$state/daemon.log" 2>&1 </dev/null &
  i=0
  until "$cg" status >/dev/null 2>&1 || [ $i -ge 50 ]; do sleep 0.2; i=$((i + 1)); done
fi
"$cg" status
echo "Stop it with: kill <pid above>   Log: ${XDG_STATE_HOME:-$HOME/.local/state}/credguard/daemon.log" >&2
