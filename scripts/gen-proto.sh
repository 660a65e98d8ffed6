#!/usr/bin/env bash
# Generates typed TypeScript (ts-proto, grpc-js services) from proto/*.proto into proto/gen.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf proto/gen
mkdir -p proto/gen
shopt -s nullglob
files=(proto/*.proto)
[ ${#files[@]} -gt 0 ] || exit 0
protoc \
  --plugin=protoc-gen-ts_proto=node_modules/.bin/protoc-gen-ts_proto \
  --ts_proto_out=proto/gen \
  --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,env=node,forceLong=number,useOptionals=messages,importSuffix=.js,useExactTypes=false \
  -I proto "${files[@]}"
