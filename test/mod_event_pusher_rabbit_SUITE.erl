%% @doc mod_event_pusher_rabbit (doc/compatibility.md §3, §5) against the real RabbitMQ on
%% 127.0.0.1:5672, read with a real amqp_client consumer: the exchanges it
%% declares, what arrives (exchange, routing key, properties, body bytes) with
%% confirms off and on, filters and metadata, a broker outage, and MongooseIM's
%% instrumentation events.
%%
%% Every case boots the emulated node from its own TOML. The functional
%% groups use one AMQP connection (`workers = 1'), so the broker receives
%% events in the order they were submitted: a marker event sent last proves
%% that what was sent before it and did not arrive was never published.
-module(mod_event_pusher_rabbit_SUITE).

-include("ep_suite.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2, init_per_testcase/2, end_per_testcase/2]).
%% startup
-export([exchanges_are_declared_with_configured_types_and_durability/1,
         presence_only_config_declares_only_the_presence_exchange/1,
         exchange_of_another_type_fails_start_naming_it/1,
         broker_down_at_start_starts_and_declares_on_connect/1,
         without_a_pool_start_fails_naming_each_exchange/1,
         without_exchanges_the_module_starts_without_a_pool/1,
         wrong_credentials_fail_start_with_the_broker_refusal/1]).
%% publish_confirms_off, publish_confirms_on
-export([user_going_online_publishes_presence_true_under_bare_jid/1,
         user_going_offline_publishes_presence_false/1,
         chat_message_sent_is_published_under_sender_sent_topic/1,
         chat_message_received_is_published_under_recipient_recv_topic/1,
         groupchat_message_sent_is_published_under_sender_sent_topic/1,
         groupchat_message_received_is_published_under_recipient_recv_topic/1,
         jids_are_lowercased_in_body_and_routing_key/1,
         message_text_is_json_escaped_as_jiffy_does/1,
         empty_body_is_published_as_empty_message/1,
         message_without_body_is_not_published/1,
         headline_normal_and_unack_events_are_not_published/1,
         hook_returns_at_once_and_keeps_its_accumulator/1]).
%% custom_exchanges
-export([custom_exchange_names_and_topics_are_used/1,
         renamed_exchanges_keep_the_default_topics/1,
         unconfigured_exchanges_get_nothing/1]).
%% filter_and_metadata
-export([filter_module_lets_only_presences_through_with_metadata/1,
         metadata_wins_on_a_clash_and_literals_stay_json/1,
         metadata_numbers_and_text_are_written_as_jiffy_writes_them/1,
         metadata_json_cannot_hold_drops_only_that_message/1]).
%% lifecycle
-export([stopping_the_module_closes_its_connections_and_restarts_leak_none/1]).
%% outage
-export([every_event_arrives_at_least_once_across_a_broker_restart/1,
         events_beyond_the_queue_bound_are_dropped_and_counted/1]).
%% instrumentation
-export([published_message_emits_count_time_size_and_payload/1,
         nacked_message_emits_failed/1,
         connections_emit_opened_and_closed/1,
         unreachable_broker_emits_connection_failed/1,
         host_type_pool_emits_events_without_global_prefix/1]).

%% A push_event handler of this suite (metadata_wins_on_a_clash...)
-export([add_clashing_metadata/3, add_number_and_text_metadata/3, add_pid_metadata/3]).

-define(WAIT_MS, 10000).
-define(HOST_TYPE, <<"localhost">>).
-define(ROOM, <<"room@muc.localhost">>).
-define(MARKER, <<"marker@localhost/m">>).
-define(DEFAULT_EXCHANGES, [<<"presence">>, <<"chat_msg">>, <<"groupchat_msg">>]).
-define(PUBLISHED, wpool_global_rabbit_messages_published).
-define(CONNECTIONS, wpool_global_rabbit_connections).
-define(LABELS, #{pool_tag => event_pusher}).
%% How long the broker stays down in the outage cases.
-define(OUTAGE_MS, 3000).

%%====================================================================
%% Suite setup
%%====================================================================

all() ->
    [{group, startup}, {group, publish_confirms_off}, {group, publish_confirms_on},
     {group, custom_exchanges}, {group, filter_and_metadata}, {group, instrumentation},
     {group, lifecycle}, {group, outage}].

groups() ->
    [{startup, [], [exchanges_are_declared_with_configured_types_and_durability,
                    presence_only_config_declares_only_the_presence_exchange,
                    exchange_of_another_type_fails_start_naming_it,
                    broker_down_at_start_starts_and_declares_on_connect,
                    wrong_credentials_fail_start_with_the_broker_refusal,
                    without_a_pool_start_fails_naming_each_exchange,
                    without_exchanges_the_module_starts_without_a_pool]},
     {publish_confirms_off, [], publish_cases()},
     {publish_confirms_on, [], publish_cases()},
     {custom_exchanges, [], [custom_exchange_names_and_topics_are_used,
                             renamed_exchanges_keep_the_default_topics,
                             unconfigured_exchanges_get_nothing]},
     {filter_and_metadata, [], [filter_module_lets_only_presences_through_with_metadata,
                                metadata_wins_on_a_clash_and_literals_stay_json,
                                metadata_numbers_and_text_are_written_as_jiffy_writes_them,
                                metadata_json_cannot_hold_drops_only_that_message]},
     {instrumentation, [], [published_message_emits_count_time_size_and_payload,
                            nacked_message_emits_failed,
                            connections_emit_opened_and_closed,
                            unreachable_broker_emits_connection_failed,
                            host_type_pool_emits_events_without_global_prefix]},
     {lifecycle, [], [stopping_the_module_closes_its_connections_and_restarts_leak_none]},
     {outage, [], [every_event_arrives_at_least_once_across_a_broker_restart,
                   events_beyond_the_queue_bound_are_dropped_and_counted]}].

publish_cases() ->
    [user_going_online_publishes_presence_true_under_bare_jid,
     user_going_offline_publishes_presence_false,
     chat_message_sent_is_published_under_sender_sent_topic,
     chat_message_received_is_published_under_recipient_recv_topic,
     groupchat_message_sent_is_published_under_sender_sent_topic,
     groupchat_message_received_is_published_under_recipient_recv_topic,
     jids_are_lowercased_in_body_and_routing_key,
     message_text_is_json_escaped_as_jiffy_does,
     empty_body_is_published_as_empty_message,
     message_without_body_is_not_published,
     headline_normal_and_unack_events_are_not_published,
     hook_returns_at_once_and_keeps_its_accumulator].

init_per_suite(Config) ->
    ok = ep_amqp:start(),
    case ep_amqp:is_up() of
        true -> Config;
        false -> {fail, "RabbitMQ is not running on 127.0.0.1:5672 "
                        "(start it: scripts/services.sh start rabbitmq)"}
    end.

end_per_suite(_Config) ->
    ok.

init_per_group(publish_confirms_on, Config) ->
    [{confirms, true} | Config];
init_per_group(outage, Config) ->
    [{confirms, true} | Config];
init_per_group(_Group, Config) ->
    [{confirms, false} | Config].

end_per_group(_Group, _Config) ->
    ok.

%% Each case names its pool options and exchanges (setup/1); exchanges left
%% by an earlier run are deleted first, so that each case declares its own.
init_per_testcase(Case, Config) ->
    Setup = setup(Case),
    maps:is_key(vhost, Setup) andalso ep_amqp:add_vhost(maps:get(vhost, Setup)),
    Admin = ep_amqp:connect(),
    delete_exchanges(Admin, Setup),
    Instrumented = maps:get(instrument, Setup, []),
    Instrumented =/= [] andalso instrument_helper:start(Instrumented),
    Config1 = [{setup, Setup}, {admin, Admin} | Config],
    case maps:get(boot, Setup, true) of
        true -> boot(Config1), consume(Config1);
        false -> Config1
    end.

end_per_testcase(_Case, Config) ->
    %% A failed outage case may have left the broker stopped.
    ep_amqp:is_up() orelse ep_amqp:start_app(?WAIT_MS * 3),
    ep_test_host:shutdown(),
    ep_filter_module:remove(?HOST_TYPE),
    Setup = ?config(setup, Config),
    Conns = [?config(admin, Config) | proplists:get_all_values(consumer, Config)],
    [ep_amqp:close(C) || C <- Conns],
    %% A fresh connection: the outage closed the case's own.
    Admin = ep_amqp:connect(),
    delete_exchanges(Admin, Setup),
    [ep_amqp:delete_queue(Admin, Q) || Q <- maps:get(queues, Setup, [])],
    ep_amqp:close(Admin),
    maps:is_key(vhost, Setup) andalso ep_amqp:delete_vhost(maps:get(vhost, Setup)),
    maps:get(instrument, Setup, []) =/= [] andalso instrument_helper:stop(),
    ok.

%% #{pool => TOML lines of the pool, conn => of its connection,
%%   exchanges => [{Key, TOML body}], boot => false (the case boots itself),
%%   consume => false (no consumer of every exchange), instrument => events to
%%   record, queues => durable queues to delete, also_delete => exchanges to
%%   delete besides the configured ones, vhost => a vhost of the case's own}
setup(exchanges_are_declared_with_configured_types_and_durability) ->
    #{boot => false,
      exchanges => [{"presence_exchange", "name = \"ep_types_presence\"\ntype = \"fanout\"\n"
                                          "durable = true"},
                    {"chat_msg_exchange", "name = \"ep_types_chat\"\ntype = \"direct\""},
                    {"groupchat_msg_exchange", "name = \"ep_types_groupchat\"\n"
                                               "type = \"headers\"\ndurable = true"}]};
setup(presence_only_config_declares_only_the_presence_exchange) ->
    #{boot => false, exchanges => [{"presence_exchange", ""}],
      also_delete => ?DEFAULT_EXCHANGES};
setup(exchange_of_another_type_fails_start_naming_it) ->
    #{boot => false, exchanges => [{"presence_exchange", "name = \"ep_conflict\""},
                                   {"chat_msg_exchange", "name = \"ep_no_conflict\""}]};
setup(broker_down_at_start_starts_and_declares_on_connect) ->
    #{boot => false, consume => false,
      exchanges => [{"presence_exchange", "name = \"ep_down_at_start\""}]};
setup(without_a_pool_start_fails_naming_each_exchange) ->
    #{boot => false, no_pool => true,
      exchanges => [{"presence_exchange", ""}, {"chat_msg_exchange", ""}]};
setup(without_exchanges_the_module_starts_without_a_pool) ->
    #{boot => false, no_pool => true, exchanges => []};
setup(wrong_credentials_fail_start_with_the_broker_refusal) ->
    #{boot => false, conn => "password = \"not-the-password\"",
      exchanges => [{"presence_exchange", ""}]};
setup(custom_exchange_names_and_topics_are_used) ->
    #{exchanges => [{"presence_exchange", "name = \"ep_custom_presence\""},
                    {"chat_msg_exchange", "name = \"ep_custom_chat\"\n"
                                          "sent_topic = \"custom_sent\"\n"
                                          "recv_topic = \"custom_recv\""},
                    {"groupchat_msg_exchange", "name = \"ep_custom_groupchat\"\n"
                                               "sent_topic = \"room_sent\"\n"
                                               "recv_topic = \"room_recv\""}]};
setup(renamed_exchanges_keep_the_default_topics) ->
    #{exchanges => [{"presence_exchange", "name = \"ep_renamed_presence\""},
                    {"chat_msg_exchange", "name = \"ep_renamed_chat\""},
                    {"groupchat_msg_exchange", "name = \"ep_renamed_groupchat\""}]};
setup(unconfigured_exchanges_get_nothing) ->
    #{exchanges => [{"presence_exchange", ""}], also_delete => ?DEFAULT_EXCHANGES};
setup(metadata_json_cannot_hold_drops_only_that_message) ->
    (default_setup())#{instrument => [{?PUBLISHED, ?LABELS}]};
setup(published_message_emits_count_time_size_and_payload) ->
    (default_setup())#{instrument => [{?PUBLISHED, ?LABELS}]};
setup(nacked_message_emits_failed) ->
    #{conn => "confirms_enabled = true",
      exchanges => [{"chat_msg_exchange", "name = \"ep_nack_chat\""}],
      queues => [<<"ep_nack_queue">>], instrument => [{?PUBLISHED, ?LABELS}],
      %% Our own queue would take what the full one rejects.
      consume => false};
setup(connections_emit_opened_and_closed) ->
    #{pool => "workers = 2", exchanges => [{"presence_exchange", ""}],
      instrument => [{?CONNECTIONS, ?LABELS}]};
setup(unreachable_broker_emits_connection_failed) ->
    #{boot => false, conn => "port = 5699", exchanges => [{"presence_exchange", ""}],
      instrument => [{?CONNECTIONS, ?LABELS}]};
setup(host_type_pool_emits_events_without_global_prefix) ->
    Labels = ?LABELS#{host_type => ?HOST_TYPE},
    (default_setup())#{pool => "scope = \"host_type\"",
                       instrument => [{wpool_rabbit_messages_published, Labels},
                                      {wpool_rabbit_connections, Labels}]};
setup(stopping_the_module_closes_its_connections_and_restarts_leak_none) ->
    %% A vhost of its own: the connections counted there are the pool's.
    #{boot => false, pool => "workers = 3", conn => "virtual_host = \"ep_lifecycle\"",
      exchanges => [{"presence_exchange", ""}], vhost => <<"ep_lifecycle">>};
setup(every_event_arrives_at_least_once_across_a_broker_restart) ->
    outage_setup("");
setup(events_beyond_the_queue_bound_are_dropped_and_counted) ->
    (outage_setup("max_worker_queue_len = 50"))#{instrument => [{?PUBLISHED, ?LABELS}]};
setup(_PublishOrFilterCase) ->
    default_setup().

%% All three exchanges with MongooseIM's default names.
default_setup() ->
    #{exchanges => [{"presence_exchange", ""}, {"chat_msg_exchange", ""},
                    {"groupchat_msg_exchange", ""}]}.

%% A durable exchange and a quorum queue (it keeps even transient messages
%% across the broker's restart), so that what was confirmed before the
%% outage is still there to count after it.
outage_setup(PoolLines) ->
    #{pool => ["workers = 2\n", PoolLines],
      conn => "reconnect.attempts = 100\nreconnect.delay = 200",
      exchanges => [{"chat_msg_exchange", "name = \"ep_outage_chat\"\ndurable = true"}],
      queues => [<<"ep_outage_queue">>], consume => false}.

%%====================================================================
%% startup
%%====================================================================

exchanges_are_declared_with_configured_types_and_durability(doc) ->
    ["Module start declares every configured exchange with its name, type and durability"];
exchanges_are_declared_with_configured_types_and_durability(Config) ->
    boot(Config),
    Listed = ep_amqp:list_exchanges(),
    ?assertEqual({<<"fanout">>, true}, maps:get(<<"ep_types_presence">>, Listed, missing)),
    ?assertEqual({<<"direct">>, false}, maps:get(<<"ep_types_chat">>, Listed, missing)),
    ?assertEqual({<<"headers">>, true}, maps:get(<<"ep_types_groupchat">>, Listed, missing)),
    Admin = ?config(admin, Config),
    ?assert(ep_amqp:exchange_is(Admin, <<"ep_types_presence">>, <<"fanout">>, true)),
    ?assertNot(ep_amqp:exchange_is(Admin, <<"ep_types_chat">>, <<"topic">>, false)).

presence_only_config_declares_only_the_presence_exchange(doc) ->
    ["With only presence_exchange configured, only the presence exchange is declared"];
presence_only_config_declares_only_the_presence_exchange(Config) ->
    boot(Config),
    Listed = ep_amqp:list_exchanges(),
    ?assertEqual({<<"topic">>, false}, maps:get(<<"presence">>, Listed, missing)),
    ?assertNot(maps:is_key(<<"chat_msg">>, Listed)),
    ?assertNot(maps:is_key(<<"groupchat_msg">>, Listed)).

exchange_of_another_type_fails_start_naming_it(doc) ->
    ["An existing exchange of another type fails the start with creating_exchanges_failed, "
     "naming the exchange and the broker's reason"];
exchange_of_another_type_fails_start_naming_it(Config) ->
    Admin = ?config(admin, Config),
    %% Declared by someone else as fanout; our config wants topic.
    ok = ep_amqp:declare_exchange(Admin, <<"ep_conflict">>, <<"fanout">>, false),
    #{what := creating_exchanges_failed, failures := Failures} = failed_boot(Config),
    ?assertEqual([presence_exchange], maps:keys(Failures)),
    #{presence_exchange := #{name := <<"ep_conflict">>, reason := Reason}} = Failures,
    ct:log("reason: ~p", [Reason]),
    ?assert(mentions(Reason, [<<"PRECONDITION_FAILED">>, <<"inequivalent">>])),
    assert_pool_released().

broker_down_at_start_starts_and_declares_on_connect(doc) ->
    ["(ours) With the broker down the module starts (MongooseIM's fails and the node does not "
     "boot); its exchanges are declared on the first connection and events published then"];
broker_down_at_start_starts_and_declares_on_connect(Config) ->
    ok = ep_amqp:stop_app(),
    try
        boot(Config)
    after
        ok = ep_amqp:start_app(?WAIT_MS * 3)
    end,
    Admin = ep_amqp:connect(),
    Exchange = <<"ep_down_at_start">>,
    ep_wait:until(fun() -> ep_amqp:exchange_exists(Admin, Exchange) end, ?WAIT_MS * 3,
                  #{name => declared_on_connect}),
    Consumer = ep_amqp:connect(),
    Queue = ep_amqp:temp_queue(Consumer),
    ok = ep_amqp:bind(Consumer, Queue, Exchange, <<"#">>),
    _ = ep_amqp:subscribe(Consumer, Queue),
    {ok, _} = ep_test_host:user_available(alice()),
    [#{routing_key := <<"alice@localhost">>}] = ep_amqp:recv(1, ?WAIT_MS),
    ok = ep_amqp:delete_exchange(Admin, Exchange),
    [ep_amqp:close(C) || C <- [Consumer, Admin]],
    ok.

wrong_credentials_fail_start_with_the_broker_refusal(doc) ->
    ["Wrong credentials fail the start with the broker's refusal, without the password"];
wrong_credentials_fail_start_with_the_broker_refusal(Config) ->
    #{what := creating_exchanges_failed, failures := Failures} = Error = failed_boot(Config),
    #{presence_exchange := #{reason := Reason}} = Failures,
    ct:log("reason: ~p", [Reason]),
    ?assert(mentions(Reason, [<<"ACCESS_REFUSED">>, <<"auth">>, <<"credentials">>,
                              <<"login">>, <<"refused">>])),
    ?assertEqual(nomatch, binary:match(term_to_binary(Error), <<"not-the-password">>)),
    assert_pool_released().

without_a_pool_start_fails_naming_each_exchange(doc) ->
    ["Without [outgoing_pools.rabbit.event_pusher] no exchange can be declared: the start "
     "fails with creating_exchanges_failed, each exchange failed with pool_not_started, "
     "as in MongooseIM"];
without_a_pool_start_fails_naming_each_exchange(Config) ->
    #{what := creating_exchanges_failed, failures := Failures} = failed_boot(Config),
    ?assertEqual(#{presence_exchange => #{name => <<"presence">>, reason => pool_not_started},
                   chat_msg_exchange => #{name => <<"chat_msg">>, reason => pool_not_started}},
                 Failures).

without_exchanges_the_module_starts_without_a_pool(doc) ->
    ["With no exchange configured there is nothing to declare or publish: the module "
     "starts without a pool, and events publish nothing"];
without_exchanges_the_module_starts_without_a_pool(Config) ->
    ok = boot(Config),
    ?assertEqual(undefined, mongoose_event_pusher_pool_registry:lookup(rabbit, ?HOST_TYPE, event_pusher)),
    {ok, _} = ep_test_host:user_available(ep_test_host:jid(<<"alice@localhost/res">>)),
    ok = ep_test_host:restart_modules().

%%====================================================================
%% publish_confirms_off, publish_confirms_on
%%====================================================================

user_going_online_publishes_presence_true_under_bare_jid(doc) ->
    ["An online user status is published to the presence exchange under the bare JID, "
     "as {\"user_id\":<full jid>,\"present\":true} with no AMQP properties"];
user_going_online_publishes_presence_true_under_bare_jid(_Config) ->
    {ok, _} = ep_test_host:user_available(alice()),
    [Msg] = ep_amqp:recv(1, ?WAIT_MS),
    assert_msg(<<"presence">>, <<"alice@localhost">>,
               <<"{\"user_id\":\"alice@localhost/phone\",\"present\":true}">>, Msg).

user_going_offline_publishes_presence_false(doc) ->
    ["An offline user status is published with \"present\":false"];
user_going_offline_publishes_presence_false(_Config) ->
    {ok, _} = ep_test_host:unset_presence(alice(), <<"bye">>),
    [Msg] = ep_amqp:recv(1, ?WAIT_MS),
    assert_msg(<<"presence">>, <<"alice@localhost">>,
               <<"{\"user_id\":\"alice@localhost/phone\",\"present\":false}">>, Msg).

chat_message_sent_is_published_under_sender_sent_topic(doc) ->
    ["A chat message a user sends goes to chat_msg under <sender bare jid>.chat_msg_sent"];
chat_message_sent_is_published_under_sender_sent_topic(_Config) ->
    send_chat(<<"Hi Bob!">>),
    [Msg] = ep_amqp:recv(1, ?WAIT_MS),
    assert_msg(<<"chat_msg">>, <<"alice@localhost.chat_msg_sent">>,
               <<"{\"to_user_id\":\"bob@localhost\",\"message\":\"Hi Bob!\","
                 "\"from_user_id\":\"alice@localhost/phone\"}">>, Msg).

chat_message_received_is_published_under_recipient_recv_topic(doc) ->
    ["A chat message delivered to a user goes to chat_msg under "
     "<recipient bare jid>.chat_msg_recv, with both full JIDs"];
chat_message_received_is_published_under_recipient_recv_topic(_Config) ->
    deliver(alice(), bob(), <<"chat">>, <<"Hi Bob!">>),
    [Msg] = ep_amqp:recv(1, ?WAIT_MS),
    assert_msg(<<"chat_msg">>, <<"bob@localhost.chat_msg_recv">>,
               <<"{\"to_user_id\":\"bob@localhost/laptop\",\"message\":\"Hi Bob!\","
                 "\"from_user_id\":\"alice@localhost/phone\"}">>, Msg).

groupchat_message_sent_is_published_under_sender_sent_topic(doc) ->
    ["A groupchat message a user sends to a room goes to groupchat_msg under "
     "<sender bare jid>.groupchat_msg_sent"];
groupchat_message_sent_is_published_under_sender_sent_topic(_Config) ->
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(room(), <<"groupchat">>, <<"Hi room">>)),
    [Msg] = ep_amqp:recv(1, ?WAIT_MS),
    assert_msg(<<"groupchat_msg">>, <<"alice@localhost.groupchat_msg_sent">>,
               <<"{\"to_user_id\":\"room@muc.localhost\",\"message\":\"Hi room\","
                 "\"from_user_id\":\"alice@localhost/phone\"}">>, Msg).

groupchat_message_received_is_published_under_recipient_recv_topic(doc) ->
    ["A groupchat message the room delivers to a member goes to groupchat_msg under "
     "<recipient bare jid>.groupchat_msg_recv, from the occupant JID"];
groupchat_message_received_is_published_under_recipient_recv_topic(_Config) ->
    Occupant = ep_test_host:jid(<<?ROOM/binary, "/alice">>),
    deliver(Occupant, bob(), <<"groupchat">>, <<"Hi room">>),
    [Msg] = ep_amqp:recv(1, ?WAIT_MS),
    assert_msg(<<"groupchat_msg">>, <<"bob@localhost.groupchat_msg_recv">>,
               <<"{\"to_user_id\":\"bob@localhost/laptop\",\"message\":\"Hi room\","
                 "\"from_user_id\":\"room@muc.localhost/alice\"}">>, Msg).

jids_are_lowercased_in_body_and_routing_key(doc) ->
    ["User and server parts are lowercased in bodies and routing keys; resources keep case"];
jids_are_lowercased_in_body_and_routing_key(_Config) ->
    Shouty = ep_test_host:jid(<<"ALICE@LocalHost/Phone">>),
    {ok, _} = ep_test_host:user_available(Shouty),
    {ok, _} = ep_test_host:user_send_message(
                Shouty, ep_test_host:message(ep_test_host:jid(<<"Bob@LOCALHOST">>),
                                             <<"chat">>, <<"x">>)),
    [Presence, Chat] = ep_amqp:recv(2, ?WAIT_MS),
    assert_msg(<<"presence">>, <<"alice@localhost">>,
               <<"{\"user_id\":\"alice@localhost/Phone\",\"present\":true}">>, Presence),
    assert_msg(<<"chat_msg">>, <<"alice@localhost.chat_msg_sent">>,
               <<"{\"to_user_id\":\"bob@localhost\",\"message\":\"x\","
                 "\"from_user_id\":\"alice@localhost/Phone\"}">>, Chat).

message_text_is_json_escaped_as_jiffy_does(doc) ->
    ["Quotes, backslashes and control characters are escaped, slashes and UTF-8 kept, "
     "byte for byte as MongooseIM's jiffy writes the body"];
message_text_is_json_escaped_as_jiffy_does(_Config) ->
    Text = <<"zażółć ❤ \"q\" back\\slash </tag>\n\ttab"/utf8>>,
    send_chat(Text),
    [#{payload := Payload}] = ep_amqp:recv(1, ?WAIT_MS),
    Jiffy = jiffy:encode(#{from_user_id => ?ALICE, to_user_id => <<"bob@localhost">>,
                           message => Text}),
    ?assertEqual(Jiffy, Payload),
    ?assertEqual(<<"{\"to_user_id\":\"bob@localhost\",\"message\":"
                   "\"zażółć ❤ \\\"q\\\" back\\\\slash </tag>\\n\\ttab\","
                   "\"from_user_id\":\"alice@localhost/phone\"}"/utf8>>, Payload).

empty_body_is_published_as_empty_message(doc) ->
    ["A message with an empty <body/> is published with \"message\":\"\""];
empty_body_is_published_as_empty_message(_Config) ->
    send_chat(<<>>),
    [Msg] = ep_amqp:recv(1, ?WAIT_MS),
    assert_msg(<<"chat_msg">>, <<"alice@localhost.chat_msg_sent">>,
               <<"{\"to_user_id\":\"bob@localhost\",\"message\":\"\","
                 "\"from_user_id\":\"alice@localhost/phone\"}">>, Msg).

message_without_body_is_not_published(doc) ->
    ["Chat and groupchat messages without <body> (markers, chat states) are not published"];
message_without_body_is_not_published(_Config) ->
    Marker = #xmlel{name = <<"displayed">>, attrs = #{<<"xmlns">> => <<"urn:xmpp:chat-markers:0">>,
                                                     <<"id">> => <<"m1">>}},
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(bob(), <<"chat">>, undefined, [Marker])),
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(room(), <<"groupchat">>, undefined, [Marker])),
    deliver(alice(), bob(), <<"chat">>, undefined),
    assert_only_marker_arrives().

headline_normal_and_unack_events_are_not_published(doc) ->
    ["Headline, normal and untyped messages and unacknowledged-message events are skipped"];
headline_normal_and_unack_events_are_not_published(_Config) ->
    [{ok, _} = ep_test_host:user_send_message(alice(), ep_test_host:message(bob(), T, <<"x">>))
     || T <- [<<"headline">>, <<"normal">>, undefined]],
    deliver(alice(), bob(), <<"headline">>, <<"x">>),
    Routed = ep_test_host:with_from_to(ep_test_host:message(bob(), <<"chat">>, <<"unacked">>),
                                       alice(), bob()),
    {ok, _} = ep_test_host:unacknowledged_message(bob(), Routed),
    assert_only_marker_arrives().

hook_returns_at_once_and_keeps_its_accumulator(doc) ->
    ["The hook returns without waiting for the broker and returns the accumulator unchanged"];
hook_returns_at_once_and_keeps_its_accumulator(_Config) ->
    El = ep_test_host:message(bob(), <<"chat">>, <<"quick">>),
    Acc = ep_test_host:new_acc(alice(), bob(), El),
    HookAcc = #{acc => Acc, metadata => #{}},
    Params = #{event => #chat_event{type = chat, direction = in, from = alice(),
                                    to = jid:to_bare(bob()), packet = El}},
    {TimeUs, Result} = timer:tc(fun() -> gen_hook:run_fold(push_event, ?HOST_TYPE,
                                                           HookAcc, Params) end),
    ?assertEqual({ok, HookAcc}, Result),
    ?assert(TimeUs < ?AT_ONCE_US),
    [#{routing_key := <<"alice@localhost.chat_msg_sent">>}] = ep_amqp:recv(1, ?WAIT_MS).

%%====================================================================
%% custom_exchanges
%%====================================================================

custom_exchange_names_and_topics_are_used(doc) ->
    ["Configured exchange names and sent/recv topics name the exchanges and routing keys"];
custom_exchange_names_and_topics_are_used(_Config) ->
    {ok, _} = ep_test_host:user_available(alice()),
    send_chat(<<"a">>),
    deliver(alice(), bob(), <<"chat">>, <<"b">>),
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(room(), <<"groupchat">>, <<"c">>)),
    deliver(ep_test_host:jid(<<?ROOM/binary, "/alice">>), bob(), <<"groupchat">>, <<"d">>),
    Got = [{X, RK} || #{exchange := X, routing_key := RK} <- ep_amqp:recv(5, ?WAIT_MS)],
    ?assertEqual([{<<"ep_custom_presence">>, <<"alice@localhost">>},
                  {<<"ep_custom_chat">>, <<"alice@localhost.custom_sent">>},
                  {<<"ep_custom_chat">>, <<"bob@localhost.custom_recv">>},
                  {<<"ep_custom_groupchat">>, <<"alice@localhost.room_sent">>},
                  {<<"ep_custom_groupchat">>, <<"bob@localhost.room_recv">>}], Got).

renamed_exchanges_keep_the_default_topics(doc) ->
    ["An exchange with a custom name and no topics still uses chat_msg_* / groupchat_msg_*"];
renamed_exchanges_keep_the_default_topics(_Config) ->
    send_chat(<<"a">>),
    deliver(alice(), bob(), <<"chat">>, <<"b">>),
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(room(), <<"groupchat">>, <<"c">>)),
    deliver(ep_test_host:jid(<<?ROOM/binary, "/alice">>), bob(), <<"groupchat">>, <<"d">>),
    Got = [{X, RK} || #{exchange := X, routing_key := RK} <- ep_amqp:recv(4, ?WAIT_MS)],
    ?assertEqual([{<<"ep_renamed_chat">>, <<"alice@localhost.chat_msg_sent">>},
                  {<<"ep_renamed_chat">>, <<"bob@localhost.chat_msg_recv">>},
                  {<<"ep_renamed_groupchat">>, <<"alice@localhost.groupchat_msg_sent">>},
                  {<<"ep_renamed_groupchat">>, <<"bob@localhost.groupchat_msg_recv">>}], Got).

unconfigured_exchanges_get_nothing(doc) ->
    ["With only the presence exchange configured, chat and groupchat events publish nothing"];
unconfigured_exchanges_get_nothing(_Config) ->
    send_chat(<<"not published">>),
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(room(), <<"groupchat">>, <<"nor this">>)),
    assert_only_marker_arrives().

%%====================================================================
%% filter_and_metadata
%%====================================================================

filter_module_lets_only_presences_through_with_metadata(doc) ->
    ["A user module at a lower priority stops chat events and adds metadata to presences, "
     "which is merged into the JSON body"];
filter_module_lets_only_presences_through_with_metadata(_Config) ->
    ep_filter_module:add(?HOST_TYPE),
    send_chat(<<"filtered out">>),
    deliver(alice(), bob(), <<"chat">>, <<"filtered out too">>),
    {ok, _} = ep_test_host:user_available(alice()),
    [Msg] = ep_amqp:recv(1, ?WAIT_MS),
    assert_msg(<<"presence">>, <<"alice@localhost">>,
               <<"{\"version\":1,\"user_id\":\"alice@localhost/phone\",\"present\":true,"
                 "\"kind\":\"status\",\"filtered_by\":\"ep_filter_module\"}">>, Msg),
    assert_only_marker_arrives(2).

metadata_wins_on_a_clash_and_literals_stay_json(doc) ->
    ["Metadata overrides a body field of the same name; true/false/null atoms are JSON "
     "literals, other atoms strings, numbers numbers"];
metadata_wins_on_a_clash_and_literals_stay_json(_Config) ->
    Handler = {push_event, ?HOST_TYPE, fun ?MODULE:add_clashing_metadata/3, #{}, 20},
    gen_hook:add_handlers([Handler]),
    gen_hook:reload_hooks(),
    try
        send_chat(<<"from the body">>),
        [Msg] = ep_amqp:recv(1, ?WAIT_MS),
        assert_msg(<<"chat_msg">>, <<"alice@localhost.chat_msg_sent">>,
                   <<"{\"to_user_id\":\"bob@localhost\",\"source\":\"some_atom\","
                     "\"seen\":true,\"nothing\":null,\"n\":42,\"message\":\"from metadata\","
                     "\"from_user_id\":\"alice@localhost/phone\",\"flag\":false}">>, Msg)
    after
        gen_hook:delete_handlers([Handler]),
        gen_hook:reload_hooks()
    end.

metadata_numbers_and_text_are_written_as_jiffy_writes_them(doc) ->
    ["The body is byte for byte what jiffy (MongooseIM's encoder) makes of the same map: "
     "floats of every magnitude, text with quotes, slashes and control characters, lists "
     "and nested objects"];
metadata_numbers_and_text_are_written_as_jiffy_writes_them(_Config) ->
    Handler = {push_event, ?HOST_TYPE, fun ?MODULE:add_number_and_text_metadata/3, #{}, 20},
    gen_hook:add_handlers([Handler]),
    gen_hook:reload_hooks(),
    try
        send_chat(<<"numbers">>),
        [#{payload := Body}] = ep_amqp:recv(1, ?WAIT_MS),
        Expected = jiffy:encode(maps:merge(#{from_user_id => <<"alice@localhost/phone">>,
                                             to_user_id => <<"bob@localhost">>,
                                             message => <<"numbers">>},
                                           number_and_text_metadata())),
        ?assertEqual(Expected, Body)
    after
        gen_hook:delete_handlers([Handler]),
        gen_hook:reload_hooks()
    end.

metadata_json_cannot_hold_drops_only_that_message(doc) ->
    ["Metadata JSON cannot hold (a pid) drops that message, logged and counted as failed; "
     "the next message is published"];
metadata_json_cannot_hold_drops_only_that_message(_Config) ->
    Handler = {push_event, ?HOST_TYPE, fun ?MODULE:add_pid_metadata/3, #{}, 20},
    gen_hook:add_handlers([Handler]),
    gen_hook:reload_hooks(),
    try
        {ok, _} = send_chat(<<"with a pid">>),
        instrument_helper:wait_and_assert(?PUBLISHED, ?LABELS, fun(#{failed := 1}) -> true end)
    after
        gen_hook:delete_handlers([Handler]),
        gen_hook:reload_hooks()
    end,
    %% The first message to arrive is the plain one: the other never went out.
    {ok, _} = send_chat(<<"plain">>),
    [#{payload := Body}] = ep_amqp:recv(1, ?WAIT_MS),
    ?assertNotEqual(nomatch, binary:match(Body, <<"plain">>)).

add_pid_metadata(HookAcc = #{metadata := Metadata}, _Params, _Extra) ->
    {ok, HookAcc#{metadata := Metadata#{owner => self()}}}.

add_number_and_text_metadata(HookAcc = #{metadata := Metadata}, _Params, _Extra) ->
    {ok, HookAcc#{metadata := maps:merge(Metadata, number_and_text_metadata())}}.

number_and_text_metadata() ->
    #{f1 => 1.0e21, f2 => 1.0e20, f3 => 1.0e16, f4 => 1.0e-6, f5 => 1.0e-7,
      f6 => 0.1, f7 => -2.5, f8 => 100.0, f9 => 1.2345e-5, f10 => 5.0e-324,
      i1 => -42, i2 => 9007199254740993,
      text => <<"q\" s\\ /path", 1, 31, 9, 10, "é"/utf8>>,
      %% Lists and nested objects (a map, or jiffy's {[{K, V}]}).
      tags => [<<"a">>, 1, 2.5, true, null, [], #{}],
      nested => #{z => #{y => [#{x => <<"deep">>}]}, a => false},
      proplist_object => {[{k1, <<"one">>}, {k3, 3}, {k2, 2}]}}.

add_clashing_metadata(HookAcc = #{metadata := Metadata}, _Params, _Extra) ->
    {ok, HookAcc#{metadata := Metadata#{message => <<"from metadata">>, seen => true,
                                        flag => false, nothing => null,
                                        source => some_atom, n => 42}}}.

%%====================================================================
%% instrumentation
%%====================================================================

published_message_emits_count_time_size_and_payload(doc) ->
    ["A published message emits wpool_global_rabbit_messages_published with count, time, "
     "size (JSON length) and payload (the JSON)"];
published_message_emits_count_time_size_and_payload(_Config) ->
    send_chat(<<"counted">>),
    [#{payload := Payload}] = ep_amqp:recv(1, ?WAIT_MS),
    Size = byte_size(Payload),
    instrument_helper:wait_and_assert(
      ?PUBLISHED, ?LABELS,
      fun(#{count := 1, time := T, size := S, payload := P}) ->
              is_integer(T) andalso T >= 0 andalso S =:= Size andalso P =:= Payload
      end),
    ?assertEqual([], [M || M <- instrument_helper:select(?PUBLISHED, ?LABELS),
                           not maps:is_key(count, M)]).

nacked_message_emits_failed(doc) ->
    ["With confirms on, a message the broker nacks (a full queue with reject-publish) "
     "emits failed; the accepted one emits count"];
nacked_message_emits_failed(Config) ->
    Admin = ?config(admin, Config),
    Q = ep_amqp:declare_queue(Admin, <<"ep_nack_queue">>,
                              [{<<"x-max-length">>, signedint, 1},
                               {<<"x-overflow">>, longstr, <<"reject-publish">>}]),
    ok = ep_amqp:bind(Admin, Q, <<"ep_nack_chat">>, <<"#">>),
    send_chat(<<"first fits">>),
    instrument_helper:wait_and_assert(?PUBLISHED, ?LABELS,
                                      fun(#{count := 1, payload := P}) ->
                                              binary:match(P, <<"first fits">>) =/= nomatch
                                      end),
    send_chat(<<"second is rejected">>),
    %% As MongooseIM's: the failed message's payload comes with it.
    instrument_helper:wait_and_assert(?PUBLISHED, ?LABELS,
                                      fun(#{failed := 1, payload := P}) ->
                                              binary:match(P, <<"second is rejected">>) =/= nomatch
                                      end),
    ?assertEqual(1, ep_amqp:queue_length(Admin, Q)).

connections_emit_opened_and_closed(doc) ->
    ["Each AMQP connection of the pool emits active +1 and opened when it opens, and "
     "active -1 and closed when the module stops"];
connections_emit_opened_and_closed(_Config) ->
    instrument_helper:wait_and_assert(?CONNECTIONS, ?LABELS,
                                      fun(#{active := 1, opened := 1}) -> true end),
    ep_wait:until(fun() -> count_matching(?CONNECTIONS, ?LABELS, #{opened => 1}) =:= 2 end,
                  ?WAIT_MS, #{name => two_connections_opened}),
    ep_test_host:shutdown(),
    ?assertEqual(2, count_matching(?CONNECTIONS, ?LABELS, #{active => -1, closed => 1})).

unreachable_broker_emits_connection_failed(doc) ->
    ["A connection that cannot be opened emits failed"];
unreachable_broker_emits_connection_failed(Config) ->
    %% (ours) The module starts anyway; its exchanges wait for a connection.
    boot(Config),
    instrument_helper:wait_and_assert(?CONNECTIONS, ?LABELS, fun(#{failed := 1}) -> true end),
    ?assertEqual(0, count_matching(?CONNECTIONS, ?LABELS, #{opened => 1})).

host_type_pool_emits_events_without_global_prefix(doc) ->
    ["A pool with scope = \"host_type\" emits wpool_rabbit_* with a host_type label"];
host_type_pool_emits_events_without_global_prefix(_Config) ->
    Labels = ?LABELS#{host_type => ?HOST_TYPE},
    instrument_helper:wait_and_assert(wpool_rabbit_connections, Labels,
                                      fun(#{active := 1, opened := 1}) -> true end),
    send_chat(<<"per host type">>),
    [#{payload := Payload}] = ep_amqp:recv(1, ?WAIT_MS),
    instrument_helper:wait_and_assert(wpool_rabbit_messages_published, Labels,
                                      fun(#{count := 1, payload := P}) -> P =:= Payload end).

%%====================================================================
%% lifecycle
%%====================================================================

stopping_the_module_closes_its_connections_and_restarts_leak_none(doc) ->
    ["The pool opens `workers' connections; stopping and starting the module again and "
     "again leaves exactly those, and a stop closes them all"];
