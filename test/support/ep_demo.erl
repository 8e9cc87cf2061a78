%% @doc The demo driver (scripts/demo.sh): boots the test host with an
%% operator's mongooseim.toml, as MongooseIM boots, plays a short scenario
%% through the hooks MongooseIM's c2s and router run (users go online, chat,
%% talk in a room, go offline) and prints what each configured backend's
%% server received.
%%
%% Each backend has five functions here, under its own banner:
%% `start(Backend, Opts)' starts what receives its output (from the parsed
%% config), `instrumentation(Backend)' names the `mongoose_instrument' events
%% to record, `expected(Backend, Opts, Steps)' says how many deliveries the
%% scenario should cause, `report(Backend, State, Expected)' waits for them
%% and prints them, `stop(Backend, State)'. A backend the config does not
%% enable is skipped.
-module(ep_demo).

-export([main/1, run/1]).

-include("jlib.hrl").

-define(BACKENDS, [http]).
-define(WAIT_MS, 10000).

-type backend() :: http.
-type step() :: {online | offline, jid:jid()}
              | {send, From :: jid:jid(), To :: jid:jid(), Type :: binary(), Body :: binary()}
              | {groupchat, From :: jid:jid(), Room :: jid:jid(), Members :: [jid:jid()],
                 Body :: binary()}.

%%====================================================================
%% Entry points
%%====================================================================

%% @doc `erl -run ep_demo main CONFIG': runs the demo and halts the node,
%% with status 0 when every backend received what the scenario should cause.
-spec main([string()]) -> no_return().
main([ConfigPath]) ->
    Status = try run(ConfigPath) of
                 ok -> 0;
                 {error, _} -> 1
             catch throw:{demo_error, Text} ->
                 io:format("~ndemo: ~ts~n", [Text]),
                 1;
             Class:Reason:Stacktrace ->
                 io:format("~ndemo crashed: ~p:~p~n~p~n", [Class, Reason, Stacktrace]),
                 2
             end,
    halt(Status).

-spec run(file:filename()) -> ok | {error, [backend()]}.
run(ConfigPath) ->
    ok = io:setopts([{encoding, unicode}]),
    {ok, Toml} = file:read_file(ConfigPath),
    %% Parsed once up front to find where the backends deliver (the boot below
    %% parses the same file again, as MongooseIM does at start).
    Opts = maps:from_list(mongoose_config_parser:parse_file(ConfigPath)),
    ok = logger:set_primary_config(level, maps:get(loglevel, Opts, warning)),
    HostType = ep_test_host:host_type(),
    Backends = [B || B <- ?BACKENDS, is_configured(B, HostType, Opts)],
    title(io_lib:format("config ~s: host type ~s, backends ~p",
                        [ConfigPath, HostType, Backends])),
    Started = [{B, start(B, Opts)} || B <- Backends],
    ok = ep_test_host:boot(Toml),
    ok = mongoose_instrument:start_recording(
           lists:append([instrumentation(B) || B <- Backends])),
    Steps = scenario(),
    title("scenario"),
    lists:foreach(fun play/1, Steps),
    Results = [{B, report(B, State, expected(B, Opts, Steps))} || {B, State} <- Started],
    ok = ep_test_host:shutdown(),
    [stop(B, State) || {B, State} <- Started],
    title("summary"),
    [io:format("  ~-8s ~s~n", [B, result_text(R)]) || {B, R} <- Results],
    case [B || {B, {error, _}} <- Results] of
        [] -> ok;
        Failed -> {error, Failed}
    end.

