#!/usr/bin/env bash
# The demo: installs what is missing, starts the services, builds (NIF
# included), then boots a node with the MongooseIM test host and
# examples/mongooseim.toml, plays users going online, chatting in private and
# in a room and going offline, and prints what each backend's server received
# (the HTTP sink, RabbitMQ, moto's SNS, a pubsub service, a MongoosePush
# stand-in on 127.0.0.1:8443).
#
# Usage: scripts/demo.sh [CONFIG]     (default: examples/mongooseim.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-examples/mongooseim.toml}
export REBAR_COLOR=none

bash scripts/setup.sh
echo "[demo] building (rebar3 as test compile: the NIF, the app and the test host)" >&2
rebar3 as test compile

# The demo reads RabbitMQ with Erlang's amqp_client, which Debian's
# rabbitmq-server ships with what it needs (the same libraries
# rebar.config.script gives test runs, after OTP's own; the product uses
# none of them).
rabbit_libs=()
for lib in amqp_client rabbit_common credentials_obfuscation jsx recon; do
    for dir in /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/"$lib"-*/ebin; do
        if [ -d "$dir" ]; then rabbit_libs+=(-pz "$dir"); fi
    done
done

# The app (its priv/ holds the NIF) and the test host's modules. No
# distribution: the node opens no port of its own.
exec erl -noshell -noinput \
    -pa _build/test/lib/*/ebin \
    -pa _build/test/extras/mim_host \
    -pa _build/test/extras/test \
    -pa _build/test/extras/demo \
    "${rabbit_libs[@]}" \
    -run ep_demo main "$config"
