# shellcheck shell=bash
# parley_install_deps: installs the Debian packages Parley needs, only those missing.
# Idempotent and quiet when everything is present.

PARLEY_DEBIAN_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git curl python3 clang-format
  libcaf-dev libboost-dev libprotobuf-dev protobuf-compiler
  libpqxx-dev libpq-dev libhiredis-dev prometheus-cpp-dev libssl-dev
  libyaml-cpp-dev libre2-dev libhowardhinnant-date-dev tzdata nlohmann-json3-dev libsimdjson-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libjemalloc-dev
  redis-server postgresql postgresql-client
  nodejs npm
  chromium
)

parley_install_deps() {
  local missing=()
  local p
  for p in "${PARLEY_DEBIAN_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      # nodejs/npm may come from elsewhere than Debian: a working binary is enough.
      if { [ "$p" = nodejs ] && command -v node >/dev/null; } || { [ "$p" = npm ] && command -v npm >/dev/null; }; then
        continue
      fi
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "parley: installing missing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}
