#!/usr/bin/env bash
# install_into_mongooseim.sh - build this product against a MongooseIM source tree and
# install it into a MongooseIM release, as doc/install.md describes.
#
# usage: scripts/install_into_mongooseim.sh MONGOOSEIM_SRC RELEASE_DIR
#   MONGOOSEIM_SRC  the MongooseIM source tree the release was built from, with its
#                   dependencies compiled (its include/ and the deps' include dirs)
#   RELEASE_DIR     the release (bin/mongooseim, etc/vm.args, lib/), e.g.
#                   MONGOOSEIM_SRC/_build/prod/rel/mongooseim
#
# Steps (doc/install.md): `MONGOOSEIM_DIR=MONGOOSEIM_SRC rebar3 compile` in this
# checkout (the NIF is built by the compile hook, cargo --release); ebin/ and priv/ are
# copied (cp -L) into RELEASE_DIR/lib/mongoose_event_pusher-<vsn>; one line
# `-pa RELEASE_DIR/lib/mongoose_event_pusher-<vsn>/ebin` is added to etc/vm.args (once:
# rerunning replaces the application dir and keeps one line). The node must then be
# restarted. The undo steps are printed at the end.
#
# The dependencies' headers (exml, jid) are looked up where a MongooseIM build puts
# them: _build/default/lib (`./rebar3 compile`), _build/prod/lib (`make rel`), or
# _build/prod/checkouts / _checkouts (an offline build with _checkouts). When they are
# not in _build/default/lib, the build is given a temporary MONGOOSEIM_DIR made of two
# symbolic links (include/ and _build/default/lib), so MONGOOSEIM_SRC is never changed.
#
# Needs rebar3 and erl of the release's OTP major version, and cargo (Rust stable).
# Environment: REBAR3 (default rebar3), SKIP_BUILD=1 (install the existing build).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
usage_error() { usage >&2; printf '\nerror: %s\n' "$*" >&2; exit 2; }
say() { printf '==> %s\n' "$*"; }

