%% Callbacks the fixture modules of mongoose_host_SUITE share. Each defines
%% what it needs before including this file:
%%   HOST_FIXTURE_LOGGED: start/2 and stop/1 that only log themselves;
%%   HOST_FIXTURE_DYNAMIC: dynamic domains support, dependencies from the
%%   module's `deps' option.

-ifdef(HOST_FIXTURE_LOGGED).
-spec start(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
start(HostType, Opts) ->
    host_fixture_log:add({start, ?MODULE, HostType, Opts}).

-spec stop(mongooseim:host_type()) -> ok.
stop(HostType) ->
    host_fixture_log:add({stop, ?MODULE, HostType}).
-endif.

-ifdef(HOST_FIXTURE_DYNAMIC).
-spec supported_features() -> [atom()].
supported_features() ->
    [dynamic_domains].

-spec deps(mongooseim:host_type(), gen_mod:module_opts()) -> gen_mod_deps:deps().
deps(_HostType, Opts) ->
    maps:get(deps, Opts, []).
-endif.
