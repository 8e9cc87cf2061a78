%% @doc The disk spool option (ours; doc/durability.md): the `spool' section
%% every backend module has in its own config section (e.g.
%% `[modules.mod_event_pusher.rabbit.spool]'), the NIF map a pool starts
%% with, and the log line a spooled pool's start writes.
%%
%% Pools are shared, so a spool belongs to a pool: its files are in
%% `<directory>/<backend>-<pool>', where `<pool>' is the pool's tag, after
%% its host type for a pool of one host type (a global pool takes the spool
%% of the first host type, in sorted order, whose module configures one).
-module(mongoose_event_pusher_spool).

-include("mongoose.hrl").
-include("mongoose_config_spec.hrl").

-export([config_spec/0, for_pool/4, nif_config/3, log_start/2]).

-type opts() :: #{directory := string(), max_bytes := pos_integer(),
                  fsync := never | interval | always, fsync_interval := pos_integer()}.
-export_type([opts/0]).

%% @doc `directory' and `max_bytes' are required; `fsync' defaults to
%% `interval' with `fsync_interval' 1000 ms.
-spec config_spec() -> mongoose_config_spec:config_section().
config_spec() ->
    #section{items = #{<<"directory">> => #option{type = string, validate = non_empty},
                       <<"max_bytes">> => #option{type = integer, validate = positive},
                       <<"fsync">> => #option{type = atom,
                                              validate = {enum, [never, interval, always]}},
                       <<"fsync_interval">> => #option{type = integer, validate = positive}},
             required = [<<"directory">>, <<"max_bytes">>],
             defaults = #{<<"fsync">> => interval, <<"fsync_interval">> => 1000}}.

%% @doc The spool options for a pool of `Scope' used by `Module', if any.
-spec for_pool(module(), global | host_type | mongooseim:host_type(), atom(), atom()) ->
          {ok, opts(), binary()} | none.
for_pool(Module, Scope, Backend, Tag) ->
    ByHostType = modules_opts(Module),
    Candidates = case Scope of
                     global -> lists:sort(maps:to_list(ByHostType));
                     HostType -> [{HostType, maps:get(HostType, ByHostType, #{})}]
                 end,
    case [Spool || {_, #{spool := Spool}} <- Candidates] of
        [Spool | _] -> {ok, Spool, pool_dir_name(Backend, Scope, Tag)};
        [] -> none
    end.

%% @doc The NIF's `spool' map: the pool's own directory, the limit and the
%% fsync policy.
-spec nif_config(opts(), binary(), atom()) -> map().
nif_config(#{directory := Dir, max_bytes := Max, fsync := Fsync} = Opts, PoolDir, _Backend) ->
    #{dir => unicode:characters_to_binary(filename:join(Dir, PoolDir)),
      max_bytes => Max,
      fsync => case Fsync of
                   interval -> {interval, maps:get(fsync_interval, Opts, 1000)};
                   Other -> Other
               end}.

%% @doc Logs what a spooled pool found at start: events to deliver again,
%% and bytes lost to a torn or corrupted file (never a reason not to start).
-spec log_start(term(), #{atom() => non_neg_integer()}) -> ok.
log_start(Pool, #{spool_events := Events, spool_corrupt := Corrupt,
                  spool_corrupt_bytes := Lost}) ->
    case Corrupt of
        0 -> ok;
        _ -> ?LOG_WARNING(#{what => event_pusher_spool_corrupt, pool => Pool,
                            files => Corrupt, bytes_lost => Lost,
                            text => <<"Spool records unreadable after a crash were skipped; "
                                      "the events in them are lost">>})
    end,
    case Events of
        0 -> ok;
        _ -> ?LOG_INFO(#{what => event_pusher_spool_replay, pool => Pool, events => Events,
                         text => <<"Delivering the events the spool kept from the last run">>})
    end;
log_start(_Pool, #{}) ->
    ok.

%% Without a loaded config (a pool entry turned into a NIF config on its
%% own, as the config tests do) no module has a spool.
-spec modules_opts(module()) -> #{mongooseim:host_type() => gen_mod:module_opts()}.
modules_opts(Module) ->
    try gen_mod:hosts_and_opts_with_module(Module)
    catch error:badarg -> #{}
    end.

-spec pool_dir_name(atom(), global | mongooseim:host_type(), atom()) -> binary().
pool_dir_name(Backend, global, Tag) ->
    iolist_to_binary([atom_to_binary(Backend, utf8), "-", atom_to_binary(Tag, utf8)]);
pool_dir_name(Backend, HostType, Tag) ->
    Safe = re:replace(HostType, "[^A-Za-z0-9._-]", "_", [global, {return, binary}]),
    iolist_to_binary([atom_to_binary(Backend, utf8), "-", Safe, "-", atom_to_binary(Tag, utf8)]).
