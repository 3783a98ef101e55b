#!/usr/bin/env bash
# Regenerate the committed Swift protobuf + gRPC code for meshca's wire protocols.
#
#   Input:  Sources/MeshCATransport/Protos/ca.proto        (Istio CA, istio.v1.auth.IstioCertificateService)
#           Sources/MeshCATransport/Protos/workload.proto  (SPIFFE Workload API, bare SpiffeWorkloadAPI)
#           Sources/MeshCATransport/Protos/health.proto    (gRPC health checking, grpc.health.v1.Health)
#   Output: Sources/MeshCATransport/Generated/{ca,workload,health}.{pb,grpc}.swift
#
# When to run: after editing any .proto in Protos/, or after bumping swift-protobuf /
# grpc-swift-protobuf in Package.swift (then update the pinned versions below to match, so the
# generated code matches the runtime it is compiled against). Commit the regenerated files.
# Usage, from the repository root:  scripts/gen-proto.sh
#
# Why not SwiftPM's build plugin (GRPCProtobufGenerator / SwiftProtobufPlugin): those plugins
# depend on swift-protobuf's vendored `protoc` executable product, so SwiftPM compiles protoc and
# its C++ dependencies (abseil, upb, protobuf) on every clean build -- about 20 minutes -- even
# when the plugin config points at a system protoc. Instead we build only the two small code
# generator plugins, in a throwaway scratch package, and drive the system protoc ourselves.
#
# Requirements: swift, protoc (Debian: apt-get install protobuf-compiler libprotobuf-dev;
# protoc finds google/protobuf/struct.proto in /usr/include on its own).
# Environment: PROTOGEN_DIR=<dir> reuses/keeps a scratch package there (faster reruns);
# otherwise a temporary one is created and deleted.
set -euo pipefail

# Keep these in step with the runtime libraries the generated code is compiled against.
SWIFT_PROTOBUF_VERSION="1.39.0"
GRPC_SWIFT_PROTOBUF_VERSION="2.4.1"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROTO_DIR="$REPO_ROOT/Sources/MeshCATransport/Protos"
OUT_DIR="$REPO_ROOT/Sources/MeshCATransport/Generated"
PROTOS=(ca.proto workload.proto health.proto)

command -v protoc >/dev/null || { echo "error: protoc not found (apt-get install protobuf-compiler libprotobuf-dev)" >&2; exit 1; }
command -v swift  >/dev/null || { echo "error: swift not found" >&2; exit 1; }

if [[ -n "${PROTOGEN_DIR:-}" ]]; then
  SCRATCH="$PROTOGEN_DIR"
  mkdir -p "$SCRATCH"
else
  SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/meshca-protogen.XXXXXX")"
  trap 'rm -rf "$SCRATCH"' EXIT
fi

# 1. Build protoc-gen-swift and protoc-gen-grpc-swift-2 from the pinned package versions.
cat > "$SCRATCH/Package.swift" <<SWIFT
// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "meshca-protogen",
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "$GRPC_SWIFT_PROTOBUF_VERSION"),
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "$SWIFT_PROTOBUF_VERSION"),
    ],
    targets: []
)
SWIFT

echo "==> building code generator plugins in $SCRATCH"
(
  cd "$SCRATCH"
  swift build -c release --product protoc-gen-swift
  swift build -c release --product protoc-gen-grpc-swift-2
)
BIN="$(cd "$SCRATCH" && swift build -c release --show-bin-path)"

# 2. Generate. Public visibility so other targets can use the types and service protocols.
echo "==> generating with $(protoc --version) into ${OUT_DIR#"$REPO_ROOT"/}"
mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR"/*.pb.swift "$OUT_DIR"/*.grpc.swift
protoc -I "$PROTO_DIR" \
  --plugin=protoc-gen-swift="$BIN/protoc-gen-swift" \
  --swift_out="$OUT_DIR" \
  --swift_opt=Visibility=Public \
  --plugin=protoc-gen-grpc-swift-2="$BIN/protoc-gen-grpc-swift-2" \
  --grpc-swift-2_out="$OUT_DIR" \
  --grpc-swift-2_opt=Visibility=Public \
  "${PROTOS[@]/#/$PROTO_DIR/}"

ls -1 "$OUT_DIR"
echo "==> done; review and commit Sources/MeshCATransport/Generated/"
