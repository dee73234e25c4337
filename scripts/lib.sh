# shellcheck shell=bash
# Shared set-up for scripts/review and scripts/test: Debian packages, the venv, dockerd.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$REPO_ROOT/.venv"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# ensure_debian CMD:PACKAGE ... installs each package whose command is missing.
ensure_debian() {
  local missing=() pair cmd pkg
  for pair in "$@"; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    if [[ $cmd == /* ]]; then [[ -e $cmd ]] || missing+=("$pkg")
    else command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg"); fi
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_venv EXTRAS: a venv with the project installed editable with (at least) those extras;
# reinstalled when pyproject.toml changes or an extra is missing.
ensure_venv() {
  local extras=$1 stamp hash installed="" extra
  hash=$(sha256sum "$REPO_ROOT/pyproject.toml" | cut -c1-16)
  stamp="$VENV/.baseimage-install"
  if [[ ! -x $VENV/bin/python ]]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  [[ -f $stamp ]] && read -r stamp_hash installed < "$stamp" || stamp_hash=""
  local ok=1
  [[ $stamp_hash == "$hash" ]] || ok=0
  for extra in ${extras//,/ }; do [[ ,$installed, == *,$extra,* ]] || ok=0; done
  if [[ $ok -eq 0 ]]; then
    [[ $stamp_hash == "$hash" && -n $installed ]] && extras="$installed,$extras"
    log "installing baseimage[$extras] into $VENV (first time: a few minutes)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$REPO_ROOT[$extras]"
    echo "$hash $extras" > "$stamp"
  fi
}

# ensure_dockerd: a daemon reachable by `docker`, started loopback-only when none runs.
ensure_dockerd() {
  if docker info >/dev/null 2>&1; then return 0; fi
  log "starting dockerd (no bridge, no iptables: containers use host networking)"
  local logfile=${TMPDIR:-/tmp}/baseimage-dockerd.log
  setsid dockerd --bridge=none --iptables=false --ip6tables=false >"$logfile" 2>&1 < /dev/null &
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  log "dockerd did not come up; its log ($logfile) ends with:"
  tail -n 20 "$logfile" >&2
  return 1
}
