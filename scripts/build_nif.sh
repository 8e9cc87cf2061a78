#!/bin/sh
# Builds the Rustler NIF in release mode and puts it where code:priv_dir/1 finds it.
set -e
cd "$(dirname "$0")/.."
cargo build --release -p event_pusher_nif --quiet
mkdir -p erlang/priv
cp -f target/release/libevent_pusher_nif.so erlang/priv/event_pusher_nif.so
