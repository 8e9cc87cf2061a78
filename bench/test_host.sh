# Sourced by the bench scripts: `test_host_ebin DIR` copies the beams of the
# MongooseIM host emulation (mim_host/) and of the test helpers (test/support)
# that `rebar3 as test compile` built into one directory DIR, and checks that
# they are there. A copy, so that a rebuild while a bench runs (another
# checkout's test run, say) does not change the code under it.
test_host_ebin() {
    local dest=$1 tree dir
    rm -rf "$dest" && mkdir -p "$dest"
    for tree in mim_host test; do
        dir="$ROOT/_build/test/extras/$tree"
        [ -d "$dir" ] || { echo "the test host's beams are not in $dir (run: rebar3 as test compile)" >&2; return 1; }
        find "$dir" -name '*.beam' -exec cp -f {} "$dest/" \;
    done
    [ -f "$dest/ejabberd_sup.beam" ] && [ -f "$dest/ep_wait.beam" ] \
        || { echo "the test host's beams are incomplete in $dest" >&2; return 1; }
}
