#!/bin/sh
# The build steps of the container images. The Dockerfiles run exactly this script, and so do
# the tests (operator/controller/tests/images.rs), since no container engine runs on CI.
#
# Usage: docker/build.sh operator|megalis OUT_DIR
#   MEGALIS_PROFILE        cargo profile, release by default (the tests use dev)
#   MEGALIS_IMAGE_PLUGINS  plugin packages to bundle (default: every plugin of plugins/ except
#                          the SDK, the template and the test plugins)
set -eu
cargo=${CARGO:-cargo}

what=$1
out=$2
profile=${MEGALIS_PROFILE:-release}
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
case $profile in dev) profile_dir=debug ;; *) profile_dir=$profile ;; esac
mkdir -p "$out"

case $what in
operator)
    "$cargo" build --locked --profile "$profile" -p megalis-operator --bin megalis-operator
    install -m 0755 "$target_dir/$profile_dir/megalis-operator" "$out/megalis-operator"
    ;;
megalis)
    "$cargo" build --locked --profile "$profile" -p megalis-server --bin megalis
    install -m 0755 "$target_dir/$profile_dir/megalis" "$out/megalis"

    if [ -z "${MEGALIS_IMAGE_PLUGINS+set}" ]; then
        MEGALIS_IMAGE_PLUGINS=""
        for manifest in plugins/*/Cargo.toml; do
            case $manifest in plugins/sdk/* | plugins/template/*) continue ;; esac
            name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -n 1)
            MEGALIS_IMAGE_PLUGINS="$MEGALIS_IMAGE_PLUGINS $name"
        done
    fi
    mkdir -p "$out/plugins"
    : > "$out/plugins/index.txt"
    for package in $MEGALIS_IMAGE_PLUGINS; do
        # Flags meant for the host build (coverage, sanitizers) must not reach wasm32.
        env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_TARGET \
            "$cargo" build --locked --profile "$profile" --manifest-path plugins/Cargo.toml \
            --target wasm32-wasip2 --target-dir "$target_dir/plugins" -p "$package"
        module="$target_dir/plugins/wasm32-wasip2/$profile_dir/$(echo "$package" | tr - _).wasm"
        # Content-addressed like the modules the operator fetches: <sha256>.wasm.
        digest=$(sha256sum "$module" | cut -c1-64)
        install -m 0644 "$module" "$out/plugins/$digest.wasm"
        echo "$package $digest" >> "$out/plugins/index.txt"
    done
    ;;
*)
    echo "usage: $0 operator|megalis OUT_DIR" >&2
    exit 2
    ;;
esac
