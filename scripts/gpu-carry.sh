#!/usr/bin/env bash
# Packs what `npm run bench:gpu` needs on a GPU machine that has no npm registry and no Node into
# .gpu/ (ignored), small enough to travel beside the working tree (under 64 MiB with it):
#   node.xz        this machine's Node binary
#   app.tar.xz     dist/ and a production node_modules with the WebGPU packages, pruned to what
#                  Node loads on linux-x64 (one uWS binary, one dawn.node, the tfjs packages' node
#                  builds and wasm files)
#   *.deb          the Vulkan loader Dawn opens and the GL dispatch libraries NVIDIA's Vulkan driver
#                  links against (the GPU image mounts the driver but may lack them)
# On the GPU machine: scripts/gpu-run.sh. The WebGPU packages are not dependencies of the project
# (webgpu ships Dawn for five platforms, 130 MB): install them the same way to serve on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
WEBGPU=webgpu@0.6.2
TFJS_WEBGPU=@tensorflow/tfjs-backend-webgpu@4.22.0
out=.gpu
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

npm run build >/dev/null
npx tsc --module nodenext --moduleResolution nodenext --target es2022 --types node --skipLibCheck --strict --rootDir . --outDir dist/bench bench/gpu.ts

cp package.json package-lock.json "$stage/"
(cd "$stage" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null && npm install --no-save --omit=dev --ignore-scripts --no-audit --no-fund "$WEBGPU" "$TFJS_WEBGPU" >/dev/null)
nm="$stage/node_modules"
abi=$(node -p process.versions.modules)
find "$nm/uWebSockets.js" -name '*.node' ! -name "uws_linux_x64_${abi}.node" -delete
find "$nm/webgpu/dist" -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} +
# The tfjs packages hold a dozen builds each; Node loads `main` (and the wasm backend its .wasm files).
for pkg in "$nm"/@tensorflow/*; do
  main=$(node -p "require('$pkg/package.json').main")
  find "$pkg/dist" -type f ! -path "$pkg/$main" ! -name '*.wasm' ! -name '*.worker.js' -delete
done
find "$nm" \( -name '*.map' -o -name '*.d.ts' -o -name '*.md' -o -name '*.ts' \) -type f -delete
rm -rf "$nm/@types"

mkdir -p "$out"
rm -f "$out"/*
cp -r dist "$stage/dist"
tar -C "$stage" -cJf "$out/app.tar.xz" dist node_modules
xz -T0 -6 -c "$(command -v node)" >"$out/node.xz"
# The loader and the GL dispatch libraries the NVIDIA Vulkan driver links against.
(cd "$out" && apt-get download libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libopengl0 >/dev/null 2>&1) || echo "gpu-carry: apt-get download of the Vulkan loader failed; the GPU machine must have its own" >&2
du -ch "$out"/* | sed 's/^/gpu-carry: /'
