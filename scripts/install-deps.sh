#!/usr/bin/env bash
# Installs the Debian 12 packages moon needs to build, test and benchmark, skipping those
# already present. Run as root (or with sudo available).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev libpcre2-dev
  libboost-dev          # Asio/Beast for the HTTP server
  libsentencepiece-dev  # the tokenizer tests' oracle
  python3-numpy         # the sampling benchmark's baseline
  clang-format
  clang libclang-rt-14-dev  # the sanitizer build and the libFuzzer targets (scripts/asan-build.sh)
  libopenmpi-dev openmpi-bin  # tensor parallelism (mpirun -np N moon serve --tensor-parallel-size N)
  nginx-light               # the load balancer in front of replicas (deploy/nginx/)
)

# The end-to-end tests drive the server with the official `openai` npm client. Node.js may
# already be installed from elsewhere; only install Debian's when there is none.
if ! command -v node >/dev/null 2>&1; then packages+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
