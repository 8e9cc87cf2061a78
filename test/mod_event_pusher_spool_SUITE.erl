%% @doc The disk spool (ours, doc/durability.md) across a real crash: the
%% host runs in a peer node with `[modules.mod_event_pusher.rabbit.spool]';
%% with the broker's application stopped, N events are submitted, the
%% peer's OS process is killed with `kill -9', a new peer starts on the same
%% spool directory, the broker comes back, and every one of the N arrives at
%% a real consumer (amqp_client), read from a durable queue.
%%
%% The whole suite stops and starts the shared broker: run it under
%% `flock /tmp/ep-broker.lock'.
-module(mod_event_pusher_spool_SUITE).

-include("ep_suite.hrl").
-include_lib("kernel/include/file.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([rabbit_events_survive_kill_9_during_an_outage/1,
         rabbit_full_spool_refuses_counts_and_loses_nothing_else/1,
         rabbit_truncated_last_record_is_logged_and_the_rest_delivered/1,
         http_events_survive_kill_9_while_the_sink_is_down/1,
         sns_events_survive_kill_9_while_the_endpoint_is_down/1]).
-export([http_dead_letter_survives_kill_9_and_its_replay_arrives_once/1]).
%% Run on the peer
-export([send_chats/2, rabbit_stats/0, http_stats/0, sns_stats/0, start_log_collector/0, logged/1]).

-define(HT, <<"localhost">>).
-define(EXCHANGE, <<"ep_spool_chat">>).
-define(QUEUE, <<"ep_spool_queue">>).
-define(N, 5000).
-define(PEER_CALL_MS, 60000).
-define(WAIT_MS, 60000).
%% Reading 5,000 messages back from moto's SQS (see ep_sns) takes about a minute.
-define(SNS_WAIT_MS, 150000).

all() ->
    [rabbit_events_survive_kill_9_during_an_outage,
     rabbit_full_spool_refuses_counts_and_loses_nothing_else,
     rabbit_truncated_last_record_is_logged_and_the_rest_delivered,
     http_events_survive_kill_9_while_the_sink_is_down,
     sns_events_survive_kill_9_while_the_endpoint_is_down,
     http_dead_letter_survives_kill_9_and_its_replay_arrives_once].

init_per_suite(Config) ->
    ok = ep_amqp:start(),
    case ep_amqp:is_up() of
        true -> Config;
        false -> {fail, "RabbitMQ is not running on 127.0.0.1:5672"}
    end.

end_per_suite(_Config) ->
    ok.

init_per_testcase(Case, Config) ->
    Dir = filename:join(?config(priv_dir, Config), atom_to_list(Case)),
    Admin = ep_amqp:connect(),
    %% Durable exchange and queue: they and their binding outlive stop_app.
    ok = ep_amqp:declare_exchange(Admin, ?EXCHANGE, <<"topic">>, true),
    Q = ep_amqp:declare_queue(Admin, ?QUEUE, []),
    ok = ep_amqp:bind(Admin, Q, ?EXCHANGE, <<"#">>),
    _ = ep_amqp:purge(Admin, Q),
    ok = ep_amqp:close(Admin),
    [{spool_dir, Dir} | Config].

end_per_testcase(_Case, _Config) ->
    %% Whatever happened, the broker runs again for the next case and suite.
    case ep_amqp:is_up() of
        true -> ok;
        false -> ep_amqp:start_app(?WAIT_MS)
    end,
    Admin = ep_amqp:connect(),
    _ = ep_amqp:delete_queue(Admin, ?QUEUE),
    ok = ep_amqp:close(Admin),
    ok.

%%====================================================================
%% Cases
%%====================================================================

rabbit_events_survive_kill_9_during_an_outage(doc) ->
    ["5,000 events submitted while the broker is down are all delivered after the node "
     "was killed with kill -9 and started again on the same spool"];
rabbit_events_survive_kill_9_during_an_outage(Config) ->
    Toml = toml(?config(spool_dir, Config), 64 * 1024 * 1024),
    Peer1 = start_peer(Toml),
    ok = ep_amqp:stop_app(),
    ok = peer_call(Peer1, ?MODULE, send_chats, [1, ?N]),
    %% Each accepted event is on disk (in the OS) once the spool counts it.
    ep_wait:until(fun() -> spool_events(Peer1) =:= ?N end, ?WAIT_MS,
                  #{name => all_spooled}),
    kill_9(Peer1),
    %% The module's start declares its exchange, which needs the broker (as
    %% MongooseIM's does): the broker comes back first, then the new node
    %% starts on the spool and replays it.
    ok = ep_amqp:start_app(?WAIT_MS),
    Peer2 = start_peer(Toml),
    Received = consume_numbered(?N),
    Numbers = [N || {N, _} <- Received],
    ct:log("received ~p messages, ~p distinct", [length(Numbers), length(lists:usort(Numbers))]),
    ?assertEqual(lists:seq(1, ?N), lists:usort(Numbers)),
    %% Nothing was in flight at the crash (the broker was down): no duplicate.
    ?assertEqual(?N, length(Numbers)),
    %% Each event is recognisable by its ID (AMQP message_id), one per event,
    %% made before the crash and kept by the replay.
    Ids = lists:usort([Id || {_, Id} <- Received]),
    ?assertEqual(?N, length(Ids)),
    ?assert(lists:all(fun(Id) -> byte_size(Id) =:= 36 end, Ids)),
    ep_wait:until(fun() -> spool_events(Peer2) =:= 0 end, ?WAIT_MS, #{name => all_acked}),
    #{spool_replayed := Replayed} = peer_call(Peer2, ?MODULE, rabbit_stats, []),
    ?assertEqual(?N, Replayed),
    stop_peer(Peer2).

rabbit_full_spool_refuses_counts_and_loses_nothing_else(doc) ->
    ["With the broker down and a small spool, events beyond its limit are refused and "
     "counted as dropped_spool_full; every accepted one arrives after the broker returns"];
rabbit_full_spool_refuses_counts_and_loses_nothing_else(Config) ->
    Toml = toml(?config(spool_dir, Config), 256 * 1024),
    Peer = start_peer(Toml),
    ok = ep_amqp:stop_app(),
    ok = peer_call(Peer, ?MODULE, send_chats, [1, ?N]),
    ep_wait:until(fun() -> settled(peer_call(Peer, ?MODULE, rabbit_stats, [])) end, ?WAIT_MS,
                  #{name => spool_settled}),
    #{submitted := Accepted, dropped_spool_full := Full} = Stats =
        peer_call(Peer, ?MODULE, rabbit_stats, []),
    ct:log("stats with the broker down: ~p", [Stats]),
    ?assert(Full > 0),
    ?assertEqual(?N, Accepted + Full),
    ok = ep_amqp:start_app(?WAIT_MS),
    Numbers = consume_numbers(Accepted),
    ?assertEqual(Accepted, length(lists:usort(Numbers))),
    %% The accepted ones are the first Accepted events: refusals came last.
    ?assertEqual(lists:seq(1, Accepted), lists:usort(Numbers)),
    stop_peer(Peer).

rabbit_truncated_last_record_is_logged_and_the_rest_delivered(doc) ->
    ["A spool whose last record was cut (a crash mid-write) starts: the loss is counted and "
     "logged, every other event is delivered"];
rabbit_truncated_last_record_is_logged_and_the_rest_delivered(Config) ->
    Dir = ?config(spool_dir, Config),
    Toml = toml(Dir, 64 * 1024 * 1024),
    Peer1 = start_peer(Toml),
    ok = ep_amqp:stop_app(),
    Sent = 200,
    ok = peer_call(Peer1, ?MODULE, send_chats, [1, Sent]),
    ep_wait:until(fun() -> spool_events(Peer1) =:= Sent end, ?WAIT_MS, #{name => all_spooled}),
    kill_9(Peer1),
    [Segment] = filelib:wildcard(filename:join([Dir, "*", "*.seg"])),
    {ok, #file_info{size = Size}} = file:read_file_info(Segment),
    {ok, Fd} = file:open(Segment, [read, write, raw, binary]),
    {ok, _} = file:position(Fd, Size - 3),
    ok = file:truncate(Fd),
    ok = file:close(Fd),
    ok = ep_amqp:start_app(?WAIT_MS),
    Peer2 = start_peer(Toml),
    Stats = peer_call(Peer2, ?MODULE, rabbit_stats, []),
    ct:log("stats after the start: ~p", [Stats]),
    ?assertMatch(#{spool_corrupt := 1, spool_corrupt_bytes := Lost} when Lost > 0, Stats),
    Numbers = consume_numbers(Sent - 1),
    ?assertEqual(lists:seq(1, Sent - 1), lists:usort(Numbers)),
    ?assertEqual([], ep_amqp:get_all(ep_amqp:connect(), ?QUEUE)),
    [Report] = peer_call(Peer2, ?MODULE, logged, [event_pusher_spool_corrupt]),
    ct:log("logged: ~p", [Report]),
    ?assertMatch(#{files := 1, bytes_lost := Lost} when Lost > 0, Report),
    stop_peer(Peer2).

http_events_survive_kill_9_while_the_sink_is_down(doc) ->
    ["5,000 webhook events submitted while the HTTP sink is down (in the queue or being "
     "retried) all reach the sink after kill -9 and a new node on the same spool, each "
     "with one event ID in its JSON body"];
http_events_survive_kill_9_while_the_sink_is_down(Config) ->
    {ok, Sink} = ep_http_sink:start(),
    ok = ep_http_sink:down(Sink),
    Toml = http_toml(?config(spool_dir, Config), ep_http_sink:url(Sink)),
    Peer1 = start_peer(Toml),
    ok = peer_call(Peer1, ?MODULE, send_chats, [1, ?N]),
    ep_wait:until(fun() -> http_spool_events(Peer1) =:= ?N end, ?WAIT_MS,
                  #{name => all_spooled}),
    kill_9(Peer1),
    ok = ep_http_sink:up(Sink),
    Peer2 = start_peer(Toml),
    Requests = ep_wait:for(fun() -> ep_http_sink:requests(Sink) end,
                           fun(Rs) -> length(lists:usort([n_and_id(R) || R <- Rs])) >= ?N end,
                           ?WAIT_MS, #{name => all_delivered}),
    ByNumber = maps:groups_from_list(fun({N, _}) -> N end, fun({_, Id}) -> Id end,
                                     [n_and_id(R) || R <- Requests]),
    ct:log("~p requests for ~p numbers", [length(Requests), map_size(ByNumber)]),
    ?assertEqual(lists:seq(1, ?N), lists:sort(maps:keys(ByNumber))),
    %% Duplicates (events in flight at the crash) carry the ID they had.
    Ids = [case lists:usort(IdsOfN) of [Id] -> Id end || IdsOfN <- maps:values(ByNumber)],
    ?assertEqual(?N, length(lists:usort(Ids))),
    ?assert(length(Requests) - ?N =< 2), % at most one in flight per worker
    ep_wait:until(fun() -> http_spool_events(Peer2) =:= 0 end, ?WAIT_MS, #{name => all_acked}),
    stop_peer(Peer2),
    ep_http_sink:stop(Sink).

sns_events_survive_kill_9_while_the_endpoint_is_down(doc) ->
    ["5,000 SNS notifications to a FIFO topic submitted while the endpoint (moto, behind a "
     "proxy) is down all reach the topic's SQS queues after kill -9 and a new node on the "
     "same spool, each with one event ID (its MessageDeduplicationId) made before the crash"];
sns_events_survive_kill_9_while_the_endpoint_is_down(Config) ->
    Started = erlang:system_time(millisecond),
    ok = ep_sns:start(),
    %% A FIFO topic: SQS reports each message's MessageDeduplicationId, which
    %% our pool sets to the event ID. Ten queues: see ep_sns's doc.
    Topic = #{name := TopicName} = ep_sns:topic("spool", #{fifo => true,
                                                           shard_by => <<"message">>}),
    {ok, Proxy} = ep_sns_proxy:start(ep_sns:port()),
    ok = ep_sns_proxy:down(Proxy),
    Toml = sns_toml(?config(spool_dir, Config), TopicName, ep_sns_proxy:url(Proxy)),
    Peer1 = start_peer(Toml),
    ok = peer_call(Peer1, ?MODULE, send_chats, [1, ?N]),
    ep_wait:until(fun() -> sns_spool_events(Peer1) =:= ?N end, ?WAIT_MS, #{name => all_spooled}),
    kill_9(Peer1),
    Crashed = erlang:system_time(millisecond),
    ok = ep_sns_proxy:up(Proxy),
    Peer2 = start_peer(Toml),
    Received0 = sns_numbered(Topic, #{}, [], erlang:monotonic_time(millisecond) + ?SNS_WAIT_MS),
    %% Once the spool is empty everything was published: a late duplicate is
    %% in the queues now.
    ep_wait:until(fun() -> sns_spool_events(Peer2) =:= 0 end, ?WAIT_MS, #{name => all_acked}),
    Received = sns_read(Topic) ++ Received0,
    ByNumber = maps:groups_from_list(fun({N, _}) -> N end, fun({_, Id}) -> Id end, Received),
    ct:log("~p notifications for ~p numbers in ~p ms after the crash",
           [length(Received), map_size(ByNumber), erlang:system_time(millisecond) - Crashed]),
    ?assertEqual(lists:seq(1, ?N), lists:sort(maps:keys(ByNumber))),
    %% Duplicates (events in flight) carry the ID they had: one ID per event.
    ?assertEqual([], [{N, Ids} || {N, Ids} <- maps:to_list(ByNumber),
                                  length(lists:usort(Ids)) =/= 1]),
    Ids = lists:usort([Id || {_, Id} <- Received]),
    ?assertEqual(?N, length(Ids)),
    %% Made by the first node (UUIDv7: its time), kept by the replay.
    ?assertEqual([], [Id || Id <- Ids, not made_between(Id, Started, Crashed)]),
    stop_peer(Peer2),
    ep_sns_proxy:stop(Proxy),
    ep_sns:delete_topic(Topic).

%%====================================================================
%% On the peer
%%====================================================================

%% @doc Chat messages From..To from alice to bob, each body its number.
-spec send_chats(pos_integer(), pos_integer()) -> ok.
send_chats(From, To) ->
    lists:foreach(fun(N) ->
                          {ok, _} = ep_test_host:user_send_message(
                                      alice(), ep_test_host:message(jid:to_bare(bob()), <<"chat">>,
                                                                    integer_to_binary(N)))
                  end, lists:seq(From, To)).

%% @doc The rabbit pool's stats (with the spool's).
-spec rabbit_stats() -> map().
rabbit_stats() ->
    case mongoose_event_pusher_pool_hold:pool(rabbit, ?HT, event_pusher) of
        undefined -> #{};
        Pool -> mongoose_event_pusher_nif:pool_stats(Pool)
    end.

%% @doc The http pool's stats (with the spool's).
-spec http_stats() -> map().
http_stats() ->
    case mongoose_event_pusher_pool_hold:pool(http, ?HT, http_pool) of
        undefined -> #{};
        Pool -> mongoose_event_pusher_nif:pool_stats(Pool)
    end.

%% @doc The sns pool's stats (with the spool's).
-spec sns_stats() -> map().
sns_stats() ->
    case mongoose_event_pusher_pool_hold:pool(sns, ?HT, pusher_sns) of
        undefined -> #{};
        Pool -> mongoose_event_pusher_nif:pool_stats(Pool)
    end.

%% @doc Keeps this node's structured log reports (ep_log_capture sends them
%% to a process of this node: the peer has no distribution to send them on).
-spec start_log_collector() -> ok.
start_log_collector() ->
    Pid = spawn(fun() -> collect_logs([]) end),
    register(ep_spool_logs, Pid),
    ok = logger:add_handler(ep_log_capture, ep_log_capture,
                            #{level => all, config => #{pid => Pid}}).

%% @doc The reports logged so far with `what => What'.
-spec logged(atom()) -> [map()].
logged(What) ->
    ep_spool_logs ! {get, self()},
    receive {ep_spool_logs, Reports} -> [R || R = #{what := W} <- Reports, W =:= What]
    after 5000 -> error(no_log_collector)
    end.

collect_logs(Acc) ->
    receive
        {ep_log_capture, log, Report} -> collect_logs([Report | Acc]);
        {get, From} -> From ! {ep_spool_logs, lists:reverse(Acc)}, collect_logs(Acc)
    end.

%%====================================================================
%% Helpers
%%====================================================================

-include("ep_suite_users.hrl").

toml(Dir, MaxBytes) ->
    [ep_test_host:general_toml(),
     "[outgoing_pools.rabbit.event_pusher]\n",
     "workers = 1\n",
     "[outgoing_pools.rabbit.event_pusher.connection]\n",
     "host = \"127.0.0.1\"\n",
     "confirms_enabled = true\n",
     "reconnect.delay = 200\n",
     "[modules.mod_event_pusher.rabbit]\n",
     "event_properties = true\n",
     "[modules.mod_event_pusher.rabbit.chat_msg_exchange]\n",
     "name = \"", ?EXCHANGE, "\"\n",
     "durable = true\n",
     "[modules.mod_event_pusher.rabbit.spool]\n",
     "directory = \"", Dir, "\"\n",
     "max_bytes = ", integer_to_list(MaxBytes), "\n",
     "fsync = \"never\"\n"].

http_toml(Dir, Url) ->
    [ep_test_host:general_toml(),
     "[outgoing_pools.http.http_pool]\n",
     "workers = 2\n",
     "[outgoing_pools.http.http_pool.connection]\n",
     "host = \"", Url, "\"\n",
     "request_timeout = 1000\n",
     "[modules.mod_event_pusher.http]\n",
     "[[modules.mod_event_pusher.http.handlers]]\n",
     "path = \"spool\"\n",
     "events = [\"chat_in\"]\n",
     "format = \"json\"\n",
     "max_retries = 1000\n",
     "retry_base_delay = 100\n",
     "[modules.mod_event_pusher.http.spool]\n",
     "directory = \"", Dir, "\"\n",
     "max_bytes = 67108864\n",
     "fsync = \"never\"\n"].

sns_toml(Dir, TopicName, Url) ->
    [ep_test_host:general_toml(),
     "[modules.mod_event_pusher.sns]\n",
     "pm_messages_topic = \"", TopicName, "\"\n",
     "sns_host = \"", Url, "\"\n",
     "region = \"", ep_sns:region(), "\"\n",
     "access_key_id = \"AKIDEPSPOOL\"\n",
     "secret_access_key = \"EpSpoolSecret\"\n",
     "account_id = \"", ep_sns:account_id(), "\"\n",
     "publish_retry_count = 1000\n",
     "publish_retry_time_ms = 100\n",
     "[modules.mod_event_pusher.sns.spool]\n",
     "directory = \"", Dir, "\"\n",
     "max_bytes = 67108864\n",
     "fsync = \"never\"\n"].

sns_spool_events(Peer) ->
    maps:get(spool_events, peer_call(Peer, ?MODULE, sns_stats, []), -1).

%% Each message read from the topic's queues as {Number, EventId}, until
%% every one of 1..N came.
sns_numbered(Topic, Seen, Acc, Deadline) ->
    Got = sns_read(Topic),
    All = Got ++ Acc,
    Seen1 = maps:merge(Seen, maps:from_list(Got)),
    Late = erlang:monotonic_time(millisecond) > Deadline,
    if
        map_size(Seen1) >= ?N -> All;
        Late -> ct:fail({sns_timeout, #{distinct => map_size(Seen1), expected => ?N}});
        true -> receive after 20 -> ok end, % a pause between polls, not a wait for the result
                sns_numbered(Topic, Seen1, All, Deadline)
    end.

%% What arrived since the last read, as {Number, EventId}.
sns_read(Topic) ->
    [{binary_to_integer(Msg), Id}
     || #{json := #{<<"message">> := Msg},
          system := #{<<"MessageDeduplicationId">> := Id}} <- ep_sns:messages(Topic)].

made_between(Id, From, To) ->
    Ms = mongoose_event_pusher_event_id:unix_ms(Id),
    From =< Ms andalso Ms =< To.

http_spool_events(Peer) ->
    maps:get(spool_events, peer_call(Peer, ?MODULE, http_stats, []), -1).

n_and_id(#{body := Body}) ->
    #{<<"body">> := N, <<"id">> := Id} = jiffy:decode(Body, [return_maps]),
    {binary_to_integer(N), Id}.

%% A new node booting the host from Toml; not linked (it is killed).
start_peer(Toml) ->
    Paths = [P || P <- code:get_path(), not lists:prefix(code:root_dir(), P)],
    {ok, Peer, _Node} = peer:start(#{connection => standard_io, args => ["-pa" | Paths]}),
    ok = peer_call(Peer, ?MODULE, start_log_collector, []),
    ok = peer_call(Peer, ep_test_host, boot, [iolist_to_binary(Toml)]),
    Peer.

stop_peer(Peer) ->
    _ = peer_call(Peer, ep_test_host, shutdown, []),
    peer:stop(Peer).

kill_9(Peer) ->
    OsPid = peer_call(Peer, os, getpid, []),
    MRef = monitor(process, Peer),
    [] = os:cmd("kill -9 " ++ OsPid),
    receive {'DOWN', MRef, process, Peer, _} -> ok
    after ?WAIT_MS -> ct:fail(peer_not_dead)
    end.

peer_call(Peer, M, F, A) ->
    peer:call(Peer, M, F, A, ?PEER_CALL_MS).

spool_events(Peer) ->
    maps:get(spool_events, peer_call(Peer, ?MODULE, rabbit_stats, []), -1).

%% Every submit was either written or refused.
settled(#{submitted := Accepted, dropped_spool_full := Full, spool_events := Events}) ->
    Accepted + Full =:= ?N andalso Events =:= Accepted;
settled(_) ->
    false.

%% The message numbers that arrive, until Expected distinct ones did.
consume_numbers(Expected) ->
    [N || {N, _Id} <- consume_numbered(Expected)].

%% The same, each with its AMQP message_id (the event ID).
consume_numbered(Expected) ->
    %% A connection of its own: the case's first one died with the broker.
    _ = ep_amqp:subscribe(ep_amqp:connect(), ?QUEUE),
    consume_numbers(Expected, #{}, [], erlang:monotonic_time(millisecond) + ?WAIT_MS).

consume_numbers(Expected, Seen, Acc, _Deadline) when map_size(Seen) =:= Expected ->
    %% Late duplicates would show up right behind the last one.
    lists:reverse(Acc) ++ [numbered(M) || M <- drain(500)];
consume_numbers(Expected, Seen, Acc, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    [Msg] = ep_amqp:recv(1, Left),
    {N, _} = Numbered = numbered(Msg),
    consume_numbers(Expected, Seen#{N => true}, [Numbered | Acc], Deadline).

numbered(Msg = #{props := Props}) ->
    {number(Msg), maps:get(message_id, Props, undefined)}.

drain(QuietMs) ->
    try ep_amqp:recv(1, QuietMs) of
        [Msg] -> [Msg | drain(QuietMs)]
    catch
        error:{amqp_recv_timeout, _} -> []
    end.

number(#{payload := Payload}) ->
    #{<<"message">> := Body} = json_decode(Payload),
    binary_to_integer(Body).

json_decode(Bin) ->
    {match, [Msg]} = re:run(Bin, <<"\"message\":\"([0-9]+)\"">>, [{capture, all_but_first, binary}]),
    #{<<"message">> => Msg}.

%%====================================================================
%% Dead letters on disk (doc/durability.md): a case of its own, with its
%% helpers, after the spool's.
%%====================================================================

http_dead_letter_survives_kill_9_and_its_replay_arrives_once(doc) ->
    ["An http event the sink refuses (400) with the spool on is a dead letter on disk: "
     "after kill -9 a new node on the same spool lists it (same ID, reason, attempts, "
     "time); once the sink is fixed, a replay delivers it once, and a restart after that "
     "finds neither the letter nor the event"];
http_dead_letter_survives_kill_9_and_its_replay_arrives_once(Config) ->
    {ok, Sink} = ep_http_sink:start(),
    ok = ep_http_sink:set_status(Sink, default, 400),
    Toml = http_toml(?config(spool_dir, Config), ep_http_sink:url(Sink)),
    Peer1 = start_peer(Toml),
    ok = peer_call(Peer1, ?MODULE, send_chats, [1, 1]),
    %% The event leaves the spool only once its letter is on disk.
    [Letter] = ep_wait:for(fun() -> http_letters(Peer1) end,
                           fun(Ls) -> length(Ls) =:= 1 andalso http_spool_events(Peer1) =:= 0 end,
                           ?WAIT_MS, #{name => dead_lettered}),
    #{id := Id, reason := <<"status 400">>, attempts := 1, failed_at := FailedAt} = Letter,
    [#{status := 400} = Refused] = ep_http_sink:requests(Sink),
    ?assertEqual({1, Id}, n_and_id(Refused)),
    kill_9(Peer1),

    Peer2 = start_peer(Toml),
    ?assertMatch([#{id := Id, reason := <<"status 400">>, attempts := 1,
                    failed_at := FailedAt, backend := http}],
                 http_letters(Peer2)),
    %% Its event is not in the spool any more: nothing was sent again.
    ?assertMatch(#{spool_events := 0, spool_replayed := 0}, peer_call(Peer2, ?MODULE, http_stats, [])),
    ok = ep_http_sink:set_status(Sink, default, 200),
    ?assertEqual({ok, 1}, peer_call(Peer2, mongoose_event_pusher_dead_letters, replay,
                                    [?HT, http, all])),
    [_, #{status := 200} = Replayed] = ep_http_sink:wait_for_requests(Sink, 2, ?WAIT_MS),
    ?assertEqual({1, Id}, n_and_id(Replayed)),
    ep_wait:until(fun() -> http_spool_events(Peer2) =:= 0 end, ?WAIT_MS, #{name => replay_acked}),
    ?assertEqual([], http_letters(Peer2)),
    stop_peer(Peer2),

    Peer3 = start_peer(Toml),
    ?assertEqual([], http_letters(Peer3)),
    ?assertMatch(#{spool_events := 0, spool_replayed := 0}, peer_call(Peer3, ?MODULE, http_stats, [])),
    ?assertEqual(2, length(ep_http_sink:requests(Sink))),
    stop_peer(Peer3),
    ep_http_sink:stop(Sink).

http_letters(Peer) ->
    peer_call(Peer, mongoose_event_pusher_dead_letters, list, [?HT, http]).
