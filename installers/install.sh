#!/bin/sh
# Install credguard for the current user in its own environment, start the protection daemon
# (`credguard restart`: the per-user service when its manager answers, else a background
# process) and check the machine with `credguard doctor`.
#
#   installers/install.sh               install (or upgrade in place) and (re)start the daemon
#   installers/install.sh --no-start    install; install the service without starting anything
#   installers/install.sh --venv        use a venv even when pipx is available
#   installers/install.sh --with-tray   also install the tray icon's packages (credguard tray)
#   installers/install.sh --uninstall   stop the daemon, remove the service, the environment
#                                       and the command link; the vault, the configuration
#                                       and the state (audit log) are kept, and their places
#                                       printed. Refused while an Azure tool's cache is sealed
#                                       (its tokens are in the vault) unless unsealed first:
#     --unseal                          ...put sealed caches back as plaintext files first,
#                                       without asking (a terminal is asked otherwise)
#     --purge-config                    ...and delete the configuration directory
#     --purge-state                     ...and delete the state directory (audit log, logs)
#     --purge-vault --purge-vault       ...and destroy the vault first: it must be asked twice
#                                       (given once, a terminal asks you to type 'destroy')
#                                       The places are credguard's own (credguard service
#                                       paths); a folder that also holds something kept stays
#                                       (on macOS one folder holds all three).
#
# The environment is pipx's when pipx is present, else a venv in
# ${XDG_DATA_HOME:-~/.local/share}/credguard/venv linked as ~/.local/bin/credguard (this works
# with Debian's own python3, which refuses `pip install` outside a venv). An existing venv is
# always upgraded in place. pip builds from a temporary copy of this checkout, so nothing is
# written into it. Without a reachable service manager (no systemd user session, no macOS GUI
# login) the daemon runs in the background, logging to ~/.local/state/credguard/daemon.log;
# the service is still installed for the next login. Without an OS keyring it runs in
# alert-only mode. Windows: installers/install.ps1 (same options, PowerShell-style names).
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}/credguard # the venv's place only: where() has the rest
venv=$data/venv
bindir=$HOME/.local/bin
python=${PYTHON:-python3}
start=1 uninstall=0 purge=0 use_venv=0 tray=0 unseal=0 purge_config=0 purge_state=0
tmp=

for arg in "$@"; do
  case $arg in
    --no-start | --no-run) start=0 ;;
    --venv) use_venv=1 ;;
    --with-tray) tray=1 ;;
    --uninstall) uninstall=1 ;;
    --unseal) unseal=1 ;;
    --purge-vault) purge=$((purge + 1)) ;;
    --purge-config) purge_config=1 ;;
    --purge-state) purge_state=1 ;;
    -h | --help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option: $arg" >&2; exit 2 ;;
  esac
done
if [ "$uninstall" -eq 0 ] && [ $((purge + purge_config + purge_state + unseal)) -gt 0 ]; then
  echo "install.sh: --unseal, --purge-vault, --purge-config and --purge-state only go with" \
    "--uninstall" >&2
  exit 2
fi

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "$*" >&2; }
cleanup() { if [ -n "$tmp" ]; then rm -rf "$tmp"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# The installed credguard command, or nothing.
installed_cg() {
  for c in "$venv/bin/credguard" "$bindir/credguard"; do
    if [ -x "$c" ]; then echo "$c"; return 0; fi
  done
}

pipx_has_credguard() {
  command -v pipx >/dev/null 2>&1 && pipx list --short 2>/dev/null | grep -q '^credguard '
}

# Where credguard keeps NAME (vault, config, state): as the installed credguard says (`credguard
# service paths`), else as this checkout's credguard.paths says (on Linux it needs no other
# package; -B: nothing is written into the checkout); nothing when neither can say. Never guessed here: each system has its own places
# (on macOS all three are in ~/Library/Application Support/credguard).
where() {
  found=
  if [ -n "${cg:-}" ]; then
    found=$("$cg" service paths 2>/dev/null | awk -F '\t' -v n="$1" '$1 == n { print $2 }')
  fi
  if [ -z "$found" ]; then
    found=$("$python" -I -B -c '
import sys
sys.path.insert(0, sys.argv[1])
from credguard import paths
where = {"vault": paths.vault_dir, "state": paths.user_state_dir,
         "config": lambda: paths.user_config_file().parent}  # as credguard service paths
print(where[sys.argv[2]]())
' "$src" "$1" 2>/dev/null) || found=
  fi
  echo "$found"
}

# A place for messages: PATH, or why there is none.
shown() { if [ -n "$1" ]; then echo "$1"; else echo "(unknown: credguard is not installed)"; fi; }

# ---- uninstall ------------------------------------------------------------------------------

# The ids of the sealed Azure tool caches (one a line); "?" when credguard cannot say.
sealed_tools() {
  "$cg" status --json 2>/dev/null | "$python" -c '
import json, sys
try:
    sealed = json.load(sys.stdin)["sealed"]
except (ValueError, KeyError):
    sealed = [{"error": "no status"}]
for seal in sealed:
    print(seal.get("tool", "?") if "error" not in seal else "?")
' || echo "?"
}

# Unseal what is sealed (asked on a terminal, or --unseal), else refuse: uninstalling would
# leave the tools logged out, their tokens in a vault nothing installed can open.
unseal_first() {
  tools=$(sealed_tools)
  [ -n "$tools" ] || return 0
  case $tools in *"?"*) die "cannot tell whether an Azure tool's cache is sealed" \
    "('credguard status' fails); nothing was removed." ;; esac
  names=$(echo "$tools" | tr '\n' ' ' | sed 's/ *$//')
  if [ "$unseal" -eq 0 ] && [ -t 0 ]; then
    say "These Azure tool caches are sealed in the vault: $names"
    say "Uninstalling leaves those tools logged out, with their tokens in a vault nothing"
    printf "installed can open. Unseal them now (the tokens become plaintext files again)? [y/N] " >&2
    read -r answer || answer=""
    case $answer in y | Y | yes | YES) unseal=1 ;; esac
  fi
  if [ "$unseal" -eq 0 ]; then
    die "refusing to uninstall: sealed caches ($names) would be left in a vault nothing can" \
      "open. Run again with --unseal to put them back as plaintext files first, or run" \
      "'credguard unseal TOOL' yourself. Nothing was removed."
  fi
  for tool in $tools; do
    "$cg" unseal "$tool" >&2 || die "unsealing $tool failed (above); nothing was removed."
  done
}

