%% @doc mod_event_pusher_rabbit's wire options (ours, doc/rabbit.md), read by
%% a real amqp_client consumer of the RabbitMQ on 127.0.0.1:5672:
%% `event_properties' (message_id = the event ID, timestamp, content_type),
%% `persistent' (delivery_mode 2), and `mandatory': a message no queue takes
%% is counted `unroutable' and logged, retried, and delivered once a queue is
%% bound within `unroutable_retry_time_ms' (with the ID it had from the
%% start), or given up after it. Without the options nothing changes: see
%% mod_event_pusher_rabbit_SUITE (no properties at all).
-module(mod_event_pusher_rabbit_wire_SUITE).

-include("ep_suite.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([event_properties_carry_the_id_timestamp_and_type/1,
         persistent_alone_sets_only_delivery_mode/1,
         unroutable_message_is_counted_and_delivered_once_a_queue_is_bound/1,
         unroutable_message_is_given_up_after_its_retry_time/1,
         bad_wire_options_are_badarg_and_leave_the_pool_working/1]).

-define(WAIT_MS, 10000).
-define(HOST_TYPE, <<"localhost">>).
-define(EXCHANGE, <<"ep_wire_presence">>).

all() ->
    [event_properties_carry_the_id_timestamp_and_type,
     persistent_alone_sets_only_delivery_mode,
     unroutable_message_is_counted_and_delivered_once_a_queue_is_bound,
     unroutable_message_is_given_up_after_its_retry_time,
     bad_wire_options_are_badarg_and_leave_the_pool_working].

init_per_suite(Config) ->
    ok = ep_amqp:start(),
    case ep_amqp:is_up() of
        true -> Config;
        false -> {fail, "RabbitMQ is not running on 127.0.0.1:5672"}
    end.

end_per_suite(_Config) ->
    ok.

init_per_testcase(Case, Config) ->
    Admin = ep_amqp:connect(),
    ep_amqp:delete_exchange(Admin, ?EXCHANGE),
    ok = ep_log_capture:start(),
    ok = ep_test_host:boot(toml(module_lines(Case))),
    Consumer = ep_amqp:connect(),
    case Case of
        %% No queue yet: the case binds one later.
        unroutable_message_is_counted_and_delivered_once_a_queue_is_bound -> ok;
        unroutable_message_is_given_up_after_its_retry_time -> ok;
        _ -> subscribe(Consumer)
    end,
    [{admin, Admin}, {consumer, Consumer} | Config].

end_per_testcase(_Case, Config) ->
    ep_test_host:shutdown(),
    ep_log_capture:stop(),
    ep_amqp:close(?config(consumer, Config)),
    Admin = ?config(admin, Config),
    ep_amqp:delete_exchange(Admin, ?EXCHANGE),
    ep_amqp:close(Admin).

module_lines(event_properties_carry_the_id_timestamp_and_type) ->
    "event_properties = true\npersistent = true\n";
module_lines(persistent_alone_sets_only_delivery_mode) ->
    "persistent = true\n";
module_lines(unroutable_message_is_counted_and_delivered_once_a_queue_is_bound) ->
    "event_properties = true\nmandatory = true\nunroutable_retry_time_ms = 30000\n";
module_lines(unroutable_message_is_given_up_after_its_retry_time) ->
    "mandatory = true\nunroutable_retry_time_ms = 300\n";
module_lines(bad_wire_options_are_badarg_and_leave_the_pool_working) ->
    "".

toml(ModuleLines) ->
    [ep_test_host:general_toml(),
     "[outgoing_pools.rabbit.event_pusher]\nworkers = 1\n",
     "[outgoing_pools.rabbit.event_pusher.connection]\n",
     "host = \"127.0.0.1\"\nconfirms_enabled = true\n",
     "[modules.mod_event_pusher.rabbit]\n", ModuleLines,
     "[modules.mod_event_pusher.rabbit.presence_exchange]\n",
     "name = \"", ?EXCHANGE, "\"\n"].

%% A consumer of everything the exchange routes.
subscribe(Consumer) ->
    Q = ep_amqp:temp_queue(Consumer),
    ok = ep_amqp:bind(Consumer, Q, ?EXCHANGE, <<"#">>),
    _ = ep_amqp:subscribe(Consumer, Q),
    ok.

%%====================================================================
%% Cases
%%====================================================================

event_properties_carry_the_id_timestamp_and_type(doc) ->
    ["With event_properties and persistent, each message carries its own event ID as "
     "message_id, the ID's time as timestamp (s), content_type application/json and "
     "delivery_mode 2; the body is unchanged"];
event_properties_carry_the_id_timestamp_and_type(_Config) ->
    Before = erlang:system_time(millisecond),
    {ok, _} = ep_test_host:user_available(ep_test_host:jid(<<"alice@localhost/a">>)),
    {ok, _} = ep_test_host:user_available(ep_test_host:jid(<<"bob@localhost/b">>)),
    [A, B] = ep_amqp:recv(2, ?WAIT_MS),
    After = erlang:system_time(millisecond),
    ?assertEqual(<<"{\"user_id\":\"alice@localhost/a\",\"present\":true}">>,
                 maps:get(payload, A)),
    Ids = [begin
               #{props := #{message_id := Id, timestamp := Ts, content_type := Type,
                            delivery_mode := Mode} = Props} = Msg,
               ?assertEqual(4, map_size(Props)),
               Ms = mongoose_event_pusher_event_id:unix_ms(Id),
               ?assert(Ms >= Before - 1 andalso Ms =< After),
               ?assertEqual(Ms div 1000, Ts),
               ?assertEqual({<<"application/json">>, 2}, {Type, Mode}),
               Id
           end || Msg <- [A, B]],
    ?assertEqual(2, length(lists:usort(Ids))).

