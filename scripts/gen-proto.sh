#!/usr/bin/env bash
# Generates typed TypeScript (ts-proto, grpc-js services) from proto/*.proto into proto/gen.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf proto/gen
mkdir -p proto/gen
# Options beyond the basics:
#   forceLong=number           64-bit ints as number (indexes/terms stay < 2^53; decode throws beyond);
#                              database.proto carries wider SQLite integers as Value.big_integer strings.
#   oneof=unions-value         oneofs as {$case, value} unions, so switches are exhaustive.
#   removeEnumPrefix=true      MessageType.APPEND rather than MessageType.MESSAGE_TYPE_APPEND.
#   annotateFilesWithVersion=false  no protoc version in headers: CI's "proto/gen is stale"
#                              check must not depend on which protoc the machine has.
shopt -s nullglob
files=(proto/*.proto)
[ ${#files[@]} -gt 0 ] || exit 0
protoc \
  --plugin=protoc-gen-ts_proto=node_modules/.bin/protoc-gen-ts_proto \
  --ts_proto_out=proto/gen \
  --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,env=node,forceLong=number,useOptionals=messages,importSuffix=.js,useExactTypes=false,oneof=unions-value,removeEnumPrefix=true,annotateFilesWithVersion=false \
  -I proto "${files[@]}"
