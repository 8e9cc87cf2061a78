%% @doc The demo driver (scripts/demo.sh): boots the test host with an
%% operator's mongooseim.toml, as MongooseIM boots, plays a short scenario
%% through the hooks MongooseIM's c2s and router run (users go online, chat,
%% talk in a room, go offline) and prints what each configured backend's
%% server received.
%%
%% Users going online open a session in `ejabberd_sm' (owned by the demo's
%% process) and send an available presence; going offline unsets it and
%% closes the session, so who is offline is what the router would see.
%%
%% Each backend has five functions here, under its own banner:
%% `start(Backend, Opts)' starts what receives its output (from the parsed
%% config), `instrumentation(Backend)' names the `mongoose_instrument' events
%% to record, `expected(Backend, Opts, Steps)' says how many deliveries the
%% scenario should cause, `report(Backend, State, Expected)' waits for them
%% and prints them, `stop(Backend, State)'. A backend the config does not
%% enable is skipped. mongoosepush (mod_push_service_mongoosepush, the push
%% notifications of a virtual pubsub host) is shown as a backend of its own.
-module(ep_demo).

-export([main/1, run/1]).

-include("jlib.hrl").
-include("session.hrl").

-define(BACKENDS, [http, rabbit, sns, push, mongoosepush]).
-define(WAIT_MS, 10000).
%% Between two reads of a queue that reading empties (not a wait for a result).
-define(POLL_MS, 50).

-type backend() :: http | rabbit | sns | push | mongoosepush.
-type step() :: {online | offline, jid:jid()}
              | {enable_push, User :: jid:jid(), Service :: jid:jid(), Node :: binary(),
                 PublishOptions :: [{binary(), binary()}]}
              | {send, From :: jid:jid(), To :: jid:jid(), Type :: binary(), Body :: binary()}
              | {groupchat, From :: jid:jid(), Room :: jid:jid(), Members :: [jid:jid()],
                 Body :: binary()}.
-type verdict() :: {ok | error, {Received :: non_neg_integer(), Expected :: non_neg_integer()}}.
-type event() :: {mongoose_instrument:event_name(), mongoose_instrument:labels()}.

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
    ok = load_app_modules(),
    Backends = [B || B <- ?BACKENDS, is_configured(B, Opts)],
    title(io_lib:format("config ~s: host type ~s, backends: ~s",
                        [ConfigPath, ep_test_host:host_type(),
                         lists:join(", ", [atom_to_list(B) || B <- Backends])])),
    Started = [{B, start(B, Opts)} || B <- Backends],
    %% Recording from before the boot: pools report their connections then.
    ok = mongoose_instrument:start_recording(
           lists:append([instrumentation(B) || B <- Backends])),
    ok = ep_test_host:boot(Toml),
    Steps = scenario(Backends),
    title("scenario"),
    lists:foreach(fun play/1, Steps),
    Results = [{B, report(B, State, expected(B, Opts, Steps))} || {B, State} <- Started],
    ok = ep_test_host:shutdown(),
    [stop(B, State) || {B, State} <- Started],
    title("summary"),
    [io:format("  ~-12s ~s~n", [B, result_text(R)]) || {B, R} <- Results],
    case [B || {B, {error, _}} <- Results] of
        [] -> ok;
        Failed -> {error, Failed}
    end.

%% A MongooseIM release boots in embedded mode: every module is loaded before
%% any starts. This node loads on demand, so the app's modules are loaded
%% here as a release would have them (a module may name another by an atom
%% that exists only once that module is loaded).
-spec load_app_modules() -> ok.
load_app_modules() ->
    _ = application:load(mongoose_event_pusher),
    {ok, Modules} = application:get_key(mongoose_event_pusher, modules),
    lists:foreach(fun(M) -> {module, M} = code:ensure_loaded(M) end, Modules).

%% MongoosePush serves the push backend's virtual pubsub hosts.
is_configured(mongoosepush, Opts) ->
    is_configured(push, Opts) andalso maps:is_key(mod_push_service_mongoosepush, modules(Opts));
is_configured(Backend, Opts) ->
    maps:is_key(Backend, event_pusher_opts(Opts)).

result_text({ok, {Got, Expected}}) ->
    io_lib:format("ok: ~b deliveries received, ~b expected", [Got, Expected]);
result_text({error, {Got, Expected}}) ->
    io_lib:format("FAILED: received ~b of ~b expected deliveries", [Got, Expected]).

%%====================================================================
%% The scenario (the same for every backend; with push configured, Bob
%% enables push notifications first, on the demo's pubsub service for his
%% laptop and, with MongoosePush, on the virtual host for his phone)
%%====================================================================

-spec scenario([backend()]) -> [step()].
scenario(Backends) ->
    Alice = jid(<<"alice@localhost/phone">>),
    Bob = jid(<<"bob@localhost/laptop">>),
    Carol = jid(<<"carol@localhost/tablet">>),
    Room = jid(<<"lobby@muc.localhost">>),
    EnablePush = [{enable_push, Bob, push_service(), <<"bob-laptop">>, []}
                  || lists:member(push, Backends)]
        ++ [{enable_push, Bob, mongoosepush_service(), <<"bob-phone">>,
             mongoosepush_publish_options()}
            || lists:member(mongoosepush, Backends)],
    [{online, Alice}, {online, Bob}, {online, Carol}]
    ++ EnablePush ++
    [{send, Alice, Bob, <<"chat">>, <<"Hi Bob! Lunch at 12?">>},
     {send, Bob, Alice, <<"chat">>, <<"Sure ~ see you at the café *"/utf8>>},
     {groupchat, Carol, Room, [Alice, Bob], <<"Standup in 5 minutes">>},
     {send, Alice, Carol, <<"chat">>, <<"Zażółć gęślą jaźń ❤"/utf8>>},
     {offline, Bob},
     %% Bob is offline: the message a push service is told about.
     {send, Alice, Bob, <<"chat">>, <<"Table booked for 12:30, see you there">>},
     {offline, Alice}, {offline, Carol}].

jid(Bin) -> ep_test_host:jid(Bin).

%% The bare JIDs of the scenario's users.
-spec scenario_users() -> [binary()].
scenario_users() ->
    lists:usort([jid:to_binary(jid:to_bare(Jid)) || {Status, Jid} <- scenario([]),
                                                    Status =:= online]).

%% Runs the hooks MongooseIM runs for the step: the sender's c2s
%% (`user_send_message'), then the router delivering to each local recipient
%% (`filter_local_packet'; a room delivers from the occupant's room JID).
%% Going online opens the session before the available presence; going
%% offline closes it after the unavailable one, as a c2s does.
play({online, Jid}) ->
    say("~s goes online", [jid:to_binary(Jid)]),
    _ = mim_host_xmpp:login(Jid),
    {ok, _} = ep_test_host:user_available(Jid);
play({offline, Jid}) ->
    say("~s goes offline", [jid:to_binary(Jid)]),
    {ok, _} = ep_test_host:unset_presence(Jid, <<"bye">>),
    #session{sid = SID} = ejabberd_sm:get_session(Jid),
    ok = mim_host_xmpp:logout(Jid, SID);
play({enable_push, Jid, Service, Node, PublishOptions}) ->
    say("~s enables push notifications: service ~s, node ~s~ts",
        [jid:to_binary(Jid), jid:to_binary(Service), Node,
         [[", ", K, "=", V] || {K, V} <- PublishOptions]]),
    push_enable(Jid, Service, Node, PublishOptions);
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
start(http, Opts) -> http_start(Opts);
start(rabbit, Opts) -> rabbit_start(Opts);
start(sns, Opts) -> sns_start(Opts);
start(push, Opts) -> push_start(Opts);
start(mongoosepush, Opts) -> mongoosepush_start(Opts).

-spec instrumentation(backend()) -> [event()].
instrumentation(http) -> http_instrumentation();
instrumentation(rabbit) -> rabbit_instrumentation();
instrumentation(sns) -> sns_instrumentation();
instrumentation(push) -> push_instrumentation();
instrumentation(mongoosepush) -> mongoosepush_instrumentation().

-spec expected(backend(), map(), [step()]) -> non_neg_integer().
expected(http, Opts, Steps) -> http_expected(Opts, Steps);
expected(rabbit, Opts, Steps) -> rabbit_expected(Opts, Steps);
expected(sns, Opts, Steps) -> sns_expected(Opts, Steps);
expected(push, Opts, Steps) -> push_expected(Opts, Steps, push_service());
expected(mongoosepush, Opts, Steps) -> push_expected(Opts, Steps, mongoosepush_service()).

-spec report(backend(), term(), non_neg_integer()) -> verdict().
report(http, State, Expected) -> http_report(State, Expected);
report(rabbit, State, Expected) -> rabbit_report(State, Expected);
report(sns, State, Expected) -> sns_report(State, Expected);
report(push, State, Expected) -> push_report(State, Expected);
report(mongoosepush, State, Expected) -> mongoosepush_report(State, Expected).

-spec stop(backend(), term()) -> ok.
stop(http, State) -> http_stop(State);
stop(rabbit, State) -> rabbit_stop(State);
stop(sns, State) -> sns_stop(State);
stop(push, State) -> push_stop(State);
stop(mongoosepush, State) -> mongoosepush_stop(State).

%%====================================================================
%% http: an HTTP sink on each address the http handlers' pools point to
%%====================================================================

http_start(Opts) ->
    HandlerPools = lists:usort([Pool || #{pool_name := Pool} <- http_handlers(Opts)]),
    [http_start_sink(http, Host) || Host <- http_pool_hosts(HandlerPools, Opts)].

%% The hosts the outgoing http pools of these tags connect to.
http_pool_hosts(Tags, Opts) ->
    lists:usort([Host || #{type := http, tag := Tag, conn_opts := #{host := Host}}
                             <- maps:get(outgoing_pools, Opts, []),
                         lists:member(Tag, Tags)]).

http_start_sink(Backend, Host) ->
    require_local(io_lib:format("the ~s pool's host", [Backend]), Host),
    #{port := Port} = uri_string:parse(Host),
    case ep_http_sink:start(#{port => Port}) of
        {ok, Sink} ->
            say("~s: HTTP server listening on ~s", [Backend, Host]),
            {Host, Sink};
        {error, Reason} ->
            demo_error("cannot listen on ~s (~p): is the port taken? "
                       "Free it or change connection.host in the config", [Host, Reason])
    end.

http_handlers(Opts) ->
    maps:get(handlers, backend_opts(http, Opts), []).

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
    Fetch = fun() -> lists:append([[{Host, R} || R <- ep_http_sink:requests(Sink)]
                                   || {Host, Sink} <- Sinks])
            end,
    Requests = wait_or_last(Fetch, at_least(Expected)),
    lists:foreach(fun http_print/1, Requests),
    http_print_instrumentation(Expected),
    verdict(length(Requests), Expected).

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

%% What MongooseIM's metrics would see: one event per request.
http_print_instrumentation(Expected) ->
    [Event] = http_instrumentation(),
    Measurements = recorded([Event], at_least(Expected)),
    instrumentation_title(http, [Event]),
    Codes = lists:usort([C || #{response_code := C} <- Measurements]),
    [say("response ~s: ~b", [C, length([M || M = #{response_code := C1} <- Measurements,
                                                 C1 =:= C])])
     || C <- Codes],
    say("failures: ~b", [length([M || M = #{failure_count := _} <- Measurements])]),
    say_average("response time", [T || #{response_time := T} <- Measurements], "us").

http_stop(Sinks) ->
    [ep_http_sink:stop(Sink) || {_Host, Sink} <- Sinks],
    ok.

%%====================================================================
%% rabbit: the broker of scripts/services.sh; a queue of the demo's own is
%% bound to each configured exchange, and the report prints what they got
%%====================================================================

rabbit_start(Opts) ->
    #{host := Host, port := Port, username := User, password := Password,
      virtual_host := VHost} = rabbit_connection(Opts),
    require_local("the rabbit pool's host", Host),
    Conn = try ep_amqp:connect(#{port => Port, username => User, password => Password,
                                 virtual_host => VHost})
           catch error:{amqp_connect_failed, Reason} ->
                   demo_error("cannot connect to RabbitMQ on 127.0.0.1:~b (~p): "
                              "see scripts/services.sh status", [Port, Reason])
           end,
    {Conn, [rabbit_bind_queue(Conn, Exchange) || Exchange <- rabbit_exchanges(Opts)]}.

%% `[outgoing_pools.rabbit.event_pusher]', global or of the host type.
rabbit_connection(Opts) ->
    HostType = ep_test_host:host_type(),
    case [Conn || #{type := rabbit, tag := event_pusher, scope := Scope, conn_opts := Conn}
                      <- maps:get(outgoing_pools, Opts, []),
                  lists:member(Scope, [global, host_type, HostType])] of
        [Conn | _] -> Conn;
        [] -> demo_error("the rabbit backend needs [outgoing_pools.rabbit.event_pusher]", [])
    end.

rabbit_exchanges(Opts) ->
    RabbitOpts = backend_opts(rabbit, Opts),
    [maps:get(Key, RabbitOpts)
     || Key <- [presence_exchange, chat_msg_exchange, groupchat_msg_exchange],
        maps:is_key(Key, RabbitOpts)].

%% The exchange is declared here as the module declares it (an equivalent
%% declaration is a no-op) so that the queue can be bound before the boot.
rabbit_bind_queue(Conn, #{name := Name, type := Type, durable := Durable}) ->
    lists:member(Type, [<<"topic">>, <<"fanout">>]) orelse
        demo_error("exchange ~s is of type ~s: the demo reads topic and fanout "
                   "exchanges only (it binds a queue with \"#\")", [Name, Type]),
    try ep_amqp:declare_exchange(Conn, Name, Type, Durable)
    catch exit:Reason ->
            demo_error("cannot declare exchange ~s (type ~s, durable ~s): ~p~n"
                       "An exchange of that name with other settings exists? "
                       "scripts/services.sh ctl delete_exchange ~s",
                       [Name, Type, Durable, Reason, Name])
    end,
    Queue = ep_amqp:temp_queue(Conn),
    ok = ep_amqp:bind(Conn, Queue, Name, <<"#">>),
    say("rabbit: exchange ~s (~s), read through queue ~s bound with \"#\"", [Name, Type, Queue]),
    {Name, Queue}.

%% The names MongooseIM gives a global pool's events, and a host type's pool's.
rabbit_instrumentation() ->
    rabbit_events(messages_published) ++ rabbit_events(connections).

rabbit_events(messages_published) ->
    Labels = #{pool_tag => event_pusher},
    [{wpool_global_rabbit_messages_published, Labels},
     {wpool_rabbit_messages_published, Labels#{host_type => ep_test_host:host_type()}}];
rabbit_events(connections) ->
    Labels = #{pool_tag => event_pusher},
    [{wpool_global_rabbit_connections, Labels},
     {wpool_rabbit_connections, Labels#{host_type => ep_test_host:host_type()}}].

%% Presences; chat and groupchat messages both as the sender sends them and
%% as each recipient gets them.
rabbit_expected(Opts, Steps) ->
    RabbitOpts = backend_opts(rabbit, Opts),
    lists:sum([N || Step <- Steps, {Key, N} <- [rabbit_deliveries(Step)],
                    maps:is_key(Key, RabbitOpts)]).

rabbit_deliveries({Status, _}) when Status =:= online; Status =:= offline ->
    {presence_exchange, 1};
rabbit_deliveries({send, _, _, <<"chat">>, _}) ->
    {chat_msg_exchange, 2};
rabbit_deliveries({groupchat, _, _, Members, _}) ->
    {groupchat_msg_exchange, 1 + length(Members)};
rabbit_deliveries(_) ->
    none.

rabbit_report({Conn = #{channel := Channel}, Queues}, Expected) ->
    title("rabbit: what the queues bound to the exchanges received (exchange, routing key, body)"),
    Fetch = fun() -> [{Name, M} || {Name, Queue} <- Queues, M <- rabbit_get_all(Conn, Queue)] end,
    {Received, Others} = drain(Fetch, fun rabbit_is_demo_message/1, Expected),
    is_process_alive(Channel) orelse
        say("(the demo's connection to RabbitMQ was lost: did the broker stop?)", []),
    Others =:= 0 orelse
        say("(~b messages for users not in the scenario skipped: "
            "another client publishes to these exchanges)", [Others]),
    [io:format("  ~-14s ~-34s ~ts~n", [Name, Key, Body])
     || {Name, #{routing_key := Key, payload := Body}} <- Received],
    case lists:usort([Props || {_, #{props := Props}} <- Received]) of
        [] -> ok;
        [Props] when map_size(Props) =:= 0 ->
            say("(no AMQP properties on any message, as MongooseIM publishes)", []);
        PropsSeen ->
            say("AMQP properties seen: ~p", [PropsSeen])
    end,
    rabbit_print_instrumentation(Expected),
    verdict(length(Received), Expected).

%% The broker may be shared (tests, benchmarks): the scenario's messages are
%% those whose routing key is one of its users' bare JIDs, or starts with one
%% and a dot (then the topic).
rabbit_is_demo_message({_Exchange, #{routing_key := Key}}) ->
    lists:any(fun(Bare) ->
                      Key =:= Bare orelse
                          binary:longest_common_prefix([Key, <<Bare/binary, ".">>])
                          =:= byte_size(Bare) + 1
              end, scenario_users()).

%% A lost connection leaves the queues' messages unread (the report says so).
rabbit_get_all(Conn, Queue) ->
    try ep_amqp:get_all(Conn, Queue)
    catch exit:_ -> []
    end.

rabbit_print_instrumentation(Expected) ->
    Published = recorded(rabbit_events(messages_published),
                         fun(Ms) -> sum(count, Ms) >= Expected end),
    Connections = recorded(rabbit_events(connections), fun(_) -> true end),
    %% Only the names of this pool's scope have recordings.
    Named = [{Event, Labels} || {Event, Labels} <- rabbit_instrumentation(),
                                mongoose_instrument:recorded(Event, Labels) =/= []],
    instrumentation_title(rabbit, Named),
    say("connections opened: ~b, failed: ~b, closed: ~b",
        [sum(opened, Connections), sum(failed, Connections), sum(closed, Connections)]),
    say("messages published: ~b, nacked: ~b, confirm timeouts: ~b",
        [sum(count, Published), sum(failed, Published), sum(timeout, Published)]),
    say_average("body size", [S || #{size := S} <- Published], "bytes"),
    %% With confirms on: from the publish to the broker's ack.
    say_average("time to publish", [T || #{time := T} <- Published], "us").

rabbit_stop({Conn, _Queues}) ->
    %% The queues are exclusive: they go with the connection.
    ep_amqp:close(Conn).

%%====================================================================
%% sns: moto's SNS (scripts/services.sh), an SQS queue subscribed to each
%% configured topic; the report prints what the queues received
%%====================================================================

sns_start(Opts) ->
    SnsOpts = #{sns_host := Host} = backend_opts(sns, Opts),
    require_local("sns_host", Host),
    ok = ep_sns:start(),
    Topics = [ep_sns:named_topic(Name, #{})
              || Key <- [presence_updates_topic, pm_messages_topic, muc_messages_topic],
                 {ok, Name} <- [maps:find(Key, SnsOpts)]],
    %% Left over from an earlier run: not this run's deliveries.
    [_ = ep_sns:messages(Topic) || Topic <- Topics],
    [say("sns: topic ~s, read through SQS queue ~s", [Arn, Url])
     || #{topic_arn := Arn, queue_url := Url} <- Topics],
    Topics.

sns_instrumentation() ->
    [{mod_event_pusher_sns_published, #{host_type => ep_test_host:host_type()}}].

%% Presences on the presence topic; chat and groupchat messages as local users
%% send them on the pm and muc topics; nothing for their deliveries.
sns_expected(Opts, Steps) ->
    SnsOpts = backend_opts(sns, Opts),
    lists:sum([1 || Step <- Steps, {ok, Key} <- [sns_topic_key(Step)],
                    maps:is_key(Key, SnsOpts)]).

sns_topic_key({Status, _}) when Status =:= online; Status =:= offline ->
    {ok, presence_updates_topic};
sns_topic_key({send, _, _, <<"chat">>, _}) ->
    {ok, pm_messages_topic};
sns_topic_key({groupchat, _, _, _, _}) ->
    {ok, muc_messages_topic};
sns_topic_key(_) ->
    none.

sns_report(Topics, Expected) ->
    title("sns: what the SQS queues subscribed to the topics received (topic, message)"),
    Fetch = fun() -> [{Name, M} || Topic = #{name := Name} <- Topics,
                                   M <- ep_sns:messages(Topic)]
            end,
    {Received, _} = drain(Fetch, fun(_) -> true end, Expected),
    [io:format("  ~-24s ~ts~n", [Name, Body]) || {Name, #{body := Body}} <- Received],
    %% Every notification ends published or dropped (the pool's owner reports it).
    Measurements = recorded(sns_instrumentation(),
                            fun(Ms) -> sum(count, Ms) + sum(dropped, Ms) >= Expected end),
    instrumentation_title(sns, sns_instrumentation()),
    say("published: ~b, requests: ~b, failed attempts: ~b, dropped: ~b",
        [sum(count, Measurements), sum(requests, Measurements), sum(failed, Measurements),
         sum(dropped, Measurements)]),
    verdict(length(Received), Expected).

sns_stop(_Topics) ->
    ep_sns:stop().

%%====================================================================
%% push: a pubsub service of the demo's own (ep_pubsub) takes the route of
%% pubsub.localhost and answers every publish with a result; Bob enables
%% push there from his session, and the report prints the publish IQs that
%% arrived for the messages he got while offline
%%====================================================================

push_service() ->
    jid(<<"pubsub.localhost">>).

push_start(Opts) ->
    Service = jid:to_binary(push_service()),
    %% A virtual pubsub host is served by the push_notifications hook: no IQ
    %% would reach the demo's service.
    Virtual = maps:get(virtual_pubsub_hosts, backend_opts(push, Opts), []),
    [demo_error("virtual_pubsub_hosts covers ~s, the demo's pubsub service: "
                "no publish IQ would reach it. Use another virtual host", [Service])
     || Pattern <- Virtual,
        mongoose_subdomain_utils:get_fqdn(Pattern, ep_test_host:host_type()) =:= Service],
    {ok, PubSub} = ep_pubsub:start(Service),
    say("push: pubsub service ~s (answers every publish with a result)", [Service]),
    PubSub.

%% The enable IQ, sent from the user's session to the user's bare JID as a
%% client sends it.
push_enable(Jid, Service, Node, PublishOptions) ->
    Id = integer_to_binary(erlang:unique_integer([positive])),
    Enable = #xmlel{name = <<"enable">>,
                    attrs = #{<<"xmlns">> => ?NS_PUSH, <<"jid">> => jid:to_binary(Service),
                              <<"node">> => Node},
                    children = push_publish_options(PublishOptions)},
    IQ = #xmlel{name = <<"iq">>, attrs = #{<<"type">> => <<"set">>, <<"id">> => Id},
                children = [Enable]},
    case mim_host_xmpp:send_iq(Jid, jid:to_bare(Jid), IQ, ?WAIT_MS) of
        {ok, Reply} ->
            case exml_query:attr(Reply, <<"type">>) of
                <<"result">> -> say("  answered: result", []);
                _ -> demo_error("the enable IQ was answered ~s", [exml:to_binary(Reply)])
            end;
        timeout ->
            demo_error("no answer to the enable IQ within ~b ms", [?WAIT_MS])
    end.

%% The publish-options form the push service gets with each notification
%% (XEP-0357; what MongoosePush is told: device, service...).
push_publish_options([]) ->
    [];
push_publish_options(PublishOptions) ->
    Fields = [push_field(<<"FORM_TYPE">>, ?NS_PUBSUB_PUB_OPTIONS, #{<<"type">> => <<"hidden">>})
              | [push_field(K, V, #{}) || {K, V} <- PublishOptions]],
    [#xmlel{name = <<"x">>, attrs = #{<<"xmlns">> => ?NS_XDATA, <<"type">> => <<"submit">>},
            children = Fields}].

push_field(Var, Value, Attrs) ->
    #xmlel{name = <<"field">>, attrs = Attrs#{<<"var">> => Var},
           children = [#xmlel{name = <<"value">>, children = [#xmlcdata{content = Value}]}]}.

push_instrumentation() ->
    [{Event, #{host_type => ep_test_host:host_type()}}
     || Event <- [mod_event_pusher_push_published, mod_event_pusher_push_skipped,
                  mod_event_pusher_push_failed, mod_event_pusher_push_disabled]].

%% With the plugins MongooseIM ships: one publish per chat or groupchat
%% message with a body delivered to a user who enabled push and has no
%% session (the scenario has no unacknowledged message and no hints), for
%% each of the user's subscriptions on Service. What another plugin publishes
%% is printed, not checked.
push_expected(Opts, Steps, Service) ->
    Shipped = [mod_event_pusher_push_plugin_defaults, mod_event_pusher_push_plugin_enhanced,
               mod_event_pusher_push_plugin_hints],
    Plugin = maps:get(plugin_module, backend_opts(push, Opts),
                      mod_event_pusher_push_plugin_defaults),
    case lists:member(Plugin, Shipped) of
        true -> push_count([S || S <- Steps, push_step_for(S, Service)], #{}, #{}, 0);
        false -> 0
    end.

push_step_for({enable_push, _, Service, _, _}, For) -> jid:are_equal(Service, For);
push_step_for(_, _) -> true.

push_count([], _Online, _Enabled, N) ->
    N;
push_count([{online, Jid} | Steps], Online, Enabled, N) ->
    push_count(Steps, Online#{bare(Jid) => true}, Enabled, N);
push_count([{offline, Jid} | Steps], Online, Enabled, N) ->
    push_count(Steps, maps:remove(bare(Jid), Online), Enabled, N);
push_count([{enable_push, Jid, _, _, _} | Steps], Online, Enabled, N) ->
    push_count(Steps, Online, Enabled#{bare(Jid) => true}, N);
push_count([{send, _, To, Type, Body} | Steps], Online, Enabled, N)
  when Type =:= <<"chat">>; Type =:= <<"groupchat">> ->
    push_count(Steps, Online, Enabled, N + push_notified([To], Online, Enabled, Body));
push_count([{groupchat, _, _, Members, Body} | Steps], Online, Enabled, N) ->
    push_count(Steps, Online, Enabled, N + push_notified(Members, Online, Enabled, Body));
push_count([_ | Steps], Online, Enabled, N) ->
    push_count(Steps, Online, Enabled, N).

push_notified(_Recipients, _Online, _Enabled, <<>>) ->
    0;
push_notified(Recipients, Online, Enabled, _Body) ->
    length([R || R <- Recipients, maps:is_key(bare(R), Enabled),
                 not maps:is_key(bare(R), Online)]).

bare(Jid) ->
    jid:to_bare(Jid).

push_report(PubSub, Expected) ->
    title("push: what the pubsub service received (publish IQs)"),
    say("(the default plugin notifies messages with a body delivered to users "
        "who enabled push and are offline)", []),
    Publishes = wait_or_last(fun() -> ep_pubsub:publishes(PubSub) end, at_least(Expected)),
    lists:foreach(fun push_print/1, Publishes),
    push_print_instrumentation(Expected),
    verdict(length(Publishes), Expected).

push_print({From, To, IQ}) ->
    io:format("  ~s -> ~s~n    ~ts~n", [jid:to_binary(From), jid:to_binary(To),
                                       exml:to_binary(IQ)]),
    Publish = exml_query:path(IQ, [{element_with_ns, <<"pubsub">>, ?NS_PUBSUB},
                                   {element, <<"publish">>}]),
    say("  node: ~s", [exml_query:attr(Publish, <<"node">>)]),
    Form = exml_query:path(Publish, [{element, <<"item">>},
                                     {element_with_ns, <<"notification">>, ?NS_PUSH},
                                     {element_with_ns, <<"x">>, ?NS_XDATA}]),
    [say("  ~-19s ~ts", [exml_query:attr(F, <<"var">>),
                         exml_query:path(F, [{element, <<"value">>}, cdata], <<>>)])
     || F <- push_fields(Form), exml_query:attr(F, <<"var">>) =/= <<"FORM_TYPE">>],
    ok.

push_fields(undefined) -> [];
push_fields(Form) -> exml_query:subelements(Form, <<"field">>).

%% Every publish IQ ends answered, failed or timed out (a pool worker reports
%% it); messages the plugin passes over are counted as skipped, with a reason.
push_print_instrumentation(Expected) ->
    Events = push_instrumentation(),
    Outcomes = [E || E = {Event, _} <- Events, Event =/= mod_event_pusher_push_skipped],
    _ = recorded(Outcomes, at_least(Expected)),
    instrumentation_title(push, Events),
    say("(counted for every push service, virtual pubsub hosts included)", []),
    [say("~s: ~b~ts", [push_outcome(Event), length(Ms), push_reasons(Ms)])
     || {Event, Labels} <- Events, Ms <- [mongoose_instrument:recorded(Event, Labels)]],
    ok.

push_outcome(mod_event_pusher_push_published) -> "published";
push_outcome(mod_event_pusher_push_skipped) -> "skipped";
push_outcome(mod_event_pusher_push_failed) -> "failed";
push_outcome(mod_event_pusher_push_disabled) -> "disabled".

push_reasons(Measurements) ->
    Reasons = [R || #{reason := R} <- Measurements],
    case lists:usort(Reasons) of
        [] -> "";
        Distinct -> [" (", lists:join(", ", [io_lib:format("~s: ~b", [R, count(R, Reasons)])
                                             || R <- Distinct]), ")"]
    end.

count(X, List) ->
    length([Y || Y <- List, Y =:= X]).

push_stop(PubSub) ->
    ep_pubsub:stop(PubSub).

%%====================================================================
%% mongoosepush: a MongoosePush stand-in (an HTTP server, as
%% ep_mongoosepush runs it) on the address of mod_push_service_mongoosepush's
%% pool; Bob enables push on the virtual pubsub host push.localhost with a
%% publish-options form naming his phone, and the report prints the requests
%% that arrived for the messages he got while offline
%%====================================================================

mongoosepush_service() ->
    jid(<<"push.localhost">>).

mongoosepush_publish_options() ->
    [{<<"service">>, <<"apns">>}, {<<"device_id">>, <<"bob-iphone-5c3a9e">>},
     {<<"silent">>, <<"false">>}, {<<"topic">>, <<"com.example.chat">>},
     {<<"priority">>, <<"high">>}, {<<"sound">>, <<"bing.aiff">>}].

mongoosepush_start(Opts) ->
    Service = jid:to_binary(mongoosepush_service()),
    Virtual = [mongoose_subdomain_utils:get_fqdn(Pattern, ep_test_host:host_type())
               || Pattern <- maps:get(virtual_pubsub_hosts, backend_opts(push, Opts), [])],
    lists:member(Service, Virtual) orelse
        demo_error("virtual_pubsub_hosts does not cover ~s, where the demo enables "
                   "MongoosePush notifications. Add \"push.@HOST@\"", [Service]),
    #{pool_name := Pool, api_version := Version} = mongoosepush_opts(Opts),
    case http_pool_hosts([Pool], Opts) of
        [Host] ->
            {Host, Sink} = http_start_sink(mongoosepush, Host),
            say("mongoosepush: virtual pubsub host ~s, API ~s, answers 200", [Service, Version]),
            Sink;
        [] ->
            demo_error("mod_push_service_mongoosepush's pool_name ~s is not an "
                       "outgoing_pools.http entry", [Pool])
    end.

mongoosepush_opts(Opts) ->
    maps:get(mod_push_service_mongoosepush, modules(Opts)).

mongoosepush_instrumentation() ->
    [{mod_push_service_mongoosepush_sent, #{host_type => ep_test_host:host_type()}}].

mongoosepush_report(Sink, Expected) ->
    title("mongoosepush: what the MongoosePush stand-in received (in arrival order)"),
    say("(one request per push notification of the virtual host: the messages "
        "with a body delivered to Bob while offline)", []),
    Requests = wait_or_last(fun() -> ep_http_sink:requests(Sink) end, at_least(Expected)),
    lists:foreach(fun mongoosepush_print/1, Requests),
    Measurements = recorded(mongoosepush_instrumentation(),
                            fun(Ms) -> sum(count, Ms) + sum(failure_count, Ms) >= Expected end),
    instrumentation_title(mongoosepush, mongoosepush_instrumentation()),
    say("answered: ~b, failed: ~b", [sum(count, Measurements), sum(failure_count, Measurements)]),
    say_average("response time", [T || #{response_time := T} <- Measurements], "us"),
    verdict(length(Requests), Expected).

mongoosepush_print(Req = #{method := Method, path := Path, body := Body, status := Status}) ->
    io:format("  ~s ~s -> ~b~n    content-type: ~s~n    body: ~ts~n",
              [Method, Path, Status, ep_http_sink:header(<<"content-type">>, Req), Body]).

mongoosepush_stop(Sink) ->
    ep_http_sink:stop(Sink).

%%====================================================================
%% Helpers
%%====================================================================

modules(Opts) ->
    maps:get({modules, ep_test_host:host_type()}, Opts, #{}).

event_pusher_opts(Opts) ->
    maps:get(mod_event_pusher, modules(Opts), #{}).

backend_opts(Backend, Opts) ->
    maps:get(Backend, event_pusher_opts(Opts), #{}).

%% The demo reads what the servers received, so they must be on this machine.
require_local(What, Address) ->
    Text = unicode:characters_to_list(Address),
    Host = case uri_string:parse(Text) of
               #{host := H} -> H;
               _ -> Text % a bare host
           end,
    lists:member(Host, ["127.0.0.1", "localhost"]) orelse
        demo_error("~s ~s is not on 127.0.0.1: the demo reads what arrives there", [What, Text]).

verdict(Got, Expected) when Got >= Expected -> {ok, {Got, Expected}};
verdict(Got, Expected) -> {error, {Got, Expected}}.

at_least(N) ->
    fun(Items) -> length(Items) >= N end.

%% Polls Fetch until Done holds for what it returns; past the deadline,
%% returns what is there (the report then says what is missing).
wait_or_last(Fetch, Done) ->
    try ep_wait:for(Fetch, Done, ?WAIT_MS)
    catch error:{wait_timeout, _} -> Fetch()
    end.

%% The same for a Fetch whose reads take what they return (a queue): the
%% items for which Keep holds accumulate until there are N or the deadline
%% passes; the others are counted.
drain(Fetch, Keep, N) ->
    drain(Fetch, Keep, N, erlang:monotonic_time(millisecond) + ?WAIT_MS, {[], 0}).

drain(Fetch, Keep, N, Deadline, {Kept, Skipped}) ->
    {New, Others} = lists:partition(Keep, Fetch()),
    All = Kept ++ New,
    Acc = {All, Skipped + length(Others)},
    case length(All) >= N orelse erlang:monotonic_time(millisecond) >= Deadline of
        true -> Acc;
        false -> receive after ?POLL_MS -> ok end, drain(Fetch, Keep, N, Deadline, Acc)
    end.

%% What MongooseIM's metrics would see: the measurements recorded for the
%% events, once Done holds for them (or at the deadline).
-spec recorded([event()], fun(([map()]) -> boolean())) -> [map()].
recorded(Events, Done) ->
    wait_or_last(fun() -> lists:append([mongoose_instrument:recorded(Event, Labels)
                                        || {Event, Labels} <- Events])
                 end, Done).

sum(Key, Measurements) ->
    lists:sum([maps:get(Key, M, 0) || M <- Measurements]).

instrumentation_title(Backend, Events) ->
    Names = [io_lib:format("~s{~s}", [Event, lists:join(",", [io_lib:format("~s=~s", [K, V])
                                                             || {K, V} <- maps:to_list(Labels)])])
             || {Event, Labels} <- Events],
    title(io_lib:format("~s: instrumentation ~s", [Backend, lists:join(" ", Names)])).

say_average(_What, [], _Unit) ->
    ok;
say_average(What, Values, Unit) ->
    say("~s: ~b ~s on average", [What, lists:sum(Values) div length(Values), Unit]).

-spec demo_error(io:format(), [term()]) -> no_return().
demo_error(Format, Args) ->
    throw({demo_error, io_lib:format(Format, Args)}).

title(Text) ->
    io:format("~n== ~ts~n", [Text]).

say(Format, Args) ->
    io:format("  " ++ Format ++ "~n", Args).
