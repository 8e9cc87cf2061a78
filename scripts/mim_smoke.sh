#!/usr/bin/env bash
# mim_smoke.sh - smoke test of a running MongooseIM with this product's modules: registers
# two users, one sends the other a chat message, and each event pusher backend that the
# running config enables is checked at its other end. One line per backend: OK or FAIL
# and what arrived. Exit status 0 only if every enabled backend got the message.
#
# usage: scripts/mim_smoke.sh [MONGOOSEIM_TOML]
#   MONGOOSEIM_TOML  the running node's config (default: $MIM_REL/etc/mongooseim.toml);
#                    read to find the enabled backends and where they send
#
# Environment:
#   MIM_REL      the release directory (default: /build/mim-product, the kit's product)
#   MIM_ENV      the real-mongooseim kit's chroot: when set, mongooseimctl runs inside it
#                (chroot $MIM_ENV $MIM_REL/bin/mongooseimctl) and MIM_REL is a path in it
#   MIM_CTL      the whole mongooseimctl command (overrides the two above), e.g.
#                "sudo -u mongooseim /usr/lib/mongooseim/bin/mongooseimctl"
#   XMPP_HOST XMPP_PORT XMPP_DOMAIN   the c2s listener (127.0.0.1 5222 localhost)
#   SMOKE_USERS  two user names (default "smoke_alice smoke_bob"); XMPP_PASSWORD (secret)
#   SMOKE_WAIT   seconds to wait for the backends (10)
#
# What it starts (the config must point there; examples/mongooseim.toml does):
#   http    an HTTP sink on the loopback port of the http handler's pool
#           (outgoing_pools.http.<pool_name>.connection.host, e.g. http://127.0.0.1:8089)
#   rabbit  an exclusive queue bound with '#' to the configured presence and chat
#           exchanges, on the broker of outgoing_pools.rabbit.event_pusher
#   sns     on moto (sns_host, plain http, e.g. http://127.0.0.1:4566): creates the
#           pm_messages_topic if absent and subscribes a new SQS queue to it (raw delivery)
#   push    with mod_push_service_mongoosepush and a virtual pubsub host: a MongoosePush
#           stand-in on the loopback port of its pool; the recipient enables push there,
#           goes offline, and a second message must be notified
# The c2s listener must offer SASL PLAIN on a plain connection (MongooseIM's default
# config does; no TLS is used) and c2s traffic must not be throttled below a few stanzas.
#
# Needs python3 >= 3.11 (stdlib only: the XMPP, HTTP, AMQP and AWS-query clients are in
# bench/e2e/e2e.py; on Debian 12: apt-get install python3). Everything talks to the
# addresses of the config and the c2s listener above; use loopback ones.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
[ $# -le 1 ] || { usage >&2; die "at most one argument (the config)"; }

MIM_REL=${MIM_REL:-/build/mim-product}
if [ -n "${MIM_CTL:-}" ]; then
  read -r -a CTL <<<"$MIM_CTL"
elif [ -n "${MIM_ENV:-}" ]; then
  [ -x "$MIM_ENV$MIM_REL/bin/mongooseimctl" ] || die "no $MIM_ENV$MIM_REL/bin/mongooseimctl (MIM_ENV, MIM_REL)"
  CTL=(chroot "$MIM_ENV" /usr/bin/env -i HOME=/root LANG=C.UTF-8
       PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$MIM_REL/bin/mongooseimctl")
else
  [ -x "$MIM_REL/bin/mongooseimctl" ] || die "no $MIM_REL/bin/mongooseimctl: set MIM_REL, MIM_ENV or MIM_CTL"
  CTL=("$MIM_REL/bin/mongooseimctl")
fi
CONFIG=${1:-${MIM_ENV:-}$MIM_REL/etc/mongooseim.toml}
[ -f "$CONFIG" ] || die "no config at $CONFIG (give the running node's mongooseim.toml)"
command -v python3 >/dev/null || die "no python3 (Debian: apt-get install python3; 3.11 or later)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  die "python3 is older than 3.11 (tomllib is needed)"

DOMAIN=${XMPP_DOMAIN:-localhost}
PASSWORD=${XMPP_PASSWORD:-secret}
read -r -a USERS <<<"${SMOKE_USERS:-smoke_alice smoke_bob}"
[ "${#USERS[@]}" -eq 2 ] || die "SMOKE_USERS must name two users"

status=$("${CTL[@]}" status 2>&1) || die "the node does not answer (${CTL[*]} status): $status"
for u in "${USERS[@]}"; do
  out=$("${CTL[@]}" account registerUser --domain "$DOMAIN" --username "$u" --password "$PASSWORD" 2>&1) ||
    grep -qi 'exist' <<<"$out" || die "registering $u@$DOMAIN failed: $out"
done
echo "users ${USERS[0]}@$DOMAIN and ${USERS[1]}@$DOMAIN registered (password $PASSWORD)"

exec python3 "$ROOT/bench/e2e/e2e.py" smoke "$CONFIG" --users "${USERS[@]}" \
  --domain "$DOMAIN" --password "$PASSWORD" --wait "${SMOKE_WAIT:-10}"