# True when the user asked twice to destroy the vault: the flag twice, or once plus 'destroy'
# typed on a terminal.
purge_confirmed() {
  [ "$purge" -ge 2 ] && return 0
  [ "$purge" -eq 1 ] || return 1
  if [ -t 0 ]; then
    printf "Destroy the vault in %s? Every credential in it becomes unreadable for good.\n" \
      "$(where vault)" >&2
    printf "Type 'destroy' to continue: " >&2
    read -r answer || answer=""
    [ "$answer" = destroy ] && return 0
  fi
  say "install.sh: the vault is kept (--purge-vault must be given twice to destroy it)."
  return 1
}

purge_vault() {
  vault=$(where vault)
  if [ -n "$vault" ] && [ ! -d "$vault" ]; then say "install.sh: no vault at $vault"; return 0; fi
  [ -n "$cg" ] || die "credguard is not installed, so the vault cannot be destroyed (its key" \
    "is in the keyring): install it again, then run this again. Nothing was removed."
  "$cg" vault destroy --yes >&2 || die "destroying the vault failed; nothing was removed"
  vault_gone=1
}

# Whether PATH ($1) is DIR ($2) or inside it.
inside() { case $1 in "$2" | "$2"/*) return 0 ;; esac; return 1; }

# What DIR ($1) holds that is kept: the vault, the configuration or the state (on macOS one
# folder holds all three), with the option that would let it go; nothing when it holds none.
holds_kept() {
  if [ "$vault_gone" -eq 0 ] && [ -n "$vault" ] && inside "$vault" "$1"; then
    echo "the vault (--purge-vault twice)"
  elif [ "$purge_config" -eq 0 ] && [ -n "$config" ] && inside "$config" "$1"; then
    echo "the configuration (--purge-config)"
  elif [ "$purge_state" -eq 0 ] && [ -n "$state" ] && inside "$state" "$1"; then
    echo "the state (--purge-state)"
  fi
}

# Remove the credguard directory DIR ($2: its name says so) holding the $1, unless it holds
# something kept, and say so.
purge_dir() {
  [ -n "$2" ] || { say "  not deleting the $1: credguard cannot say where it is"; return 0; }
  case $2 in */credguard) ;; *) say "install.sh: not deleting $2 (not credguard's own)"; return 0 ;; esac
  [ -d "$2" ] || { say "  no $1 at $2"; return 0; }
  held=$(holds_kept "$2")
  if [ -n "$held" ]; then
    say "  not deleting the $1 in $2: it also holds $held, which is kept"
    return 0
  fi
  rm -rf "$2"
  say "  deleted the $1: $2"
}

do_uninstall() {
  cg=$(installed_cg)
  vault_gone=0
  if [ -n "$cg" ]; then unseal_first; fi
  vault=$(where vault) config=$(where config) state=$(where state)
  if purge_confirmed; then purge_vault; fi
  if [ -n "$cg" ]; then
    "$cg" stop >&2 || say "install.sh: the daemon could not be stopped (above)"
    "$cg" service uninstall >&2 || say "install.sh: the service was not removed (above)"
  fi
  if pipx_has_credguard; then pipx uninstall credguard >&2; fi
  rm -rf "$venv"
  if [ -L "$bindir/credguard" ]; then rm -f "$bindir/credguard"; fi
  rmdir "$data" 2>/dev/null || true
  say "credguard: the daemon, the service and the environment are removed."
  if [ "$purge_config" -eq 1 ]; then purge_dir configuration "$config"; fi
  if [ "$purge_state" -eq 1 ]; then purge_dir state "$state"; fi
  if [ "$vault_gone" -eq 1 ]; then say "  destroyed the vault:    $vault"
  elif [ -z "$vault" ] || [ -d "$vault" ]; then
    say "  kept the vault:         $(shown "$vault")  (--purge-vault twice destroys it)"
  else say "  no vault at $vault"; fi
  if [ -z "$config" ] || [ -d "$config" ]; then
    say "  kept the configuration: $(shown "$config")  (--purge-config)"
  elif [ "$purge_config" -eq 0 ]; then say "  no configuration at $config"; fi
  if [ -z "$state" ] || [ -d "$state" ]; then
    say "  kept the state:         $(shown "$state")  (audit log; --purge-state)"
  elif [ "$purge_state" -eq 0 ]; then say "  no state at $state"; fi
  return 0
}

