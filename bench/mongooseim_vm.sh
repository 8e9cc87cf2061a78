# Sourced by bench/common.sh. Every BEAM row runs with the emulator
# flags a MongooseIM release starts with (rel/files/vm.args and its
# production vars): ours and MongooseIM's way alike, since the frequent full
# sweeps they ask for are part of what a user's process costs there.
# ERL_FLAGS given by the caller come after them (and win); a caller that
# already put them first (bench/ab_http.sh running scripts/bench_http.sh)
# does not get them twice.
MONGOOSEIM_VM_FLAGS="+P 10000000 -env ERL_MAX_PORTS 250000 -env ERL_FULLSWEEP_AFTER 2"
case "${ERL_FLAGS:-}" in
    "$MONGOOSEIM_VM_FLAGS"*) ;;
    *) export ERL_FLAGS="$MONGOOSEIM_VM_FLAGS${ERL_FLAGS:+ $ERL_FLAGS}" ;;
esac
