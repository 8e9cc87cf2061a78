%% @doc Fixture for mongoose_host_SUITE: a module with hooks,
%% instrumentation and dynamic domains support; at start and stop it logs
%% what the host had already done (instrumentation set up? hook added?).
%% Its dependencies come from its options (`deps').
-module(host_fixture_mod).

-behaviour(gen_mod).

-export([start/2, stop/1, hooks/1, instrumentation/1, supported_features/0, deps/2]).

-spec start(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
start(HostType, Opts) ->
    host_fixture_log:add({start, ?MODULE, HostType, Opts, observe(HostType)}).

-spec stop(mongooseim:host_type()) -> ok.
stop(HostType) ->
    host_fixture_log:add({stop, ?MODULE, HostType, observe(HostType)}).

-spec hooks(mongooseim:host_type()) -> gen_hook:hook_list().
hooks(HostType) ->
    [{host_fixture_hook, HostType, fun host_fixture_log:append_tag/3, #{tag => ?MODULE}, 50}].

-spec instrumentation(mongooseim:host_type()) -> [mongoose_instrument:spec()].
instrumentation(HostType) ->
    [{host_fixture_event, #{host_type => HostType}, #{metrics => #{count => spiral}}}].

-define(HOST_FIXTURE_DYNAMIC, true).
-include("host_fixture.hrl").

%% Whether the event is declared and the hook handler registered (the
%% registered handlers are published by a reload to be seen by run_fold).
observe(HostType) ->
    Instrumented = try mongoose_instrument:execute(host_fixture_event,
                                                   #{host_type => HostType}, #{count => 1}) of
                       ok -> true
                   catch error:#{what := event_not_registered} -> false
                   end,
    ok = gen_hook:reload_hooks(),
    {ok, Tags} = gen_hook:run_fold(host_fixture_hook, HostType, [], #{}),
    #{instrumented => Instrumented, hooked => lists:member(?MODULE, Tags)}.
