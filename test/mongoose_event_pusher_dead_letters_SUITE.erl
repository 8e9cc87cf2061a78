%% @doc Dead letters (doc/compatibility.md §9) of the http backend against a
%% real HTTP server: an event that fails for good is kept with its last
%% error, attempts and time, listed per host type, and a replay after the
%% endpoint is fixed delivers it once (what the sink receives), with the
%% same event ID; a purge removes letters for good.
-module(mongoose_event_pusher_dead_letters_SUITE).

-include("ep_suite.hrl").

-export([all/0, init_per_testcase/2, end_per_testcase/2]).
-export([client_error_is_a_dead_letter_and_a_replay_delivers_it_once/1,
         exhausted_retries_are_a_dead_letter_replayed_by_id/1,
         purge_removes_letters_by_id_or_all/1,
         a_replay_after_a_purge_sends_nothing/1,
         letters_are_listed_per_host_type_and_backend/1,
         bad_arguments_are_rejected_without_touching_letters/1,
         rabbit_message_the_broker_refuses_is_a_dead_letter_replayed_once_fixed/1,
         sns_notification_out_of_retries_is_a_dead_letter_replayed_once_up/1]).

-define(WAIT_MS, 5000).
-define(POOL, http_pool).

all() ->
    [client_error_is_a_dead_letter_and_a_replay_delivers_it_once,
     exhausted_retries_are_a_dead_letter_replayed_by_id,
     purge_removes_letters_by_id_or_all,
     a_replay_after_a_purge_sends_nothing,
     letters_are_listed_per_host_type_and_backend,
     bad_arguments_are_rejected_without_touching_letters,
     rabbit_message_the_broker_refuses_is_a_dead_letter_replayed_once_fixed,
     sns_notification_out_of_retries_is_a_dead_letter_replayed_once_up].

-define(EXCHANGE, <<"ep_dead_letters_presence">>).

init_per_testcase(rabbit_message_the_broker_refuses_is_a_dead_letter_replayed_once_fixed,
                  Config) ->
    Admin = ep_amqp:connect(),
    ok = ep_test_host:boot([ep_test_host:general_toml(),
                            "[outgoing_pools.rabbit.event_pusher]\n"
                            "workers = 1\n"
                            "[outgoing_pools.rabbit.event_pusher.connection]\n"
                            "host = \"127.0.0.1\"\n"
                            "confirms_enabled = true\n\n"
                            "[modules.mod_event_pusher.rabbit]\n"
                            "[modules.mod_event_pusher.rabbit.presence_exchange]\n"
                            "name = \"", ?EXCHANGE, "\"\n"]),
    [{admin, Admin} | Config];
init_per_testcase(sns_notification_out_of_retries_is_a_dead_letter_replayed_once_up, Config) ->
    ok = ep_sns:start(),
    Topic = ep_sns:topic("dead"),
    {ok, Proxy} = ep_sns_proxy:start(ep_sns:port()),
    #{name := TopicName} = Topic,
    ok = ep_test_host:boot([ep_test_host:general_toml(),
                            "[modules.mod_event_pusher.sns]\n"
                            "  pm_messages_topic = \"", TopicName, "\"\n"
                            "  sns_host = \"", ep_sns_proxy:url(Proxy), "\"\n"
                            "  region = \"", ep_sns:region(), "\"\n"
                            "  access_key_id = \"AKIDEADLETTERS\"\n"
                            "  secret_access_key = \"dead-letters-secret\"\n"
                            "  account_id = \"", ep_sns:account_id(), "\"\n"
                            "  publish_retry_count = 1\n"
                            "  publish_retry_time_ms = 10\n"]),
    [{topic, Topic}, {proxy, Proxy} | Config];