case "${1:-}" in -h|--help) usage; exit 0 ;; esac
[ $# -eq 2 ] || usage_error "expected 2 arguments (MONGOOSEIM_SRC RELEASE_DIR), got $#"
[ -d "$1" ] || usage_error "MONGOOSEIM_SRC: $1 is not a directory"
[ -d "$2" ] || usage_error "RELEASE_DIR: $2 is not a directory"
MIM=$(cd "$1" && pwd -P)
REL=$(cd "$2" && pwd -P)
PRODUCT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
APP=mongoose_event_pusher
REBAR3=${REBAR3:-rebar3}

# --- checks ---------------------------------------------------------------------------
[ -f "$MIM/include/mongoose.hrl" ] ||
  die "$MIM is not a MongooseIM source tree (no include/mongoose.hrl)"
[ -f "$REL/etc/vm.args" ] || die "$REL is not a MongooseIM release (no etc/vm.args)"
[ -x "$REL/bin/mongooseim" ] || die "$REL is not a MongooseIM release (no bin/mongooseim)"
[ -d "$REL/lib" ] || die "$REL is not a MongooseIM release (no lib/)"
[ -f "$PRODUCT/erlang/src/$APP.app.src" ] || die "$PRODUCT is not the product's checkout"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  command -v "$REBAR3" >/dev/null || die "no rebar3 on PATH (set REBAR3)"
  command -v cargo >/dev/null || die "no cargo on PATH (the NIF is Rust: install Rust stable)"
fi
command -v erl >/dev/null || die "no erl on PATH"

# Where the MongooseIM build put its dependencies (exml and jid: jlib.hrl includes them).
DEPS=""
for d in _build/default/lib _build/prod/lib _build/prod/checkouts _checkouts; do
  if [ -f "$MIM/$d/exml/include/exml.hrl" ] && [ -d "$MIM/$d/jid" ]; then DEPS=$d; break; fi
done
[ -n "$DEPS" ] || die "no compiled dependencies in $MIM (looked for exml/include/exml.hrl and jid/" \
  "under _build/default/lib, _build/prod/lib, _build/prod/checkouts, _checkouts):" \
  "run './rebar3 compile' or 'make rel' in $MIM first"

# Same OTP major as the release: its erts-<vsn> dir against the erl used here.
rel_erts=$(find "$REL" -maxdepth 1 -name 'erts-*' -printf '%f\n' | sed 's/^erts-//' | head -1)
our_erts=$(erl -noshell -eval 'io:put_chars(erlang:system_info(version)), halt().')
our_otp=$(erl -noshell -eval 'io:put_chars(erlang:system_info(otp_release)), halt().')
if [ -n "$rel_erts" ] && [ "${rel_erts%%.*}" != "${our_erts%%.*}" ]; then
  die "the release runs erts $rel_erts, this erl is erts $our_erts (OTP $our_otp):" \
    "build with the release's OTP major version (doc/install.md, 'What you need')"
fi

# --- build against the MongooseIM tree ------------------------------------------------
TMP=""
trap '[ -z "$TMP" ] || rm -rf "$TMP"' EXIT
if [ "$DEPS" = _build/default/lib ]; then
  MIMDIR=$MIM
else
  # rebar.config.script adds $MONGOOSEIM_DIR/include and $MONGOOSEIM_DIR/_build/default/lib.
  TMP=$(mktemp -d)
  mkdir -p "$TMP/mim/_build/default"
  ln -s "$MIM/include" "$TMP/mim/include"
  ln -s "$MIM/$DEPS" "$TMP/mim/_build/default/lib"
  MIMDIR=$TMP/mim
fi
OUT=$PRODUCT/_build/default/lib/$APP
if [ "${SKIP_BUILD:-0}" = 1 ]; then
  say "SKIP_BUILD=1: installing the existing build in $OUT"
else
  say "building $PRODUCT against $MIM (OTP $our_otp; dependency headers from $MIM/$DEPS)"
  # A fresh compile: beams built against other headers (mim_host/include) are not reused.
  rm -rf "$OUT/ebin"
  (cd "$PRODUCT" && MONGOOSEIM_DIR="$MIMDIR" "$REBAR3" compile) ||
    die "the build failed (see above): MONGOOSEIM_DIR=$MIMDIR $REBAR3 compile in $PRODUCT"
fi
[ -f "$OUT/ebin/$APP.app" ] || die "no $OUT/ebin/$APP.app: the product is not built"
[ -f "$OUT/priv/event_pusher_nif.so" ] || die "no $OUT/priv/event_pusher_nif.so: the NIF is not built"
VSN=$(sed -n 's/.*{vsn, *"\([^"]*\)"}.*/\1/p' "$OUT/ebin/$APP.app" | head -1)
[ -n "$VSN" ] || die "no vsn in $OUT/ebin/$APP.app"

# --- put it into the release ----------------------------------------------------------
APPDIR=$REL/lib/$APP-$VSN
say "installing into $APPDIR"
# Staged, then renamed: a running node that has the old NIF loaded keeps its copy.
rm -rf "$REL/lib/.$APP".*
stage=$(mktemp -d "$REL/lib/.$APP.XXXXXX")
cp -rL "$OUT/ebin" "$OUT/priv" "$stage/"
chmod 755 "$stage"
for old in "$REL/lib/$APP"-*; do
  [ -d "$old" ] && mv "$old" "$stage.old.$(basename "$old")"
done
mv "$stage" "$APPDIR"
rm -rf "$stage".old.*
echo "    $(find "$APPDIR/ebin" -name '*.beam' | wc -l) modules, priv: $(ls "$APPDIR/priv" | tr '\n' ' ')"

ARGS=$REL/etc/vm.args
LINE="-pa $APPDIR/ebin"
if grep -qxF -- "$LINE" "$ARGS"; then
  say "etc/vm.args already has: $LINE"
else
  [ -f "$ARGS.orig-$APP" ] || cp -p "$ARGS" "$ARGS.orig-$APP"
  # A line of another version of the product goes.
  sed -i "\\#^-pa .*/lib/$APP-[^/]*/ebin\$#d" "$ARGS"
  printf '%s\n' "$LINE" >> "$ARGS"
  say "added to $ARGS: $LINE   (copy of the file before: $ARGS.orig-$APP)"
fi

cat <<EOF

Installed $APP $VSN into $REL.
Restart the node to load it:
  $REL/bin/mongooseimctl stop; $REL/bin/mongooseim start
Check it (in $REL/bin/mongooseimctl debug):
  code:which(mod_event_pusher_http).       %% $APPDIR/ebin/...
  code:priv_dir($APP).         %% $APPDIR/priv
To undo (MongooseIM's own modules come back after the restart):
  sed -i '\\#^-pa $APPDIR/ebin\$#d' $ARGS
  rm -rf $APPDIR
  $REL/bin/mongooseimctl stop; $REL/bin/mongooseim start
EOF
