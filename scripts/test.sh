#!/usr/bin/env bash
# Runs every test: installs what is missing and starts the services
# (scripts/setup.sh), then `cargo test --workspace`, the static checks
# (`rebar3 as test xref`, `cargo clippy`) and `rebar3 ct` once per suite (one
# VM each, so a suite that brings its node down cannot hide the results of the
# others): first the host emulation's own suites (mim_host/test), then the
# product's (test/), so that the summary says which of the two broke. Prints a
# summary and exits non-zero if the build, a check or any suite fails.
#
# Usage: scripts/test.sh [--ct-only | --cargo-only] [SUITE...]
#   SUITE: a suite name (mod_event_pusher_http_SUITE) to run only those.
# Env:   EP_SUITE_TIMEOUT  seconds one suite may take (default 1200)
#        EP_DIALYZER=no    skip dialyzer (run on erlang/src in a full run)
# Logs:  _build/test-logs/ (one file per runner), CT's HTML under _build/test/logs.
set -uo pipefail
cd "$(dirname "$0")/.."

run_cargo=yes
run_ct=yes
suites=()
full_run=yes   # no suite named: dialyzer runs too
for arg in "$@"; do
    case "$arg" in
        --ct-only) run_cargo=no; full_run=no ;;
        --cargo-only) run_ct=no ;;
        -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
        -*) echo "unknown option $arg" >&2; exit 2 ;;
        *) suites+=("$(basename "${arg%.erl}")"); full_run=no ;;
    esac
done

SUITE_TIMEOUT=${EP_SUITE_TIMEOUT:-1200}
LOG_DIR=_build/test-logs
export REBAR_COLOR=none CARGO_TERM_COLOR=never
started=$SECONDS

log() { printf '[test] %s\n' "$*" >&2; }
strip_ansi() { sed -e 's/\x1b\[[0-9;]*m//g' -e 's/[[:space:]]*$//'; }

bash scripts/setup.sh || { log "setup failed"; exit 1; }
# setup.sh started RabbitMQ and moto: the Rust tests that need them must run,
# not skip, from here on.
export EP_REQUIRE_RABBIT=1 EP_REQUIRE_MOTO=1
mkdir -p "$LOG_DIR"

total_passed=0 total_failed=0 total_skipped=0 any_failed=no
summary=()   # one line per runner

record() { # name status passed failed skipped closing-line
    total_passed=$((total_passed + $3))
    total_failed=$((total_failed + $4))
    total_skipped=$((total_skipped + $5))
    [ "$2" = ok ] || any_failed=yes
    summary+=("$(printf '%-62s %-7s %s passed, %s failed, %s skipped   | %s' "$1" "$2" "$3" "$4" "$5" "$6")")
}

