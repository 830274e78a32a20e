#!/usr/bin/env bash
# Runs bench/gpu.ts on a GPU machine from what scripts/gpu-carry.sh packed into .gpu/: unpacks Node,
# dist/ and node_modules, installs the Vulkan loader if the machine has none, says what GPU and
# Vulkan driver it found, then benches webgpu against wasm and serves on each. Arguments go to the
# bench (defaults below); its JSON and log go to $OUT (or .gpu/out).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-.gpu/out}
mkdir -p "$out" /tmp/gpu-node
xz -dc .gpu/node.xz >/tmp/gpu-node/node && chmod +x /tmp/gpu-node/node
export PATH=/tmp/gpu-node:$PATH
tar -xJf .gpu/app.tar.xz
# Always: a machine with a Vulkan loader may still lack the GL dispatch libraries the driver needs.
for f in .gpu/*.deb; do dpkg -x "$f" /; done
ldconfig
# The NVIDIA driver's Vulkan manifest, where the container mounts the driver outside the usual paths.
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd; break; fi
done
{
  echo "node $(node -v); $(nvidia-smi -L 2>&1 | head -1)"
  echo "vulkan loader: $(ldconfig -p | grep -m1 'libvulkan.so.1' || echo none); driver manifest: ${VK_DRIVER_FILES:-none}"
  node --input-type=module -e "
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    const a = await create([]).requestAdapter();
    console.log('webgpu adapter:', a ? JSON.stringify(a.info ?? {}) : 'none');
  " 2>&1
} | tee "$out/env.txt"
[ $# -gt 0 ] || set -- --backends webgpu,wasm --versions lr-v3,dcn-v2 --batches 1,256,4096,16384,65536 --serve dcn-v2 --catalog 1000
node dist/bench/bench/gpu.js "$@" --out "$out/gpu.json" 2>&1 | tee "$out/gpu.log"