persistent_alone_sets_only_delivery_mode(doc) ->
    ["persistent alone adds delivery_mode 2 and no other property"];
persistent_alone_sets_only_delivery_mode(_Config) ->
    {ok, _} = ep_test_host:user_available(ep_test_host:jid(<<"alice@localhost/a">>)),
    [Msg] = ep_amqp:recv(1, ?WAIT_MS),
    ?assertEqual(#{delivery_mode => 2}, maps:get(props, Msg)).

unroutable_message_is_counted_and_delivered_once_a_queue_is_bound(doc) ->
    ["With mandatory, a message published to an exchange with no queue bound is "
     "returned: counted unroutable (not published), logged, retried; once a queue is "
     "bound it arrives once, with the ID it got before the queue existed"];
unroutable_message_is_counted_and_delivered_once_a_queue_is_bound(Config) ->
    {ok, _} = ep_test_host:user_available(ep_test_host:jid(<<"alice@localhost/a">>)),
    Stats = ep_wait:for(fun pool_stats/0,
                        fun(#{unroutable := N}) -> N >= 2; (_) -> false end,
                        ?WAIT_MS, #{name => returned_twice}),
    ?assertMatch(#{published := 0, in_flight := 1, dropped_unroutable := 0}, Stats),
    ?assertMatch(#{count := N, exchange := ?EXCHANGE, routing_key := <<"alice@localhost">>,
                   reason := <<"NO_ROUTE">>} when N >= 1,
                 ep_log_capture:wait_for(rabbit_messages_unroutable, ?WAIT_MS)),
    BoundAt = erlang:system_time(millisecond),
    subscribe(?config(consumer, Config)),
    [Msg] = ep_amqp:recv(1, ?WAIT_MS),
    #{props := #{message_id := Id}} = Msg,
    ?assert(mongoose_event_pusher_event_id:unix_ms(Id) < BoundAt),
    ep_wait:for(fun pool_stats/0,
                fun(#{published := 1, in_flight := 0, dropped_unroutable := 0}) -> true;
                   (_) -> false end,
                ?WAIT_MS, #{name => published_once}),
    %% Nothing else comes: a presence published after it is the next delivery.
    {ok, _} = ep_test_host:user_available(ep_test_host:jid(<<"marker@localhost/m">>)),
    ?assertMatch([#{routing_key := <<"marker@localhost">>}], ep_amqp:recv(1, ?WAIT_MS)).

unroutable_message_is_given_up_after_its_retry_time(doc) ->
    ["A mandatory message still unroutable at the end of unroutable_retry_time_ms is "
     "given up: counted dropped_unroutable (and logged as a drop)"];
unroutable_message_is_given_up_after_its_retry_time(_Config) ->
    {ok, _} = ep_test_host:user_available(ep_test_host:jid(<<"alice@localhost/a">>)),
    Stats = ep_wait:for(fun pool_stats/0,
                        fun(#{queued := 0, in_flight := 0, submitted := 1}) -> true;
                           (_) -> false end,
                        ?WAIT_MS, #{name => given_up}),
    ?assertMatch(#{published := 0, dropped_unroutable := 1, submitted := 1}, Stats),
    ?assert(maps:get(unroutable, Stats) >= 2).

bad_wire_options_are_badarg_and_leave_the_pool_working(doc) ->
    ["rabbit_publish with a Wire element of the wrong shape raises badarg; a good one "
     "on the same pool is published with its properties"];
bad_wire_options_are_badarg_and_leave_the_pool_working(_Config) ->
    Pool = mongoose_event_pusher_pool_registry:lookup(rabbit, ?HOST_TYPE, event_pusher),
    Tag = {mod_event_pusher_rabbit, {global, event_pusher}},
    Message = fun(Wire) -> {Tag, ?EXCHANGE, <<"k">>, [{n, 1}], #{}, Wire} end,
    [?assertError(badarg, mongoose_event_pusher_nif:rabbit_publish(Pool, Message(Wire)))
     || Wire <- [{true, true, true}, {yes, false, false}, {true, false, -1},
                 {true, false}, [true, false, false], undefined]],
    ok = mongoose_event_pusher_nif:rabbit_publish(Pool, Message({false, true, false})),
    [Msg] = ep_amqp:recv(1, ?WAIT_MS),
    ?assertEqual(#{delivery_mode => 2}, maps:get(props, Msg)),
    ?assertEqual(<<"{\"n\":1}">>, maps:get(payload, Msg)).

pool_stats() ->
    case mongoose_event_pusher_pool_registry:lookup(rabbit, ?HOST_TYPE, event_pusher) of
        undefined -> undefined;
        Pool -> mongoose_event_pusher_nif:pool_stats(Pool)
    end.