is_configured(Backend, HostType, Opts) ->
    Modules = maps:get({modules, HostType}, Opts, #{}),
    maps:is_key(Backend, maps:get(mod_event_pusher, Modules, #{})).

result_text({ok, {Got, Expected}}) ->
    io_lib:format("ok: ~b deliveries received, ~b expected", [Got, Expected]);
result_text({error, {Got, Expected}}) ->
    io_lib:format("FAILED: received ~b of ~b expected deliveries", [Got, Expected]).

%%====================================================================
%% The scenario (the same for every backend)
%%====================================================================

-spec scenario() -> [step()].
scenario() ->
    Alice = jid(<<"alice@localhost/phone">>),
    Bob = jid(<<"bob@localhost/laptop">>),
    Carol = jid(<<"carol@localhost/tablet">>),
    Room = jid(<<"lobby@muc.localhost">>),
    [{online, Alice}, {online, Bob}, {online, Carol},
     {send, Alice, Bob, <<"chat">>, <<"Hi Bob! Lunch at 12?">>},
     {send, Bob, Alice, <<"chat">>, <<"Sure ~ see you at the café *"/utf8>>},
     {groupchat, Carol, Room, [Alice, Bob], <<"Standup in 5 minutes">>},
     {send, Alice, Carol, <<"chat">>, <<"Zażółć gęślą jaźń ❤"/utf8>>},
     {offline, Bob}, {offline, Alice}, {offline, Carol}].

jid(Bin) -> ep_test_host:jid(Bin).

%% Runs the hooks MongooseIM runs for the step: the sender's c2s
%% (`user_send_message'), then the router delivering to each local recipient
%% (`filter_local_packet'; a room delivers from the occupant's room JID).
play({online, Jid}) ->
    say("~s goes online", [jid:to_binary(Jid)]),
    {ok, _} = ep_test_host:user_available(Jid);
play({offline, Jid}) ->
    say("~s goes offline", [jid:to_binary(Jid)]),
    {ok, _} = ep_test_host:unset_presence(Jid, <<"bye">>);
play({send, From, To, Type, Body}) ->
    say("~s -> ~s (~s): ~ts", [jid:to_binary(From), jid:to_binary(To), Type, Body]),
    Msg = ep_test_host:message(jid:to_bare(To), Type, Body),
    {ok, _} = ep_test_host:user_send_message(From, Msg),
    {ok, _} = ep_test_host:filter_local_packet(From, To, Msg);
play({groupchat, From, Room, Members, Body}) ->
    say("~s -> room ~s (groupchat): ~ts", [jid:to_binary(From), jid:to_binary(Room), Body]),
    Msg = ep_test_host:message(Room, <<"groupchat">>, Body),
    {ok, _} = ep_test_host:user_send_message(From, Msg),
    Occupant = jid:replace_resource(Room, From#jid.luser),
    lists:foreach(fun(Member) ->
                          {ok, _} = ep_test_host:filter_local_packet(Occupant, Member, Msg)
                  end, Members).

%%====================================================================
%% Per-backend dispatch
%%====================================================================

-spec start(backend(), map()) -> term().
start(http, Opts) -> http_start(Opts).

-spec instrumentation(backend()) -> [{mongoose_instrument:event_name(),
                                      mongoose_instrument:labels()}].
instrumentation(http) -> http_instrumentation().

-spec expected(backend(), map(), [step()]) -> non_neg_integer().
expected(http, Opts, Steps) -> http_expected(Opts, Steps).

%% {ok | error, {Received, Expected}}
-spec report(backend(), term(), non_neg_integer()) ->
    {ok | error, {non_neg_integer(), non_neg_integer()}}.
report(http, State, Expected) -> http_report(State, Expected).

-spec stop(backend(), term()) -> ok.
stop(http, State) -> http_stop(State).

%%====================================================================
%% http: an HTTP sink on each address the http handlers' pools point to
%%====================================================================

http_start(Opts) ->
    HandlerPools = lists:usort([Pool || #{pool_name := Pool} <- http_handlers(Opts)]),
    Hosts = lists:usort([Host || #{type := http, tag := Tag, conn_opts := #{host := Host}}
                                     <- maps:get(outgoing_pools, Opts, []),
                                 lists:member(Tag, HandlerPools)]),
    [http_start_sink(Host) || Host <- Hosts].

http_start_sink(Host) ->
    #{host := Ip, port := Port} = uri_string:parse(Host),
    lists:member(Ip, ["127.0.0.1", "localhost"]) orelse
        demo_error("the http pool's host ~s is not on 127.0.0.1: the demo serves it itself",
                   [Host]),
    case ep_http_sink:start(#{port => Port}) of
        {ok, Sink} ->
            say("http: sink listening on ~s", [Host]),
            {Host, Sink};
        {error, Reason} ->
            demo_error("cannot listen on ~s (~p): is the port taken? "
                       "Free it or change connection.host in the config", [Host, Reason])
    end.

http_handlers(Opts) ->
    Modules = maps:get({modules, ep_test_host:host_type()}, Opts, #{}),
    EventPusher = maps:get(mod_event_pusher, Modules, #{}),
    maps:get(handlers, maps:get(http, EventPusher, #{}), []).

http_instrumentation() ->
    [{mod_event_pusher_http_sent, #{host_type => ep_test_host:host_type()}}].

%% MongooseIM's default callback posts chat messages sent by a local user with a
%% non-empty body, once per handler that uses it. What a handler with its own
%% callback module posts is printed, not checked.
http_expected(Opts, Steps) ->
    DefaultHandlers = [H || H = #{callback_module := mod_event_pusher_http_defaults}
                                <- http_handlers(Opts)],
    length(DefaultHandlers) *
        length([ok || {send, _, _, <<"chat">>, Body} <- Steps, Body =/= <<>>]).

http_report(Sinks, Expected) ->
    title("http: what the HTTP server received (in arrival order)"),
    say("(the default callback posts chat messages sent by local users: "
        "not groupchat, not messages as delivered to their recipients)", []),
    Requests = http_wait(Sinks, Expected),
    lists:foreach(fun http_print/1, Requests),
    http_print_instrumentation(Expected),
    Got = length(Requests),
    case Got >= Expected of
        true -> {ok, {Got, Expected}};
        false -> {error, {Got, Expected}}
    end.

%% What MongooseIM's metrics would see: one event per attempt.
http_print_instrumentation(Expected) ->
    [{Event, Labels}] = http_instrumentation(),
    Fetch = fun() -> mongoose_instrument:recorded(Event, Labels) end,
    Measurements = wait_or_last(Fetch, Expected),
    Codes = lists:usort([C || #{response_code := C} <- Measurements]),
    ByCode = [{C, length([M || M = #{response_code := C1} <- Measurements, C1 =:= C])}
              || C <- Codes],
    Failures = length([M || M = #{failure_count := _} <- Measurements]),
    Times = [T || #{response_time := T} <- Measurements],
    LabelText = lists:join(", ", [io_lib:format("~s=~s", [K, V])
                                  || {K, V} <- maps:to_list(Labels)]),
    title(io_lib:format("http: instrumentation event ~s, labels ~s", [Event, LabelText])),
    [say("response ~s: ~b", [C, N]) || {C, N} <- ByCode],
    say("failures: ~b", [Failures]),
    case Times of
        [] -> ok;
        _ -> say("response time: ~b us on average", [lists:sum(Times) div length(Times)])
    end.

http_wait(Sinks, Expected) ->
    Fetch = fun() -> lists:append([[{Host, R} || R <- ep_http_sink:requests(Sink)]
                                   || {Host, Sink} <- Sinks])
            end,
    wait_or_last(Fetch, Expected).

http_print({Host, Req = #{method := Method, path := Path, body := Body}}) ->
    io:format("  ~s ~s~s~n    content-type: ~s~n    body: ~s~n",
              [Method, Host, Path, ep_http_sink:header(<<"content-type">>, Req), Body]),
    case uri_string:dissect_query(Body) of
        Fields when is_list(Fields) ->
            [io:format("      ~-9s ~ts~n", [K, V]) || {K, V} <- Fields],
            ok;
        _ ->
            ok
    end.

http_stop(Sinks) ->
    [ep_http_sink:stop(Sink) || {_Host, Sink} <- Sinks],
    ok.

%%====================================================================
%% Helpers
%%====================================================================

%% Polls Fetch until it returns at least N items; past the deadline, returns
%% what is there (the report then says what is missing).
wait_or_last(Fetch, N) ->
    try ep_wait:for(Fetch, fun(Items) -> length(Items) >= N end, ?WAIT_MS)
    catch error:{wait_timeout, _} -> Fetch()
    end.

-spec demo_error(io:format(), [term()]) -> no_return().
demo_error(Format, Args) ->
    throw({demo_error, io_lib:format(Format, Args)}).

title(Text) ->
    io:format("~n== ~ts~n", [Text]).

say(Format, Args) ->
    io:format("  " ++ Format ++ "~n", Args).
