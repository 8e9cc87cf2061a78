%% @doc Fixture for mongoose_host_SUITE: a dependency module supporting
%% dynamic domains, logging its start and stop; dependencies from `deps'.
-module(host_fixture_dep_mod).

-behaviour(gen_mod).

-export([start/2, stop/1, supported_features/0, deps/2]).

-spec start(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
start(HostType, Opts) ->
    host_fixture_log:add({start, ?MODULE, HostType, Opts}).

-spec stop(mongooseim:host_type()) -> ok.
stop(HostType) ->
    host_fixture_log:add({stop, ?MODULE, HostType}).

-spec supported_features() -> [atom()].
supported_features() ->
    [dynamic_domains].

-spec deps(mongooseim:host_type(), gen_mod:module_opts()) -> gen_mod_deps:deps().
deps(_HostType, Opts) ->
    maps:get(deps, Opts, []).
