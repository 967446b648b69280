// Prints compiler/linker settings for binding.gyp. Default: Debian's libtorch-dev (headers in
// /usr/include, libraries on the system path). With LIBTORCH=/path/to/libtorch (a LibTorch zip from
// pytorch.org, CPU or CUDA) it builds against that instead and records an rpath to its lib/ folder.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = process.env.LIBTORCH;
const what = process.argv[2];

function abiFlag() {
  if (process.env.TORCH_CXX11_ABI !== undefined) return `-D_GLIBCXX_USE_CXX11_ABI=${process.env.TORCH_CXX11_ABI}`;
  if (root) {
    // LibTorch records the ABI it was built with in its CMake config.
    const cfg = path.join(root, 'share/cmake/Torch/TorchConfig.cmake');
    if (fs.existsSync(cfg)) {
      const m = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(fs.readFileSync(cfg, 'utf8'));
      if (m) return `-D_GLIBCXX_USE_CXX11_ABI=${m[1]}`;
    }
  }
  return '-D_GLIBCXX_USE_CXX11_ABI=1'; // Debian builds everything with the C++11 ABI
}

// c10d's headers hide each process group behind its USE_C10D_* macro. Gloo is in every libtorch_cpu
// (its headers come from Debian's libgloo-dev or the LibTorch zip); NCCL only in a CUDA LibTorch.
function distFlags() {
  const flags = ['-DUSE_C10D_GLOO'];
  if (root && fs.existsSync(path.join(root, 'lib', 'libtorch_cuda.so'))) flags.push('-DVIT_DFKD_NCCL');
  return flags;
}

function libs() {
  const names = ['torch', 'torch_cpu', 'c10'];
  if (root) {
    const lib = path.join(root, 'lib');
    // A CUDA LibTorch registers its CUDA kernels from these; --no-as-needed keeps them linked.
    for (const extra of ['torch_cuda', 'c10_cuda']) {
      if (fs.existsSync(path.join(lib, `lib${extra}.so`))) names.push(extra);
    }
    return [`-L${lib}`, `-Wl,-rpath,${lib}`, '-Wl,--no-as-needed', ...names.map((n) => `-l${n}`), '-Wl,--as-needed'];
  }
  return ['-Wl,--no-as-needed', ...names.map((n) => `-l${n}`), '-Wl,--as-needed'];
}

function includes() {
  if (root) return [path.join(root, 'include'), path.join(root, 'include/torch/csrc/api/include')];
  return ['/usr/include/torch/csrc/api/include'];
}

if (!root && !fs.existsSync('/usr/include/ATen/ATen.h')) {
  process.stderr.write(
    'vit-dfkd: libtorch headers not found. Run ./setup.sh (installs Debian\'s libtorch-dev) ' +
      'or set LIBTORCH=/path/to/libtorch.\n',
  );
  process.exit(1);
}

switch (what) {
  case '--include': console.log(includes().join(' ')); break;
  case '--cflags': console.log([abiFlag(), ...distFlags()].join(' ')); break;
  case '--libs': console.log(libs().join(' ')); break;
  default: process.stderr.write(`usage: torch-config.cjs --include|--cflags|--libs\n`); process.exit(2);
}