init_per_testcase(_Case, Config) ->
    {ok, Sink} = ep_http_sink:start(),
    ok = ep_log_capture:start(),
    ok = ep_test_host:boot([ep_test_host:general_toml(),
                            "[outgoing_pools.http.http_pool]\n"
                            "  workers = 2\n"
                            "  [outgoing_pools.http.http_pool.connection]\n"
                            "    host = \"", ep_http_sink:url(Sink), "\"\n"
                            "    request_timeout = 2000\n\n"
                            "[modules.mod_event_pusher.http]\n"
                            "[[modules.mod_event_pusher.http.handlers]]\n"
                            "  path = \"/notify\"\n"
                            "  max_retries = 1\n"
                            "  retry_base_delay = 10\n"]),
    [{sink, Sink} | Config].

end_per_testcase(rabbit_message_the_broker_refuses_is_a_dead_letter_replayed_once_fixed,
                 Config) ->
    ep_test_host:shutdown(),
    Admin = ?config(admin, Config),
    catch ep_amqp:delete_exchange(Admin, ?EXCHANGE),
    ep_amqp:close(Admin);
end_per_testcase(sns_notification_out_of_retries_is_a_dead_letter_replayed_once_up, Config) ->
    ep_test_host:shutdown(),
    ep_sns_proxy:stop(?config(proxy, Config)),
    ep_sns:delete_topic(?config(topic, Config)),
    ep_sns:stop();
end_per_testcase(_Case, Config) ->
    ok = ep_log_capture:stop(),
    Sink = ?config(sink, Config),
    ok = ep_http_sink:up(Sink),
    ep_test_host:shutdown(),
    ep_http_sink:stop(Sink).

%%====================================================================
%% Cases
%%====================================================================