# --- cargo test ---------------------------------------------------------------
if [ $run_cargo = yes ]; then
    log "cargo test"
    t0=$SECONDS
    cargo test --workspace 2>&1 | tee "$LOG_DIR/cargo.log"
    rc=${PIPESTATUS[0]}
    # One "test result:" line per test binary and doc-test run.
    read -r p f s < <(strip_ansi <"$LOG_DIR/cargo.log" | awk '
        /^test result:/ { for (i = 1; i <= NF; i++) {
            if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
        END { print p+0, f+0, s+0 }')
    closing=$(strip_ansi <"$LOG_DIR/cargo.log" | grep '^test result:' | tail -n 1)
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; closing="cargo test exited $rc: ${closing:-no test result (build failed?)}"; fi
    if [ "$rc" -eq 0 ]; then st=ok; else st=FAILED; fi
    record "cargo test --workspace ($((SECONDS - t0))s)" "$st" "$p" "$f" "$s" "$closing"
    if cargo clippy --version >/dev/null 2>&1; then
        log "cargo clippy"
        t0=$SECONDS
        if cargo clippy --workspace --all-targets --quiet -- -D warnings 2>&1 | tee "$LOG_DIR/clippy.log"; [ "${PIPESTATUS[0]}" -ne 0 ]; then
            record "check: cargo clippy --workspace ($((SECONDS - t0))s)" FAILED 0 1 0 "$(strip_ansi <"$LOG_DIR/clippy.log" | grep -m1 -E '^(error|warning)' )"
        else
            record "check: cargo clippy --workspace ($((SECONDS - t0))s)" ok 1 0 0 "no warnings"
        fi
    else
        log "cargo clippy is not installed: skipped (rustup component add clippy)"
    fi
fi

# --- rebar3 ct, one run per suite --------------------------------------------
# Parses rebar3's closing line: "All 5 tests passed." or
# "Failed 1 tests. Skipped 3 (1, 2) tests. Passed 4 tests."
ct_counts() {
    awk '
        /^All [0-9]+ tests passed\./ { p = $2 }
        /^Failed [0-9]+ tests\./ || /Skipped [0-9]+ \(/ || /Passed [0-9]+ tests\./ {
            for (i = 1; i <= NF; i++) {
                if ($i == "Failed") f = $(i+1)
                if ($i == "Passed") p = $(i+1)
                if ($i == "Skipped") { gsub(/[(,]/, "", $(i+2)); gsub(/[),]/, "", $(i+3)); us = $(i+2); as = $(i+3) }
            } }
        END { print p+0, f+0, us+0, as+0 }'
}

# Where a suite lives: mim_host/test (the host emulation) or test (the product).
suite_dir() {
    if [ -e "mim_host/test/$1.erl" ]; then echo mim_host/test; else echo test; fi
}
suite_label() {
    if [ "$(suite_dir "$1")" = mim_host/test ]; then echo "[host emulation] $1"; else echo "[product] $1"; fi
}

if [ $run_ct = yes ]; then
    if [ ${#suites[@]} -eq 0 ]; then
        for f in mim_host/test/*_SUITE.erl test/*_SUITE.erl; do
            [ -e "$f" ] && suites+=("$(basename "$f" .erl)")
        done
    fi
    if [ ${#suites[@]} -eq 0 ]; then
        log "no common_test suite (mim_host/test/*_SUITE.erl, test/*_SUITE.erl) found"
        record "rebar3 ct" FAILED 0 1 0 "no suite found"
    else
        # Build once (NIF through the pre_hook, the app, mim_host, test) so that a
        # build failure is reported once and not as every suite failing.
        log "rebar3 as test compile"
        t0=$SECONDS
        if rebar3 as test compile 2>&1 | tee "$LOG_DIR/build.log" | strip_ansi; [ "${PIPESTATUS[0]}" -ne 0 ]; then
            record "build: rebar3 as test compile ($((SECONDS - t0))s)" FAILED 0 1 0 "$(strip_ansi <"$LOG_DIR/build.log" | grep -v '^\s*$' | tail -n 1)"
        else
            # A call to a function that neither OTP, the app nor the host
            # emulation has (xref), caught before any suite runs.
            log "rebar3 as test xref"
            t0=$SECONDS
            if rebar3 as test xref 2>&1 | tee "$LOG_DIR/xref.log" | strip_ansi; [ "${PIPESTATUS[0]}" -ne 0 ]; then
                record "check: rebar3 as test xref ($((SECONDS - t0))s)" FAILED 0 1 0 "$(strip_ansi <"$LOG_DIR/xref.log" | grep -v '^\s*$' | tail -n 1)"
            else
                record "check: rebar3 as test xref ($((SECONDS - t0))s)" ok 1 0 0 "no undefined calls"
            fi
            # Dialyzer on the product's modules (erlang/src): the emulation's
            # and the suites' own warnings (deliberate bad calls, meck) are
            # not counted. Only in a full run: a cold PLT takes minutes.
            if [ $full_run = yes ] && [ "${EP_DIALYZER:-yes}" != no ]; then
                log "rebar3 as test dialyzer (erlang/src)"
                t0=$SECONDS
                rebar3 as test dialyzer >"$LOG_DIR/dialyzer.log" 2>&1
                strip_ansi <"$LOG_DIR/dialyzer.log" >"$LOG_DIR/dialyzer.txt"
                warnings=$(awk '/^[^ ]/ && !/^Line / { f = $0 } /^Line / && f ~ /^erlang\/src\// { print f ": " $0 }' "$LOG_DIR/dialyzer.txt")
                # (grep on a file: in a pipe under pipefail, grep -q's early
                # exit would fail the pipe.)
                if ! grep -q 'Analyzing [0-9]* files' "$LOG_DIR/dialyzer.txt"; then
                    record "check: dialyzer, erlang/src ($((SECONDS - t0))s)" FAILED 0 1 0 "$(strip_ansi <"$LOG_DIR/dialyzer.log" | grep -v '^\s*$' | tail -n 1)"
                elif [ -n "$warnings" ]; then
                    printf '%s\n' "$warnings"
                    record "check: dialyzer, erlang/src ($((SECONDS - t0))s)" FAILED 0 1 0 "$(printf '%s\n' "$warnings" | head -n 1)"
                else
                    record "check: dialyzer, erlang/src ($((SECONDS - t0))s)" ok 1 0 0 "no warnings in the product's modules"
                fi
            fi
            for suite in "${suites[@]}"; do
                log "rebar3 ct --dir $(suite_dir "$suite") --suite $suite"
                t0=$SECONDS
                timeout --kill-after=30 "$SUITE_TIMEOUT" \
                    rebar3 ct --dir "$(suite_dir "$suite")" --suite "$suite" </dev/null 2>&1 | tee "$LOG_DIR/$suite.log"
                rc=${PIPESTATUS[0]}
                read -r p f us as < <(strip_ansi <"$LOG_DIR/$suite.log" | ct_counts)
                # rebar3 fails a run with auto-skipped cases (a failed init_per_*): count them as failed.
                f=$((f + as))
                closing=$(strip_ansi <"$LOG_DIR/$suite.log" | grep -E '^(All [0-9]+ tests passed|Failed [0-9]+ tests|Skipped [0-9]+ \(|Passed [0-9]+ tests)' | tail -n 1)
                if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
                    closing="timed out after ${SUITE_TIMEOUT}s"
                fi
                if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
                    f=1
                    [ -n "$closing" ] || closing="rebar3 ct exited $rc: $(strip_ansi <"$LOG_DIR/$suite.log" | grep -v '^\s*$' | tail -n 1)"
                fi
                if [ "$rc" -eq 0 ]; then st=ok; else st=FAILED; fi
                record "$(suite_label "$suite") ($((SECONDS - t0))s)" "$st" "$p" "$f" "$us" "$closing"
            done
        fi
    fi
fi

# --- summary ------------------------------------------------------------------
echo
echo "==================== test summary ($((SECONDS - started))s) ===================="
printf '%s\n' "${summary[@]}"
echo "logs: $LOG_DIR/, common_test HTML: _build/test/logs/index.html"
echo
echo "total: $total_passed passed, $total_failed failed, $total_skipped skipped"
[ $any_failed = no ]
