%% @doc Checks instrumentation events in tests: the API of MongooseIM's
%% big_tests `instrument_helper', run in the local node.
%%
%% `start/1' records the listed `{Event, Labels}'; assertions then look at
%% what was emitted. `stop/0' fails the test if a recorded event was never
%% asserted on (as MongooseIM's helper does), and logs declared events that
%% were never emitted.
-module(instrument_helper).

%% setup and teardown
-export([declared_events/1, declared_events/2, start/1, start/2, stop/0]).
%% assertions
-export([assert/3, assert/4, assert_one/3,
         assert_not_emitted/1, assert_not_emitted/2, assert_not_emitted/3,
         wait_and_assert/3, wait_and_assert_new/3,
         select/2, select_new/3, timestamp/0]).

-type event_name() :: mongoose_instrument:event_name().
-type labels() :: mongoose_instrument:labels().
-type measurements() :: mongoose_instrument:measurements().
-type check_fun() :: fun((measurements()) -> boolean()).
-type event_count() :: non_neg_integer() | positive.
-type opts() :: #{min_timestamp => integer(),
                  retries => non_neg_integer(),
                  delay => non_neg_integer(),
                  expected_count => event_count()}.
-type status() :: untested | tested | negative.

-export_type([check_fun/0, opts/0]).

-define(STATUS_TABLE, instrument_event_status_table).
-define(HOLDER, instrument_helper_status_holder).
%% How the waiting assertions poll: every 100 ms, at most 50 more times.
-define(POLLING, #{retries => 50, delay => 100}).

%%--------------------------------------------------------------------
%% Setup and teardown
%%--------------------------------------------------------------------

%% @doc `declared_events(Modules, [HostType])' for the host type MongooseIM's
%% big tests use (`domain_helper:host_type()'): here the first of `hosts' ++
%% `host_types' in the config, or `<<"localhost">>' (the big tests' host
%% type) before a config is set.
-spec declared_events([module()] | module()) -> [{event_name(), labels()}].
declared_events(Modules) ->
    declared_events(Modules, [default_host_type()]).

%% @doc The `{Event, Labels}' pairs `Module:instrumentation(Args...)' declares.
-spec declared_events([module()] | module(), list()) -> [{event_name(), labels()}].
declared_events(ModuleOrModules, Args) ->
    [{Event, Labels} || Module <- lists:flatten([ModuleOrModules]),
                        {Event, Labels, _Config} <- apply(Module, instrumentation, Args)].

-spec start([{event_name(), labels()}]) -> ok.
start(DeclaredEvents) ->
    start(DeclaredEvents, []).

%% @doc Records `DeclaredEvents' (which must be asserted on if emitted) and
%% `NegativeEvents' (which tests expect not to be emitted). An event in both
%% lists counts as declared.
-spec start([{event_name(), labels()}], [{event_name(), labels()}]) -> ok.
start(DeclaredEvents, NegativeEvents) ->
    start_status_table(),
    lists:foreach(fun({Status, Events}) ->
                          true = ets:insert(?STATUS_TABLE, [{Event, Status} || Event <- Events])
                  end, [{negative, NegativeEvents}, {untested, DeclaredEvents}]),
    mongoose_instrument:start_recording(DeclaredEvents ++ NegativeEvents).

-spec stop() -> ok.
stop() ->
    Statuses = classify_events(),
    Emitted = mongoose_instrument:recorded_keys(),
    mongoose_instrument:stop_recording(),
    stop_status_table(),
    report(Statuses, Emitted).