client_error_is_a_dead_letter_and_a_replay_delivers_it_once(Config) ->
    Sink = ?config(sink, Config),
    ok = ep_http_sink:set_status(Sink, default, 400),
    send_chat(<<"refused">>),
    [Letter] = wait_letters(1),
    #{id := Id, reason := <<"status 400">>, attempts := 1, target := <<"/notify">>,
      backend := http, pool := ?POOL, size := Size, failed_at := FailedAt} = Letter,
    [#{body := Body, status := 400}] = ep_http_sink:requests(Sink),
    ?assertEqual(byte_size(Body), Size),
    ?assertEqual(36, byte_size(Id)),
    ?assert(abs(os:system_time(millisecond) - FailedAt) < 60000),
    ?assertNot(maps:is_key(tag, Letter)),
    ok = ep_http_sink:set_status(Sink, default, 200),
    ?assertEqual({ok, 1}, mongoose_event_pusher_dead_letters:replay(host_type(), http, all)),
    #{action := replay, count := 1, backend := http} =
        ep_log_capture:wait_for(event_pusher_dead_letters, ?WAIT_MS),
    [_, #{body := Body, status := 200}] = all_requests(Sink, 2),
    ?assertEqual(0, mongoose_event_pusher_dead_letters:count(host_type(), http)),
    #{dead_lettered := 1, dead_letters_replayed := 1, dead_letters := 0} = stats().

exhausted_retries_are_a_dead_letter_replayed_by_id(Config) ->
    Sink = ?config(sink, Config),
    ok = ep_http_sink:set_status(Sink, default, 503),
    send_chat(<<"one">>),
    [#{id := Id1, reason := <<"status 503">>, attempts := 2}] = wait_letters(1),
    send_chat(<<"two">>),
    [#{id := Id1}, #{id := Id2}] = wait_letters(2),
    [#{body := B1}, #{body := B1}, #{body := B2}, #{body := B2}] = all_requests(Sink, 4),
    ok = ep_http_sink:set_status(Sink, default, 204),
    %% Only the selected letter goes out; the other stays.
    ?assertEqual({ok, 1}, mongoose_event_pusher_dead_letters:replay(host_type(), http, [Id2])),
    Requests = all_requests(Sink, 5),
    ?assertMatch(#{body := B2, status := 204}, lists:last(Requests)),
    [#{id := Id1}] = mongoose_event_pusher_dead_letters:list(host_type(), http).

purge_removes_letters_by_id_or_all(Config) ->
    Sink = ?config(sink, Config),
    ok = ep_http_sink:set_status(Sink, default, 404),
    [send_chat(Text) || Text <- [<<"a">>, <<"b">>, <<"c">>]],
    [#{id := IdA}, #{id := IdB}, #{id := IdC}] = wait_letters(3),
    Unknown = mongoose_event_pusher_event_id:new(),
    ?assertEqual({ok, 1}, mongoose_event_pusher_dead_letters:purge(host_type(), http, [IdB, Unknown])),
    [#{id := IdA}, #{id := IdC}] = mongoose_event_pusher_dead_letters:list(host_type(), http),
    ?assertEqual({ok, 2}, mongoose_event_pusher_dead_letters:purge(host_type(), http, all)),
    ?assertEqual(0, mongoose_event_pusher_dead_letters:count(host_type(), http)),
    #{dead_letters_purged := 3, dead_lettered := 3} = stats().

a_replay_after_a_purge_sends_nothing(Config) ->
    Sink = ?config(sink, Config),
    ok = ep_http_sink:set_status(Sink, default, 400),
    send_chat(<<"gone">>),
    _ = wait_letters(1),
    {ok, 1} = mongoose_event_pusher_dead_letters:purge(host_type(), http, all),
    ok = ep_http_sink:set_status(Sink, default, 200),
    ?assertEqual({ok, 0}, mongoose_event_pusher_dead_letters:replay(host_type(), http, all)),
    %% A later event goes through: the sink then holds everything sent.
    send_chat(<<"later">>),
    [#{status := 400}, #{status := 200, body := Later}] = all_requests(Sink, 2),
    ?assertNotEqual(nomatch, binary:match(Later, <<"later">>)).

letters_are_listed_per_host_type_and_backend(Config) ->
    Sink = ?config(sink, Config),
    ok = ep_http_sink:set_status(Sink, default, 400),
    send_chat(<<"mine">>),
    [_] = wait_letters(1),
    ?assertEqual(0, mongoose_event_pusher_dead_letters:count(<<"no such host type">>, http)),
    [?assertEqual(0, mongoose_event_pusher_dead_letters:count(host_type(), Backend))
     || Backend <- [rabbit, sns, mongoosepush]],
    ?assertEqual([], mongoose_event_pusher_dead_letters:list(host_type(), http, 0)).

bad_arguments_are_rejected_without_touching_letters(Config) ->
    Sink = ?config(sink, Config),
    ok = ep_http_sink:set_status(Sink, default, 400),
    send_chat(<<"kept">>),
    [#{id := Id}] = wait_letters(1),
    [Pool] = [P || {http, ?POOL} <- mongoose_event_pusher_pool_hold:held(mod_event_pusher_http,
                                                                        host_type()),
                   P <- [mongoose_event_pusher_pool_hold:pool(http, host_type(), ?POOL)]],
    [?assertError(badarg, mongoose_event_pusher_nif:dead_letters(Pool, Op, Arg))
     || {Op, Arg} <- [{replay, [<<"not an id">>]}, {purge, some}, {list, -1},
                      {list, many}, {remove, all}, {replay, [Id | not_a_list]}]],
    ?assertError(badarg, mongoose_event_pusher_nif:dead_letters(not_a_pool, list, 1)),
    ?assertError(function_clause, mongoose_event_pusher_dead_letters:purge(host_type(), http, some)),
    [#{id := Id}] = mongoose_event_pusher_dead_letters:list(host_type(), http).

rabbit_message_the_broker_refuses_is_a_dead_letter_replayed_once_fixed(Config) ->
    Admin = ?config(admin, Config),
    %% The broker refuses every publish to an exchange that is gone.
    ok = ep_amqp:delete_exchange(Admin, ?EXCHANGE),
    {ok, _} = ep_test_host:user_available(alice()),
    [#{id := Id, reason := Reason, target := Target, attempts := Attempts}] =
        ep_wait:for(fun() -> mongoose_event_pusher_dead_letters:list(host_type(), rabbit) end,
                    fun(Letters) -> length(Letters) >= 1 end, 30000,
                    #{name => rabbit_dead_letter}),
    ?assertNotEqual(nomatch, binary:match(Reason, <<"NOT_FOUND">>), Reason),
    ?assertEqual(<<?EXCHANGE/binary, " alice@localhost">>, Target),
    ?assert(Attempts >= 1),
    %% Fixed: the exchange is back and a consumer listens.
    ok = ep_amqp:declare_exchange(Admin, ?EXCHANGE, <<"topic">>, false),
    Consumer = ep_amqp:connect(),
    Queue = ep_amqp:temp_queue(Consumer),
    ok = ep_amqp:bind(Consumer, Queue, ?EXCHANGE, <<"#">>),
    _ = ep_amqp:subscribe(Consumer, Queue),
    ?assertEqual({ok, 1}, mongoose_event_pusher_dead_letters:replay(host_type(), rabbit, [Id])),
    [#{routing_key := <<"alice@localhost">>, payload := Payload}] = ep_amqp:recv(1, ?WAIT_MS),
    ?assertEqual(#{<<"user_id">> => <<"alice@localhost/phone">>, <<"present">> => true},
                 jiffy:decode(Payload, [return_maps])),
    ?assertEqual(0, mongoose_event_pusher_dead_letters:count(host_type(), rabbit)),
    ep_amqp:close(Consumer).

sns_notification_out_of_retries_is_a_dead_letter_replayed_once_up(Config) ->
    Proxy = ?config(proxy, Config),
    Topic = ?config(topic, Config),
    #{topic_arn := Arn} = Topic,
    ok = ep_sns_proxy:down(Proxy),
    send_chat(<<"stored">>),
    [#{id := Id, target := Target, attempts := 2}] =
        ep_wait:for(fun() -> mongoose_event_pusher_dead_letters:list(host_type(), sns) end,
                    fun(Letters) -> length(Letters) >= 1 end, ?WAIT_MS, #{name => sns_dead_letter}),
    ?assertEqual(Arn, Target),
    ok = ep_sns_proxy:up(Proxy),
    ?assertEqual({ok, 1}, mongoose_event_pusher_dead_letters:replay(host_type(), sns, [Id])),
    [#{json := Json}] = ep_sns:wait_for_messages(Topic, 1, ?WAIT_MS),
    ?assertMatch(#{<<"message">> := <<"stored">>}, Json),
    ok = ep_sns:wait_pool_idle(host_type(), ?WAIT_MS),
    ok = ep_sns:no_more_messages(Topic),
    ?assertEqual(0, mongoose_event_pusher_dead_letters:count(host_type(), sns)).

%%====================================================================
%% Helpers
%%====================================================================

-include("ep_suite_users.hrl").

host_type() ->
    ep_test_host:host_type().

send_chat(Text) ->
    {ok, _} = ep_test_host:user_send_message(alice(), ep_test_host:message(bob(), <<"chat">>, Text)),
    ok.

%% The host type's http dead letters once there are N of them.
wait_letters(N) ->
    ep_wait:for(fun() -> mongoose_event_pusher_dead_letters:list(host_type(), http) end,
                fun(Letters) -> length(Letters) >= N end, ?WAIT_MS, #{name => {dead_letters, N}}).

%% Waits for N requests and for the pool to be idle: nothing else can arrive.
all_requests(Sink, N) ->
    _ = ep_http_sink:wait_for_requests(Sink, N, ?WAIT_MS),
    ok = ep_test_host:wait_http_pool_idle(?POOL, ?WAIT_MS),
    Requests = ep_http_sink:requests(Sink),
    ?assertEqual(N, length(Requests), Requests),
    Requests.

stats() ->
    ep_test_host:http_pool_stats(?POOL).
