%% @doc The demo driver (scripts/demo.sh): boots the test host with an
%% operator's mongooseim.toml, as MongooseIM boots, plays a short scenario
%% through the hooks MongooseIM's c2s and router run (users go online, chat,
%% talk in a room, go offline) and prints what each configured backend's
%% server received.
%%
%% Each backend has four functions here, under its own banner:
%% `start(Backend, Opts)' starts what receives its output (from the parsed
%% config), `expected(Backend, Opts, Steps)' says how many deliveries the scenario
%% should cause, `report(Backend, State, Expected)' waits for them and prints
%% them, `stop(Backend, State)'. A backend the config does not enable is
%% skipped.
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
             catch Class:Reason:Stacktrace ->
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

result_text({ok, N}) -> io_lib:format("ok: received all ~b expected deliveries", [N]);
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
    [{ok, _} = ep_test_host:filter_local_packet(Occupant, Member, Msg) || Member <- Members],
    ok.

%%====================================================================
%% Per-backend dispatch
%%====================================================================

-spec start(backend(), map()) -> term().
start(http, Opts) -> http_start(Opts).

-spec expected(backend(), map(), [step()]) -> non_neg_integer().
expected(http, Opts, Steps) -> http_expected(Opts, Steps).

-spec report(backend(), term(), non_neg_integer()) ->
    {ok, non_neg_integer()} | {error, {non_neg_integer(), non_neg_integer()}}.
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
    case Ip of
        "127.0.0.1" -> ok;
        "localhost" -> ok;
        _ -> error({demo_needs_a_local_http_endpoint, Host})
    end,
    case ep_http_sink:start(#{port => Port}) of
        {ok, Sink} ->
            say("http: sink listening on ~s", [Host]),
            {Host, Sink};
        {error, Reason} ->
            error({cannot_listen, Host, Reason, "is the port taken? change it in the config"})
    end.

http_handlers(Opts) ->
    Modules = maps:get({modules, ep_test_host:host_type()}, Opts, #{}),
    EventPusher = maps:get(mod_event_pusher, Modules, #{}),
    maps:get(handlers, maps:get(http, EventPusher, #{}), []).

%% MongooseIM's default callback posts chat messages sent by a local user with a
%% non-empty body, once per handler. (The demo's config uses the defaults.)
http_expected(Opts, Steps) ->
    Handlers = length(http_handlers(Opts)),
    Handlers * length([S || S = {send, _, _, <<"chat">>, Body} <- Steps, Body =/= <<>>]).

http_report(Sinks, Expected) ->
    title("http: what the HTTP server received"),
    Requests = http_wait(Sinks, Expected),
    lists:foreach(fun http_print/1, Requests),
    Got = length(Requests),
    case Got >= Expected of
        true -> {ok, Got};
        false -> {error, {Got, Expected}}
    end.

http_wait(Sinks, Expected) ->
    Fetch = fun() -> lists:append([[{Host, R} || R <- ep_http_sink:requests(Sink)]
                                   || {Host, Sink} <- Sinks])
            end,
    try ep_wait:for(Fetch, fun(Rs) -> length(Rs) >= Expected end, ?WAIT_MS)
    catch error:_ -> Fetch()
    end.

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

title(Text) ->
    io:format("~n== ~ts~n", [Text]).

say(Format, Args) ->
    io:format("  " ++ Format ++ "~n", Args).