stopping_the_module_closes_its_connections_and_restarts_leak_none(Config) ->
    boot(Config),
    wait_connections(3),
    [ok = ep_test_host:restart_modules() || _ <- lists:seq(1, 3)],
    wait_connections(3),
    {ok, _} = ep_test_host:user_available(alice()),
    ?assertMatch(#{submitted := 1}, wait_pool_idle()),
    ep_test_host:shutdown(),
    wait_connections(0),
    assert_pool_released().

wait_connections(N) ->
    ep_wait:value(fun() -> ep_amqp:connections_on(<<"ep_lifecycle">>) end, N, ?WAIT_MS,
                  #{name => connections_on_vhost, interval => 200}).

%%====================================================================
%% outage
%%====================================================================

every_event_arrives_at_least_once_across_a_broker_restart(doc) ->
    ["With confirms on, a numbered stream of chat events survives a broker stop_app/start_app "
     "mid-stream: every number arrives at least once, and the hook never waits"];
every_event_arrives_at_least_once_across_a_broker_restart(Config) ->
    #{sent := Sent, max_hook_us := MaxHookUs} = stream_through_outage(Config),
    Numbers = wait_for_numbers(Sent),
    ct:log("sent ~p, received ~p (distinct ~p), slowest hook ~p us",
           [Sent, length(Numbers), length(lists:usort(Numbers)), MaxHookUs]),
    ?assertEqual(lists:seq(1, Sent), lists:usort(Numbers)),
    ?assert(MaxHookUs < ?AT_ONCE_US * 5).

events_beyond_the_queue_bound_are_dropped_and_counted(doc) ->
    ["With max_worker_queue_len bounding the queue, events submitted while the broker is "
     "down beyond the bound are dropped, counted in the pool's stats and reported as "
     "failed; all others arrive"];
events_beyond_the_queue_bound_are_dropped_and_counted(Config) ->
    #{sent := Sent} = stream_through_outage(Config),
    Stats = wait_pool_idle(),
    Dropped = dropped(Stats),
    ct:log("sent ~p, pool stats ~p", [Sent, Stats]),
    ?assert(Dropped > 0),
    Numbers = wait_for_numbers(Sent - Dropped),
    ?assertEqual(Sent - Dropped, length(lists:usort(Numbers))),
    Failed = count_matching(?PUBLISHED, ?LABELS, #{failed => 1}),
    ?assert(Failed >= Dropped),
    instrument_helper:assert(?PUBLISHED, ?LABELS, fun(#{count := 1}) -> true end).

%% Streams chat events numbered 1, 2, ... from one user process (paced, as
%% a client sends), stops the broker once some have arrived, keeps it down
%% for ?OUTAGE_MS, starts it, and ends the stream once more events arrived
%% after the restart.
stream_through_outage(Config) ->
    Admin = ?config(admin, Config),
    Q = ep_amqp:declare_queue(Admin, <<"ep_outage_queue">>,
                              [{<<"x-queue-type">>, longstr, <<"quorum">>}]),
    ok = ep_amqp:bind(Admin, Q, <<"ep_outage_chat">>, <<"#">>),
    Streamer = start_streamer(),
    wait_queue_length(Q, 200),
    ok = ep_amqp:stop_app(),
    ct:log("broker stopped after ~p events", [streamed(Streamer)]),
    timer:sleep(?OUTAGE_MS), % the outage itself: deliberate
    ok = ep_amqp:start_app(?WAIT_MS * 3),
    After = streamed(Streamer),
    ct:log("broker started again after ~p events", [After]),
    ep_wait:until(fun() -> streamed(Streamer) >= After + 300 end, ?WAIT_MS,
                  #{name => stream_goes_on}),
    stop_streamer(Streamer).

start_streamer() ->
    Parent = self(),
    spawn_link(fun() -> stream(Parent, 1, 0) end).

stream(Parent, N, MaxUs) ->
    receive
        {stop, Ref} -> Parent ! {Ref, #{sent => N - 1, max_hook_us => MaxUs}};
        {count, Ref} -> Parent ! {Ref, N - 1}, stream(Parent, N, MaxUs)
    after 1 -> % the pace of the stream, about 1000 events/s
            {Us, {ok, _}} = timer:tc(fun() -> send_chat(integer_to_binary(N)) end),
            stream(Parent, N + 1, max(MaxUs, Us))
    end.

streamed(Streamer) -> ask(Streamer, count).

stop_streamer(Streamer) -> ask(Streamer, stop).

ask(Pid, What) ->
    Ref = make_ref(),
    Pid ! {What, Ref},
    receive {Ref, Answer} -> Answer after ?WAIT_MS -> error({streamer_timeout, What}) end.

%% Reads the queue until Expected distinct numbers arrived (duplicates are
%% allowed: at-least-once) or the deadline passed; returns every number read.
wait_for_numbers(Expected) ->
    Conn = ep_amqp:connect(),
    try
        collect_numbers(Conn, Expected, [], deadline(?WAIT_MS * 3))
    after
        ep_amqp:close(Conn)
    end.

collect_numbers(Conn, Expected, Acc, Deadline) ->
    Numbers = Acc ++ [binary_to_integer(maps:get(<<"message">>, jiffy:decode(P, [return_maps])))
                      || #{payload := P} <- ep_amqp:get_all(Conn, <<"ep_outage_queue">>)],
    Done = length(lists:usort(Numbers)) >= Expected,
    case Done orelse erlang:monotonic_time(millisecond) > Deadline of
        true ->
            Numbers; % short of Expected: the assertion shows what is missing
        false ->
            receive after 50 -> ok end, % between polls of the queue
            collect_numbers(Conn, Expected, Numbers, Deadline)
    end.

wait_queue_length(Q, Min) ->
    ep_wait:until(fun() ->
                          try
                              C = ep_amqp:connect(),
                              try ep_amqp:queue_length(C, Q) >= Min after ep_amqp:close(C) end
                          catch _:_ -> false
                          end
                  end, ?WAIT_MS * 3, #{name => {queue_length, Q, Min}, interval => 50}).

%% The rabbit pool's counters once nothing is queued or in flight.
wait_pool_idle() ->
    ep_wait:for(fun pool_stats/0,
                fun(#{queued := 0, in_flight := 0}) -> true; (_) -> false end,
                ?WAIT_MS * 3, #{name => rabbit_pool_idle}).

pool_stats() ->
    case mongoose_event_pusher_pool_registry:lookup(rabbit, ?HOST_TYPE, event_pusher) of
        undefined -> undefined;
        Pool -> mongoose_event_pusher_nif:pool_stats(Pool)
    end.

%% Everything the pool gave up, whatever the reason.
dropped(Stats) ->
    lists:sum([V || {K, V} <- maps:to_list(Stats),
                    lists:prefix("dropped", atom_to_list(K))]).

%%====================================================================
%% Helpers
%%====================================================================

-include("ep_suite_users.hrl").
room() -> ep_test_host:jid(?ROOM).

%% Alice's client sends a chat message to Bob's bare JID.
send_chat(Body) ->
    ep_test_host:user_send_message(
      alice(), ep_test_host:message(jid:to_bare(bob()), <<"chat">>, Body)).

%% The router delivers a message from From to the local To.
deliver(From, To, Type, Body) ->
    {ok, _} = ep_test_host:filter_local_packet(From, To, ep_test_host:message(To, Type, Body)).

%% A presence of the marker user, published after everything a case sent;
%% it must be the only delivery.
assert_only_marker_arrives() ->
    assert_only_marker_arrives(1).

%% The pool's counters agree: Submitted messages in all, the marker included.
assert_only_marker_arrives(Submitted) ->
    {ok, _} = ep_test_host:user_available(ep_test_host:jid(?MARKER)),
    Got = ep_amqp:recv_until(fun(#{routing_key := RK}) -> RK =:= <<"marker@localhost">> end,
                             ?WAIT_MS),
    ?assertMatch([#{routing_key := <<"marker@localhost">>}], Got),
    ?assertMatch(#{submitted := Submitted}, pool_stats()).

assert_msg(Exchange, RoutingKey, Body, Msg) ->
    ?assertEqual(#{exchange => Exchange, routing_key => RoutingKey, payload => Body,
                   props => #{}},
                 maps:with([exchange, routing_key, payload, props], Msg)).

boot(Config) ->
    ok = ep_test_host:boot(toml(Config)).

%% Boots a config whose module start must fail; returns the error.
failed_boot(Config) ->
    try ep_test_host:boot(toml(Config)) of
        ok -> ct:fail(boot_succeeded)
    catch
        error:#{what := _} = Error -> Error
    end.

toml(Config) ->
    Setup = ?config(setup, Config),
    Confirms = case ?config(confirms, Config) of
                   true -> "confirms_enabled = true\n";
                   _ -> ""
               end,
    Pool = case maps:get(no_pool, Setup, false) of
               true -> [];
               false -> ["[outgoing_pools.rabbit.event_pusher]\n",
                         maps:get(pool, Setup, "workers = 1"), "\n",
                         "[outgoing_pools.rabbit.event_pusher.connection]\n",
                         "host = \"127.0.0.1\"\n",
                         Confirms,
                         maps:get(conn, Setup, ""), "\n"]
           end,
    [ep_test_host:general_toml(),
     Pool,
     "[modules.mod_event_pusher.rabbit]\n",
     [["[modules.mod_event_pusher.rabbit.", Key, "]\n", Body, "\n"]
      || {Key, Body} <- maps:get(exchanges, Setup)]].

%% A consumer of everything the configured exchanges route: one exclusive
%% queue bound with "#" to each (all are topic exchanges here).
consume(Config) ->
    Setup = ?config(setup, Config),
    case maps:get(consume, Setup, true) of
        false ->
            Config;
        true ->
            Consumer = ep_amqp:connect(),
            Q = ep_amqp:temp_queue(Consumer),
            [ok = ep_amqp:bind(Consumer, Q, Name, <<"#">>) || Name <- exchange_names(Setup)],
            _ = ep_amqp:subscribe(Consumer, Q),
            [{consumer, Consumer} | Config]
    end.

exchange_names(Setup) ->
    [exchange_name(Key, Body) || {Key, Body} <- maps:get(exchanges, Setup)].

exchange_name(Key, Body) ->
    case re:run(Body, "name = \"([^\"]+)\"", [{capture, all_but_first, binary}]) of
        {match, [Name]} -> Name;
        nomatch -> default_name(Key)
    end.

default_name("presence_exchange") -> <<"presence">>;
default_name("chat_msg_exchange") -> <<"chat_msg">>;
default_name("groupchat_msg_exchange") -> <<"groupchat_msg">>.

delete_exchanges(Admin, Setup) ->
    Names = lists:usort(exchange_names(Setup) ++ maps:get(also_delete, Setup, [])),
    [ep_amqp:delete_exchange(Admin, Name) || Name <- Names],
    ok.

assert_pool_released() ->
    ?assertEqual(undefined,
                 mongoose_event_pusher_pool_registry:lookup(rabbit, ?HOST_TYPE, event_pusher)).

%% Reason as the pool reported it (a binary, or a term holding one) contains
%% one of the words.
mentions(Reason, Words) ->
    Text = iolist_to_binary(io_lib:format("~p", [Reason])),
    lists:any(fun(W) -> binary:match(string:lowercase(Text), string:lowercase(W)) =/= nomatch
              end, Words).

count_matching(Event, Labels, Pattern) ->
    length([M || M <- instrument_helper:select(Event, Labels),
                 maps:with(maps:keys(Pattern), M) =:= Pattern]).

deadline(Ms) ->
    erlang:monotonic_time(millisecond) + Ms.
