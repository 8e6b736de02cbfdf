#!/bin/sh
# Regenerate tostatic/serialization/framework_pb2.py from framework.proto.
# protoc 3.21 gencode runs on the protobuf runtime 3.20 through 7.x, so keep using 3.21.
# The proto is compiled from the repository root so that its descriptor-pool name is
# "tostatic/serialization/framework.proto" (unique; never clashes with paddle's copy).
set -eu
cd "$(dirname "$0")/.."
PROTOC="${PROTOC:-/usr/bin/protoc}"
"$PROTOC" --version
"$PROTOC" --proto_path=. --python_out=. tostatic/serialization/framework.proto