# ---- install --------------------------------------------------------------------------------

# A copy of what pip needs to build credguard: the build writes build/ and *.egg-info next to
# pyproject.toml, and that must not be the user's checkout.
source_copy() {
  copy=$tmp/src
  mkdir "$copy"
  for f in pyproject.toml README.md LICENSE LICENSE.txt credguard; do
    if [ -e "$src/$f" ]; then cp -R "$src/$f" "$copy/"; fi
  done
  find "$copy" -name __pycache__ -type d -prune -exec rm -rf {} +
}

# Run pip (the arguments), showing its progress lines indented; its whole output on failure.
pip_progress() {
  log=$tmp/pip.log
  { "$@" 2>&1; echo $? >"$tmp/pip.rc"; } | tee "$log" | while IFS= read -r line; do
    case $line in
      Processing* | Collecting* | Downloading* | Building* | Installing* | Successfully*)
        say "  $line" ;;
    esac
  done
  [ "$(cat "$tmp/pip.rc")" -eq 0 ] && return 0
  cat "$log" >&2
  die "pip install failed (above)"
}

install_venv() {
  "$python" -c 'import venv, ensurepip' >/dev/null 2>&1 || die "$python cannot create" \
    "virtual environments. On Debian/Ubuntu: sudo apt-get install python3-venv"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "credguard needs Python 3.11 or newer ($python is older)."
  mkdir -p "$data"
  if [ ! -x "$venv/bin/python" ]; then
    say "creating a virtual environment in $venv"
    "$python" -m venv "$venv"
  fi
  spec=$copy
  if [ "$tray" -eq 1 ]; then spec="${copy}[tray]"; fi
  say "installing credguard with pip into $venv (this can take a minute)"
  pip_progress "$venv/bin/python" -m pip install --disable-pip-version-check \
    --progress-bar off --upgrade "$spec"
  mkdir -p "$bindir"
  ln -sf "$venv/bin/credguard" "$bindir/credguard"
  cg=$venv/bin/credguard
}

install_pipx() {
  say "installing credguard with pipx"
  pipx install --force "$copy" >&2
  if [ "$tray" -eq 1 ]; then pipx inject credguard 'pystray>=0.19' Pillow >&2; fi # the tray extra
  pipx_bin=$(pipx environment --value PIPX_BIN_DIR 2>/dev/null || echo "$bindir")
  cg=$pipx_bin/credguard
  bindir=$pipx_bin
}

# The exact command that puts $bindir on PATH for the user's shell.
path_advice() {
  case ${SHELL:-sh} in
    */fish) echo "fish_add_path $bindir" ;;
    */zsh) echo "echo 'export PATH=\"$bindir:\$PATH\"' >> ~/.zshrc" ;;
    */bash) echo "echo 'export PATH=\"$bindir:\$PATH\"' >> ~/.bashrc" ;;
    *) echo "echo 'export PATH=\"$bindir:\$PATH\"' >> ~/.profile" ;;
  esac
}

# Install the service for the next login; then (unless --no-start) restart the daemon: through
# the service when its manager answers, else in the background (credguard restart decides).
start_daemon() {
  if [ "$start" -eq 0 ]; then
    "$cg" service install --no-start >&2 \
      || say "install.sh: no per-user service was installed (above); start the daemon with: credguard start"
    return 0
  fi
  "$cg" service install --no-start >/dev/null 2>"$tmp/service.err" \
    || { cat "$tmp/service.err" >&2; say "install.sh: no per-user service was installed (above)"; }
  "$cg" restart >&2 || die "the daemon did not start (above)"
}

umask 077
if [ "$uninstall" -eq 1 ]; then do_uninstall; exit 0; fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/credguard-install.XXXXXX")
source_copy
if [ "$use_venv" -eq 0 ] && [ ! -d "$venv" ] && command -v pipx >/dev/null 2>&1; then
  install_pipx
else
  install_venv
fi
say "credguard $("$cg" --version | cut -d' ' -f2) installed: $bindir/credguard"
case ":$PATH:" in
  *":$bindir:"*) ;;
  *) say "  $bindir is not on your PATH; add it with:"
     say "    $(path_advice)"
     say "  then open a new terminal." ;;
esac

say "== the daemon"
start_daemon

say "== credguard doctor"
if ! "$cg" doctor; then
  if [ "$start" -eq 0 ]; then
    say "install.sh: doctor's findings are above (the daemon was not started: --no-start)."
  else
    say "install.sh: doctor's findings are above; the install itself is done."
  fi
fi
