%% @doc Fixture for mongoose_host_SUITE: a module without dynamic domains
%% support (no supported_features/0), logging its start and stop.
-module(host_fixture_static_mod).

-behaviour(gen_mod).

-export([start/2, stop/1]).

-spec start(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
start(HostType, Opts) ->
    host_fixture_log:add({start, ?MODULE, HostType, Opts}).

-spec stop(mongooseim:host_type()) -> ok.
stop(HostType) ->
    host_fixture_log:add({stop, ?MODULE, HostType}).
