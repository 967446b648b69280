#!/usr/bin/env bash
# Sets up vit-dfkd on a fresh Debian/Ubuntu machine: system packages (libtorch, OpenBLAS, the
# Fashion-MNIST dataset, a C++ toolchain), the npm dependencies, the native addon and the TypeScript.
#
#   ./setup.sh                      # Debian's libtorch-dev (CPU)
#   LIBTORCH=/opt/libtorch ./setup.sh   # a LibTorch from pytorch.org instead (CPU or CUDA)
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root or install sudo"
  SUDO="sudo"
fi

# Node.js >= 20 (Debian 12's own nodejs is 18: use NodeSource or nvm if this fails).
command -v node >/dev/null || die "Node.js >= 20 is required (https://nodejs.org or NodeSource packages)"
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 20 ] || die "Node.js >= 20 is required, found $(node --version)"

# libopenblas0-pthread matters: without it Debian's libtorch uses reference BLAS and a ViT
# training step is ~15x slower (ARCHITECTURE.md). dataset-fashion-mnist is the real Fashion-MNIST.
# chromium runs the browser demo's end-to-end test (driven by playwright-core, no browser download).
PKGS=(libopenblas0-pthread dataset-fashion-mnist g++ make python3 chromium libgloo-dev)
if [ -z "${LIBTORCH:-}" ]; then PKGS+=(libtorch-dev); fi
MISSING=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || MISSING+=("$p")
done
if [ "${#MISSING[@]}" -gt 0 ]; then
  say "installing ${MISSING[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null
else
  say "system packages present"
fi

# Make sure libblas.so.3 resolves to OpenBLAS (the alternatives system may point elsewhere).
ARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
OPENBLAS=/usr/lib/$ARCH/openblas-pthread/libblas.so.3
if [ -e "$OPENBLAS" ]; then
  CURRENT=$(update-alternatives --query "libblas.so.3-$ARCH" 2>/dev/null | awk '/^Value:/ {print $2}')
  if [ "$CURRENT" != "$OPENBLAS" ]; then
    say "pointing libblas.so.3 at OpenBLAS (was: ${CURRENT:-unset})"
    $SUDO update-alternatives --set "libblas.so.3-$ARCH" "$OPENBLAS"
  fi
  say "BLAS: OpenBLAS ($OPENBLAS)"
else
  say "warning: OpenBLAS not found at $OPENBLAS; libtorch may run on slow reference BLAS"
fi

say "npm ci"
# onnxruntime-node's postinstall would download optional CUDA binaries from outside the npm registry
# (its CPU binaries ship in the package): skip it. An npm with allowScripts (11 here) never runs it
# (package.json denies it); the variable covers older npm.
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
say "building the native addon and the TypeScript (npm run build)"
npm run --silent build >/dev/null
say "done: $(node dist/src/cli/main.js info | tr '\n' ';' | sed 's/;$//')"