%% Negative events are left out of both checks: asserting that they were not
%% emitted is the test's own business.
-spec report(#{status() := [{event_name(), labels()}]}, [{event_name(), labels()}]) -> ok.
report(#{tested := Tested, untested := Untested, negative := Negative}, Emitted) ->
    ct:log("Tested instrumentation events:~n~p", [lists:sort(Tested)]),
    NeverEmitted = [E || E <- Untested, not lists:member(E, Emitted), not lists:member(E, Negative)],
    Unasserted = [E || E <- Emitted, not lists:member(E, Tested), not lists:member(E, Negative)],
    %% Declared events are not all covered by tests: only logged.
    NeverEmitted =:= []
        orelse ct:log("Declared instrumentation events never emitted (no test covers them):~n~p",
                      [lists:sort(NeverEmitted)]),
    %% An emitted event nobody asserted on is a gap in a test.
    Unasserted =:= []
        orelse ct:fail("Instrumentation events emitted without any assertion on them:~n~p~n"
                       "Check each with ~p:assert/3 (or another assertion of this module)",
                       [lists:sort(Unasserted), ?MODULE]),
    ok.

%%--------------------------------------------------------------------
%% Assertions
%%--------------------------------------------------------------------

%% @doc At least one emission of the event has measurements matching `CheckF'.
-spec assert(event_name(), labels(), check_fun()) -> ok.
assert(Event, Labels, CheckF) ->
    assert(Event, Labels, CheckF, #{}).

%% @doc Exactly one emission matches.
-spec assert_one(event_name(), labels(), check_fun()) -> ok.
assert_one(Event, Labels, CheckF) ->
    assert(Event, Labels, CheckF, #{expected_count => 1}).

%% @doc No emission matches.
-spec assert_not_emitted(event_name(), labels(), check_fun()) -> ok.
assert_not_emitted(Event, Labels, CheckF) ->
    assert(Event, Labels, CheckF, #{expected_count => 0}).

-spec assert_not_emitted(event_name(), labels()) -> ok.
assert_not_emitted(Event, Labels) ->
    assert_not_emitted(Event, Labels, fun(_Measurements) -> true end).

-spec assert_not_emitted([{event_name(), labels()}]) -> ok.
assert_not_emitted(Events) ->
    _ = [assert_not_emitted(Event, Labels) || {Event, Labels} <- Events],
    ok.

%% @doc Polls until a matching emission exists (see ?POLLING).
-spec wait_and_assert(event_name(), labels(), check_fun()) -> ok.
wait_and_assert(Event, Labels, CheckF) ->
    assert(Event, Labels, CheckF, ?POLLING).

%% @doc Like wait_and_assert/3, ignoring emissions from before the call.
-spec wait_and_assert_new(event_name(), labels(), check_fun()) -> ok.
wait_and_assert_new(Event, Labels, CheckF) ->
    assert(Event, Labels, CheckF, ?POLLING#{min_timestamp => timestamp()}).

%% @doc The number of emissions matching `CheckF' must be `expected_count'
%% (default: positive), checked again every `delay' ms up to `retries' more
%% times. `CheckF' may return a boolean or fail with `function_clause'
%% (meaning false), so one clause is enough.
-spec assert(event_name(), labels(), check_fun(), opts()) -> ok.
assert(Event, Labels, CheckF, Opts) ->
    Settings = maps:merge(#{retries => 0, delay => 1000, expected_count => positive}, Opts),
    conclude(Event, Labels, poll(Event, Labels, CheckF, Settings), Settings).

%% @doc Measurements recorded for the event, oldest first.
-spec select(event_name(), labels()) -> [measurements()].
select(Event, Labels) ->
    mongoose_instrument:recorded(Event, Labels).

-spec select_new(event_name(), labels(), integer()) -> [measurements()].
select_new(Event, Labels, Timestamp) ->
    mongoose_instrument:recorded_since(Event, Labels, Timestamp).

-spec timestamp() -> integer().
timestamp() ->
    mongoose_instrument:timestamp().

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec default_host_type() -> mongooseim:host_type().
default_host_type() ->
    HostTypes = try
                    mongoose_config:get_opt(hosts, []) ++ mongoose_config:get_opt(host_types, [])
                catch
                    error:badarg -> [] % no config set
                end,
    case HostTypes of
        [HostType | _] -> HostType;
        [] -> <<"localhost">>
    end.

-spec poll(event_name(), labels(), check_fun(), opts()) ->
          {boolean(), [measurements()], [measurements()]}.
poll(Event, Labels, CheckF, #{retries := Retries, delay := Delay} = Settings) ->
    Emitted = case Settings of
                  #{min_timestamp := Since} -> select_new(Event, Labels, Since);
                  #{} -> select(Event, Labels)
              end,
    Matching = [M || M <- Emitted, matches(CheckF, M)],
    Satisfied = check(Matching, maps:get(expected_count, Settings)),
    case Satisfied orelse Retries =:= 0 of
        true ->
            {Satisfied, Matching, Emitted};
        false ->
            timer:sleep(Delay),
            poll(Event, Labels, CheckF, Settings#{retries := Retries - 1})
    end.

%% Only an assertion that saw the event emitted marks it tested.
-spec conclude(event_name(), labels(), {boolean(), [measurements()], [measurements()]}, opts()) ->
          ok.
conclude(_Event, _Labels, {true, [], _Emitted}, _Settings) ->
    ok;
conclude(Event, Labels, {true, Matching, _Emitted}, _Settings) ->
    ct:log("Event ~p ~p, matching measurements:~n~p", [Event, Labels, Matching]),
    true = ets:insert(?STATUS_TABLE, {{Event, Labels}, tested}),
    ok;
conclude(Event, Labels, {false, Matching, Emitted}, #{expected_count := Expected}) ->
    ct:log("Event ~p ~p, matching measurements:~n~p~nothers:~n~p",
           [Event, Labels, Matching, Emitted -- Matching]),
    ct:fail("Event ~p ~p: ~p emissions matched, expected ~p",
            [Event, Labels, length(Matching), Expected]).

-spec matches(check_fun(), measurements()) -> boolean().
matches(CheckF, Measurements) ->
    try CheckF(Measurements) catch error:function_clause -> false end.

-spec check([measurements()], event_count()) -> boolean().
check(Matching, positive) -> Matching =/= [];
check(Matching, Count) -> length(Matching) =:= Count.

-spec classify_events() -> #{status() := [{event_name(), labels()}]}.
classify_events() ->
    Empty = maps:from_list([{Status, []} || Status <- [tested, untested, negative]]),
    lists:foldl(fun({Event, Status}, ByStatus) ->
                        maps:update_with(Status, fun(Events) -> [Event | Events] end, ByStatus)
                end, Empty, ets:tab2list(?STATUS_TABLE)).

%% The status table must outlive the process calling start/1 (in common_test
%% that is init_per_suite's process), so a holder process owns it.
-spec start_status_table() -> ok.
start_status_table() ->
    stop_status_table(),
    Parent = self(),
    Ref = make_ref(),
    Pid = spawn(fun() -> hold_status_table(Parent, Ref) end),
    MRef = monitor(process, Pid),
    receive
        {Ref, ready} -> demonitor(MRef, [flush]), ok;
        {'DOWN', MRef, process, Pid, Reason} -> error({status_table_not_started, Reason})
    after 5000 ->
            error(status_table_start_timeout)
    end.

-spec hold_status_table(pid(), reference()) -> ok.
hold_status_table(Parent, Ref) ->
    register(?HOLDER, self()),
    ets:new(?STATUS_TABLE, [named_table, public]),
    Parent ! {Ref, ready},
    receive
        {stop, From, StopRef} -> From ! {StopRef, stopped}, ok
    end.

-spec stop_status_table() -> ok.
stop_status_table() ->
    case whereis(?HOLDER) of
        undefined ->
            ok;
        Pid ->
            Ref = make_ref(),
            MRef = monitor(process, Pid),
            Pid ! {stop, self(), Ref},
            receive
                {'DOWN', MRef, process, Pid, _} -> ok
            after 5000 ->
                    exit(Pid, kill), ok
            end,
            receive {Ref, stopped} -> ok after 0 -> ok end
    end.
