#!/bin/sh
# Builds the Rustler NIF in release mode and puts it where code:priv_dir/1 finds it.
set -e
cd "$(dirname "$0")/.."
cargo build --release -p event_pusher_nif --quiet
# CARGO_TARGET_DIR: a target dir shared by several checkouts (cargo's own variable).
lib=${CARGO_TARGET_DIR:-target}/release/libevent_pusher_nif.so
mkdir -p erlang/priv
# A new file renamed into place: a VM that has the old library loaded keeps
# its (unlinked) copy instead of crashing on a library rewritten under it.
if ! cmp -s "$lib" erlang/priv/event_pusher_nif.so; then
    cp -f "$lib" erlang/priv/.event_pusher_nif.so.tmp
    mv -f erlang/priv/.event_pusher_nif.so.tmp erlang/priv/event_pusher_nif.so
fi
