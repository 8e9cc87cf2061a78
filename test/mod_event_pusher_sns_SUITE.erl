%% @doc mod_event_pusher_sns (doc/compatibility.md §6) against a real SNS endpoint: moto's
%% server, with an SQS queue subscribed (raw delivery) to each topic. Cases
%% read what the queues received; a proxy of ours between the module and
%% moto records each HTTP request (Action, batch size) and can take the
%% endpoint down.
-module(mod_event_pusher_sns_SUITE).

-include("ep_suite.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
%% logger handler capturing what the cases log
-export([log/2]).

-export([user_going_online_is_published_with_bare_jid_guid/1,
         user_going_offline_is_published_with_present_false/1,
         chat_message_sent_by_user_is_published_on_pm_topic/1,
         groupchat_message_sent_by_user_is_published_on_muc_topic/1,
         unicode_body_arrives_intact/1,
         empty_body_is_published_as_empty_string/1,
         notification_is_a_plain_json_message_on_the_topic_arn/1,
         messages_delivered_to_users_are_not_published/1,
         messages_without_body_are_not_published/1,
         headline_normal_and_untyped_messages_are_not_published/1,
         metadata_of_user_modules_is_merged_into_the_notification/1,
         events_without_a_configured_topic_are_not_published/1,
         custom_plugin_guid_is_used_for_every_user_id/1,
         custom_plugin_presence_attributes_arrive_typed/1,
         custom_plugin_message_attributes_arrive_typed/1,
         published_notification_emits_count_time_and_requests/1,
         endpoint_down_then_up_delivers_the_notification_once/1,
         endpoint_down_throughout_drops_counts_and_logs_without_secret/1,
         zero_retry_time_retries_at_once_then_drops/1,
         burst_of_100_arrives_complete_in_fewer_than_20_requests/1,
         burst_of_100_without_batching_takes_100_requests/1,
         restarted_module_publishes_through_a_new_pool/1,
         endpoint_the_pool_refuses_fails_the_start_with_its_reason/1]).

-define(ROOM, <<"lobby@muc.localhost">>).
-define(SECRET, "EpSnsSecret/never+in+any+log+7f3a").
-define(ACCESS_KEY, "AKIDEPSNSTEST").
-define(WAIT_MS, 10000).
-define(METRIC, mod_event_pusher_sns_published).
-define(BURST, 100).

%%====================================================================
%% Suite setup
%%====================================================================

all() ->
    [{group, default_plugin}, {group, unconfigured_topics}, {group, custom_plugin},
     {group, delivery}, {group, batching}, {group, lifecycle}].

groups() ->
    [{default_plugin, [],
      [user_going_online_is_published_with_bare_jid_guid,
       user_going_offline_is_published_with_present_false,
       chat_message_sent_by_user_is_published_on_pm_topic,
       groupchat_message_sent_by_user_is_published_on_muc_topic,
       unicode_body_arrives_intact,
       empty_body_is_published_as_empty_string,
       notification_is_a_plain_json_message_on_the_topic_arn,
       messages_delivered_to_users_are_not_published,
       messages_without_body_are_not_published,
       headline_normal_and_untyped_messages_are_not_published,
       metadata_of_user_modules_is_merged_into_the_notification]},
     {unconfigured_topics, [],
      [events_without_a_configured_topic_are_not_published]},
     {custom_plugin, [],
      [custom_plugin_guid_is_used_for_every_user_id,
       custom_plugin_presence_attributes_arrive_typed,
       custom_plugin_message_attributes_arrive_typed]},
     {delivery, [],
      [published_notification_emits_count_time_and_requests,
       endpoint_down_then_up_delivers_the_notification_once,
       endpoint_down_throughout_drops_counts_and_logs_without_secret,
       zero_retry_time_retries_at_once_then_drops]},
     {batching, [],
      [burst_of_100_arrives_complete_in_fewer_than_20_requests,
       burst_of_100_without_batching_takes_100_requests]},
     {lifecycle, [],
      [restarted_module_publishes_through_a_new_pool,
       endpoint_the_pool_refuses_fails_the_start_with_its_reason]}].

init_per_suite(Config) ->
    ok = ep_sns:start(),
    Config.

end_per_suite(_Config) ->
    ep_sns:stop().

%% Each case boots its own node with fresh topics, behind a fresh proxy.
init_per_testcase(Case, Config) ->
    #{topics := Kinds, opts := ExtraOpts} = Setup = setup(Case),
    TopicOpts = maps:with([raw_delivery], Setup),
    Topics = maps:from_list([{Kind, ep_sns:topic(atom_to_list(Kind), TopicOpts)}
                             || Kind <- Kinds]),
    {ok, Proxy} = ep_sns_proxy:start(ep_sns:port()),
    case maps:get(capture_logs, Setup, false) of
        true -> ok = capture_logs();
        false -> ok
    end,
    case maps:get(instrumented, Setup, false) of
        true -> instrument_helper:start([{?METRIC, labels()}]);
        false -> ok
    end,
    Toml = [ep_test_host:general_toml(),
            module_toml(Topics, maps:get(sns_host, Setup, ep_sns_proxy:url(Proxy)), ExtraOpts)],
    case maps:get(boot, Setup, true) of
        true -> ok = ep_test_host:boot(Toml);
        false -> ok
    end,
    [{topics, Topics}, {proxy, Proxy}, {setup, Setup}, {toml, Toml} | Config].

end_per_testcase(_Case, Config) ->
    Setup = ?config(setup, Config),
    ok = ep_sns_proxy:up(?config(proxy, Config)),
    ep_test_host:shutdown(),
    ep_sns_proxy:stop(?config(proxy, Config)),
    [ep_sns:delete_topic(T) || T <- maps:values(?config(topics, Config))],
    case maps:get(capture_logs, Setup, false) of
        true -> stop_capturing_logs();
        false -> ok
    end,
    case maps:get(instrumented, Setup, false) of
        true -> instrument_helper:stop();
        false -> ok
    end.

%% #{topics := [Kind], opts := [{Key, TomlValue}], instrumented, capture_logs,
%%   raw_delivery, sns_host (default: the proxy), boot (default true)}
setup(events_without_a_configured_topic_are_not_published) ->
    #{topics => [pm], opts => []};
setup(Case) when Case =:= custom_plugin_guid_is_used_for_every_user_id;
                 Case =:= custom_plugin_presence_attributes_arrive_typed;
                 Case =:= custom_plugin_message_attributes_arrive_typed ->
    %% SNS's envelope: moto loses raw-delivered messages with a Binary attribute.
    #{topics => all_kinds(), opts => [{plugin_module, "\"ep_sns_plugin\""}],
      raw_delivery => false};
setup(published_notification_emits_count_time_and_requests) ->
    #{topics => all_kinds(), opts => [], instrumented => true};
setup(endpoint_down_then_up_delivers_the_notification_once) ->
    #{topics => all_kinds(), instrumented => true,
      opts => [{publish_retry_count, "6"}, {publish_retry_time_ms, "100"}]};
setup(endpoint_down_throughout_drops_counts_and_logs_without_secret) ->
    #{topics => all_kinds(), instrumented => true, capture_logs => true,
      opts => [{publish_retry_count, "2"}, {publish_retry_time_ms, "10"}]};
setup(zero_retry_time_retries_at_once_then_drops) ->
    #{topics => all_kinds(), instrumented => true,
      opts => [{publish_retry_count, "3"}, {publish_retry_time_ms, "0"}]};
setup(endpoint_the_pool_refuses_fails_the_start_with_its_reason) ->
    #{topics => [], opts => [], boot => false, sns_host => "http://not a host:80",
      capture_logs => true};
setup(burst_of_100_arrives_complete_in_fewer_than_20_requests) ->
    #{topics => all_kinds(), opts => [{publish_batching, "true"}]};
setup(burst_of_100_without_batching_takes_100_requests) ->
    #{topics => all_kinds(), opts => [{publish_batching, "false"}]};
setup(_Case) ->
    #{topics => all_kinds(), opts => []}.

all_kinds() ->
    [presence, pm, muc].

module_toml(Topics, Url, ExtraOpts) ->
    TopicOpts = [{topic_key(Kind), quote(Name)} || {Kind, #{name := Name}} <- maps:to_list(Topics)],
    Opts = TopicOpts ++
        [{sns_host, quote(Url)},
         {region, quote(ep_sns:region())},
         {access_key_id, quote(?ACCESS_KEY)},
         {secret_access_key, quote(?SECRET)},
         {account_id, quote(ep_sns:account_id())} | ExtraOpts],
    ["[modules.mod_event_pusher.sns]\n",
     [["  ", atom_to_list(K), " = ", V, "\n"] || {K, V} <- Opts]].

topic_key(presence) -> presence_updates_topic;
topic_key(pm) -> pm_messages_topic;
topic_key(muc) -> muc_messages_topic.

quote(S) -> ["\"", S, "\""].

%%====================================================================
%% Default plugin
%%====================================================================

user_going_online_is_published_with_bare_jid_guid(doc) ->
    ["A user going online publishes {user_id: bare JID, present: true} on the presence topic"];
user_going_online_is_published_with_bare_jid_guid(Config) ->
    {ok, _} = ep_test_host:user_available(ep_test_host:jid(<<"Alice@LocalHost/Phone">>)),
    ?assertEqual(#{<<"user_id">> => <<"alice@localhost">>, <<"present">> => true},
                 the_notification(Config, presence)).

user_going_offline_is_published_with_present_false(doc) ->
    ["A user going offline publishes {user_id: bare JID, present: false} on the presence topic"];
user_going_offline_is_published_with_present_false(Config) ->
    {ok, _} = ep_test_host:unset_presence(alice(), <<"bye">>),
    ?assertEqual(#{<<"user_id">> => <<"alice@localhost">>, <<"present">> => false},
                 the_notification(Config, presence)).

chat_message_sent_by_user_is_published_on_pm_topic(doc) ->
    ["A chat message a user sends publishes {from_user_id, to_user_id, message} on the pm topic"];
chat_message_sent_by_user_is_published_on_pm_topic(Config) ->
    send_chat(<<"Hello Bob">>),
    ?assertEqual(#{<<"from_user_id">> => <<"alice@localhost">>,
                   <<"to_user_id">> => <<"bob@localhost">>,
                   <<"message">> => <<"Hello Bob">>},
                 the_notification(Config, pm)),
    assert_nothing_on(Config, [presence, muc]).

groupchat_message_sent_by_user_is_published_on_muc_topic(doc) ->
    ["A groupchat message a user sends publishes {from_user_id, to_user_id: room, message} on the muc topic"];
groupchat_message_sent_by_user_is_published_on_muc_topic(Config) ->
    send_groupchat(<<"Hello room">>),
    ?assertEqual(#{<<"from_user_id">> => <<"alice@localhost">>,
                   <<"to_user_id">> => <<"lobby@muc.localhost">>,
                   <<"message">> => <<"Hello room">>},
                 the_notification(Config, muc)),
    assert_nothing_on(Config, [presence, pm]).

unicode_body_arrives_intact(doc) ->
    ["A body with non-ASCII text and JSON-special characters arrives unchanged"];
unicode_body_arrives_intact(Config) ->
    Text = <<"Zażółć gęślą jaźń ❤ 😀 \"quoted\" \\ back\nnew line"/utf8>>,
    send_chat(Text),
    #{<<"message">> := Got} = the_notification(Config, pm),
    ?assertEqual(Text, Got).

empty_body_is_published_as_empty_string(doc) ->
    ["A message with an empty <body/> is published with message \"\""];
empty_body_is_published_as_empty_string(Config) ->
    {ok, _} = ep_test_host:user_send_message(
                alice(), #xmlel{name = <<"message">>,
                                attrs = #{<<"to">> => ?BOB, <<"type">> => <<"chat">>},
                                children = [#xmlel{name = <<"body">>}]}),
    ?assertMatch(#{<<"message">> := <<>>}, the_notification(Config, pm)).

notification_is_a_plain_json_message_on_the_topic_arn(doc) ->
    ["SNS gets one Publish to arn:aws:sns:<region>:<account>:<topic> with the compact JSON as a plain Message"];
notification_is_a_plain_json_message_on_the_topic_arn(Config) ->
    send_chat(<<"plain">>),
    [#{body := Body}] = all_messages(Config, pm, 1),
    %% Keys in the order jiffy writes MongooseIM's event map.
    ?assertEqual(<<"{\"to_user_id\":\"bob@localhost\",\"message\":\"plain\","
                   "\"from_user_id\":\"alice@localhost\"}">>, Body),
    #{topic_arn := Arn} = topic(Config, pm),
    ?assertEqual(iolist_to_binary(["arn:aws:sns:", ep_sns:region(), ":", ep_sns:account_id(),
                                   ":", maps:get(name, topic(Config, pm))]), Arn),
    [Request] = ep_sns_proxy:requests(?config(proxy, Config)),
    Params = publish_params(Request),
    ?assertEqual(Arn, proplists:get_value(<<"TopicArn">>, Params)),
    ?assertEqual(Body, proplists:get_value(<<"Message">>, Params)),
    ?assertEqual(undefined, proplists:get_value(<<"MessageStructure">>, Params)).

messages_delivered_to_users_are_not_published(doc) ->
    ["`out' chat and groupchat events (messages delivered to a user) publish nothing"];
messages_delivered_to_users_are_not_published(Config) ->
    {ok, _} = ep_test_host:filter_local_packet(
                alice(), bob(), ep_test_host:message(bob(), <<"chat">>, <<"out chat">>)),
    {ok, _} = ep_test_host:filter_local_packet(
                room(), bob(), ep_test_host:message(bob(), <<"groupchat">>, <<"out muc">>)),
    assert_only_markers_arrive(Config).

messages_without_body_are_not_published(doc) ->
    ["Chat and groupchat messages without a <body/> publish nothing"];
messages_without_body_are_not_published(Config) ->
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(bob(), <<"chat">>, undefined)),
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(room(), <<"groupchat">>, undefined)),
    assert_only_markers_arrive(Config).

headline_normal_and_untyped_messages_are_not_published(doc) ->
    ["Headline, normal and untyped messages and presence stanzas publish nothing"];
headline_normal_and_untyped_messages_are_not_published(Config) ->
    [{ok, _} = ep_test_host:user_send_message(alice(), ep_test_host:message(bob(), T, <<"x">>))
     || T <- [<<"headline">>, <<"normal">>, undefined]],
    {ok, _} = ep_test_host:filter_local_packet(alice(), bob(), ep_test_host:presence(undefined)),
    assert_only_markers_arrive(Config).

metadata_of_user_modules_is_merged_into_the_notification(doc) ->
    ["(ours) Metadata a user module adds before the backends is merged into the JSON"];
metadata_of_user_modules_is_merged_into_the_notification(Config) ->
    ok = ep_filter_module:add(ep_test_host:host_type()),
    try
        {ok, _} = ep_test_host:user_available(alice()),
        [#{body := Body}] = all_messages(Config, presence, 1),
        ?assertEqual(<<"{\"version\":1,\"user_id\":\"alice@localhost\",\"present\":true,"
                       "\"kind\":\"status\",\"filtered_by\":\"ep_filter_module\"}">>, Body)
    after
        ep_filter_module:remove(ep_test_host:host_type())
    end.

%%====================================================================
%% Unconfigured topics
%%====================================================================

events_without_a_configured_topic_are_not_published(doc) ->
    ["With only pm_messages_topic set, presences and groupchat messages publish nothing"];
events_without_a_configured_topic_are_not_published(Config) ->
    {ok, _} = ep_test_host:user_available(alice()),
    {ok, _} = ep_test_host:unset_presence(alice(), <<>>),
    send_groupchat(<<"no muc topic">>),
    send_chat(<<"marker">>),
    ?assertMatch(#{<<"message">> := <<"marker">>}, the_notification(Config, pm)),
    %% Nothing but the marker reached the endpoint, on any topic.
    ?assertMatch([_], ep_sns_proxy:requests(?config(proxy, Config))).

%%====================================================================
%% Custom plugin
%%====================================================================

custom_plugin_guid_is_used_for_every_user_id(doc) ->
    ["plugin_module:user_guid/1 gives user_id, from_user_id and to_user_id"];
custom_plugin_guid_is_used_for_every_user_id(Config) ->
    {ok, _} = ep_test_host:user_available(alice()),
    send_chat(<<"hi">>),
    send_groupchat(<<"hi all">>),
    ?assertMatch(#{<<"user_id">> := <<"guid:alice@localhost">>},
                 the_notification(Config, presence)),
    ?assertMatch(#{<<"from_user_id">> := <<"guid:alice@localhost">>,
                   <<"to_user_id">> := <<"guid:bob@localhost">>},
                 the_notification(Config, pm)),
    ?assertMatch(#{<<"from_user_id">> := <<"guid:alice@localhost">>,
                   <<"to_user_id">> := <<"guid:lobby@muc.localhost">>},
                 the_notification(Config, muc)).

custom_plugin_presence_attributes_arrive_typed(doc) ->
    ["message_attributes/3 gets the topic ARN, the JID and IsOnline; charlist, number and "
     "binary values arrive as String, Number and Binary attributes"];
custom_plugin_presence_attributes_arrive_typed(Config) ->
    {ok, _} = ep_test_host:unset_presence(alice(), <<>>),
    [#{attributes := Attrs}] = all_messages(Config, presence, 1),
    #{topic_arn := Arn} = topic(Config, presence),
    ?assertEqual(#{<<"topic">> => {<<"String">>, Arn},
                   <<"user">> => {<<"String">>, <<"alice">>},
                   <<"online">> => {<<"Number">>, <<"0">>},
                   <<"raw">> => {<<"Binary">>, <<0, 1, 255>>}},
                 Attrs).

custom_plugin_message_attributes_arrive_typed(doc) ->
    ["message_attributes/5 gets the topic ARN, From, To, pm | muc and the packet; its "
     "attributes arrive typed, floats and non-ASCII strings included"];
custom_plugin_message_attributes_arrive_typed(Config) ->
    send_chat(<<"ping">>),
    send_groupchat(<<"ping all">>),
    [#{attributes := PmAttrs}] = all_messages(Config, pm, 1),
    [#{attributes := MucAttrs}] = all_messages(Config, muc, 1),
    Expected = fun(Kind, Route, Type, Body) ->
                       #{topic_arn := Arn} = topic(Config, Kind),
                       #{<<"topic">> => {<<"String">>, Arn},
                         <<"route">> => {<<"String">>, Route},
                         <<"message_type">> => {<<"String">>, Type},
                         <<"body_bytes">> => {<<"Number">>, integer_to_binary(byte_size(Body))},
                         <<"ratio">> => {<<"Number">>, <<"2.5">>},
                         <<"raw">> => {<<"Binary">>, <<"bytes:", Body/binary>>},
                         <<"greeting">> => {<<"String">>, <<"zażółć"/utf8>>}}
               end,
    ?assertEqual(Expected(pm, <<"alice->bob">>, <<"pm">>, <<"ping">>), PmAttrs),
    ?assertEqual(Expected(muc, <<"alice->lobby">>, <<"muc">>, <<"ping all">>), MucAttrs).

%%====================================================================
%% Delivery, retries, instrumentation
%%====================================================================

published_notification_emits_count_time_and_requests(doc) ->
    ["(ours) A published notification emits count 1 with its time, and the request is counted"];
published_notification_emits_count_time_and_requests(Config) ->
    {Micros, {ok, _}} = timer:tc(fun() -> ep_test_host:user_available(alice()) end),
    ?assert(Micros < ?AT_ONCE_US, {hook_took_us, Micros}),
    [_] = all_messages(Config, presence, 1),
    instrument_helper:wait_and_assert(
      ?METRIC, labels(),
      fun(#{count := 1, time := Time}) -> is_integer(Time) andalso Time > 0 end),
    instrument_helper:wait_and_assert(?METRIC, labels(), fun(#{requests := 1}) -> true end),
    instrument_helper:assert_not_emitted(?METRIC, labels(), fun(#{failed := _}) -> true end),
    instrument_helper:assert_not_emitted(?METRIC, labels(), fun(#{dropped := _}) -> true end).

endpoint_down_then_up_delivers_the_notification_once(doc) ->
    ["With the endpoint down at first the publish is retried; once it is up the notification "
     "arrives exactly once"];
endpoint_down_then_up_delivers_the_notification_once(Config) ->
    Proxy = ?config(proxy, Config),
    ok = ep_sns_proxy:down(Proxy),
    {Micros, {ok, _}} = timer:tc(fun() -> send_chat_result(<<"eventually">>) end),
    ?assert(Micros < ?AT_ONCE_US, {hook_took_us, Micros}),
    %% The first attempt hit the closed endpoint and failed.
    ep_wait:until(fun() -> ep_sns_proxy:refused(Proxy) >= 1 end, ?WAIT_MS,
                  #{name => first_attempt_refused}),
    instrument_helper:wait_and_assert(?METRIC, labels(), fun(#{failed := 1}) -> true end),
    ok = ep_sns_proxy:up(Proxy),
    [#{json := Json}] = all_messages(Config, pm, 1),
    ?assertMatch(#{<<"message">> := <<"eventually">>}, Json),
    instrument_helper:wait_and_assert(?METRIC, labels(), fun(#{count := 1}) -> true end),
    instrument_helper:wait_and_assert(?METRIC, labels(), fun(#{requests := _}) -> true end),
    instrument_helper:assert_not_emitted(?METRIC, labels(), fun(#{dropped := _}) -> true end).

endpoint_down_throughout_drops_counts_and_logs_without_secret(doc) ->
    ["With the endpoint down throughout, the notification is dropped after its retries: "
     "counted, logged as a warning, and no log holds the secret key"];
endpoint_down_throughout_drops_counts_and_logs_without_secret(Config) ->
    Proxy = ?config(proxy, Config),
    ok = ep_sns_proxy:down(Proxy),
    send_chat(<<"lost">>),
    instrument_helper:wait_and_assert(?METRIC, labels(), fun(#{dropped := 1}) -> true end),
    %% publish_retry_count = 2: three attempts, each failed and counted.
    instrument_helper:assert(?METRIC, labels(), fun(#{failed := 1}) -> true end,
                             #{expected_count => 3}),
    ep_sns:wait_pool_idle(ep_test_host:host_type(), ?WAIT_MS),
    Logs = captured_logs(),
    Dropped = [E || E = #{level := warning, msg := {report, #{what := sns_notification_dropped}}}
                        <- Logs],
    ?assertMatch([#{msg := {report, #{reason := retries_exhausted}}}], Dropped, Logs),
    [#{msg := {report, DropReport}}] = Dropped,
    ?assertEqual(maps:get(topic_arn, topic(Config, pm)), maps:get(topic_arn, DropReport)),
    ?assert(length(Logs) > 1),
    [?assertEqual(nomatch, binary:match(Text, list_to_binary(?SECRET)), Text)
     || Text <- [log_text(E) || E <- Logs]],
    ?assertEqual([], ep_sns:messages(topic(Config, pm))),
    ?assertEqual([], ep_sns_proxy:requests(Proxy)).

zero_retry_time_retries_at_once_then_drops(doc) ->
    ["publish_retry_time_ms = 0 retries without waiting (MongooseIM crashes there): "
     "publish_retry_count + 1 attempts, then the drop"];
zero_retry_time_retries_at_once_then_drops(Config) ->
    ok = ep_sns_proxy:down(?config(proxy, Config)),
    send_chat(<<"fast drop">>),
    instrument_helper:wait_and_assert(?METRIC, labels(), fun(#{dropped := 1}) -> true end),
    instrument_helper:assert(?METRIC, labels(), fun(#{failed := 1}) -> true end,
                             #{expected_count => 4}),
    ?assertMatch(#{queued := 0, in_flight := 0}, ep_sns:pool_stats(ep_test_host:host_type())).

%%====================================================================
%% Batching
%%====================================================================

burst_of_100_arrives_complete_in_fewer_than_20_requests(doc) ->
    ["(ours) With publish_batching, 100 notifications for one topic queued at once all "
     "arrive, in fewer than 20 requests (PublishBatch, up to 10 each)"];
burst_of_100_arrives_complete_in_fewer_than_20_requests(Config) ->
    Requests = burst(Config),
    ct:log("~p requests: ~p", [length(Requests), [{A, N} || #{action := A, entries := N} <- Requests]]),
    ?assert(length(Requests) < 20, {requests, length(Requests)}),
    ?assert(lists:all(fun(#{action := A, entries := N}) ->
                              (A =:= <<"PublishBatch">> andalso N >= 1 andalso N =< 10)
                                  orelse A =:= <<"Publish">>
                      end, Requests)).

burst_of_100_without_batching_takes_100_requests(doc) ->
    ["With publish_batching = false, 100 notifications take 100 Publish requests"];
burst_of_100_without_batching_takes_100_requests(Config) ->
    Requests = burst(Config),
    ?assertEqual(?BURST, length(Requests)),
    ?assert(lists:all(fun(#{action := A}) -> A =:= <<"Publish">> end, Requests)).

%%====================================================================
%% Lifecycle
%%====================================================================

restarted_module_publishes_through_a_new_pool(doc) ->
    ["After the module stops and starts again, notifications go through a new pool"];
restarted_module_publishes_through_a_new_pool(Config) ->
    HostType = ep_test_host:host_type(),
    {ok, Before} = mod_event_pusher_sns:stats(HostType),
    send_chat(<<"before">>),
    [_] = all_messages(Config, pm, 1),
    ok = ep_test_host:restart_modules(),
    {ok, After} = mod_event_pusher_sns:stats(HostType),
    ?assertMatch(#{submitted := 0}, After, {before, Before}),
    send_chat(<<"after">>),
    ?assertMatch(#{<<"message">> := <<"after">>}, the_notification(Config, pm)).

endpoint_the_pool_refuses_fails_the_start_with_its_reason(doc) ->
    ["An sns_host the Rust pool cannot use fails the module's start with the pool's reason; "
     "neither the error nor any log of ours (supervisor and crash reports included) holds "
     "the secret key"];
endpoint_the_pool_refuses_fails_the_start_with_its_reason(Config) ->
    try ep_test_host:boot(?config(toml, Config)) of
        ok -> ct:fail(module_started)
    catch
        error:Error ->
            ?assertMatch(#{what := event_pusher_sns_pool_start_failed,
                           host_type := <<"localhost">>,
                           reason := <<"endpoint is not a valid URL", _/binary>>}, Error),
            ?assertEqual(nomatch, binary:match(term_to_binary(Error), list_to_binary(?SECRET)))
    end,
    %% The host's gen_mod logs the options of a module that failed to start
    %% (MongooseIM does so too); every other log event is ours to keep clean.
    Logs = [E || E <- captured_logs(), not is_host_module_start_failure(E)],
    ?assert(length(Logs) > 1),
    [?assertEqual(nomatch, binary:match(Text, list_to_binary(?SECRET)), Text)
     || Text <- [log_text(E) || E <- Logs]],
    %% Nothing is left running: a valid config starts afterwards.
    ?assertEqual({error, not_started}, mod_event_pusher_sns:stats(ep_test_host:host_type())).

%%====================================================================
%% Helpers
%%====================================================================

-include("ep_suite_users.hrl").
room() -> ep_test_host:jid(?ROOM).

labels() ->
    #{host_type => ep_test_host:host_type()}.

topic(Config, Kind) ->
    maps:get(Kind, ?config(topics, Config)).

send_chat(Text) ->
    {ok, _} = send_chat_result(Text),
    ok.

send_chat_result(Text) ->
    ep_test_host:user_send_message(alice(), ep_test_host:message(bob(), <<"chat">>, Text)).

send_groupchat(Text) ->
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(room(), <<"groupchat">>, Text)),
    ok.

%% Waits for N messages on the topic's queue, then for the pool to be idle:
%% after that nothing else can arrive, so the list is complete.
all_messages(Config, Kind, N) ->
    Topic = topic(Config, Kind),
    Got = ep_sns:wait_for_messages(Topic, N, ?WAIT_MS),
    ok = ep_sns:wait_pool_idle(ep_test_host:host_type(), ?WAIT_MS),
    All = Got ++ ep_sns:messages(Topic),
    ?assertEqual(N, length(All), All),
    All.

%% The one notification on the topic, as decoded JSON.
the_notification(Config, Kind) ->
    [#{json := Json}] = all_messages(Config, Kind, 1),
    Json.

assert_nothing_on(Config, Kinds) ->
    [ok = ep_sns:no_more_messages(topic(Config, Kind)) || Kind <- Kinds],
    ok.

%% Markers on every topic, sent after the events under test: once they
%% arrived and the pool is idle, anything else would have arrived too.
assert_only_markers_arrive(Config) ->
    {ok, _} = ep_test_host:user_available(alice()),
    send_chat(<<"pm marker">>),
    send_groupchat(<<"muc marker">>),
    ?assertMatch(#{<<"present">> := true}, the_notification(Config, presence)),
    ?assertMatch(#{<<"message">> := <<"pm marker">>}, the_notification(Config, pm)),
    ?assertMatch(#{<<"message">> := <<"muc marker">>}, the_notification(Config, muc)).

%% The Publish parameters of a request, or of its one batch entry.
publish_params(#{action := <<"Publish">>, params := Params}) ->
    Params;
publish_params(#{action := <<"PublishBatch">>, entries := 1, params := Params}) ->
    Prefix = <<"PublishBatchRequestEntries.member.1.">>,
    TopicArn = proplists:get_value(<<"TopicArn">>, Params),
    [{<<"TopicArn">>, TopicArn} |
     [{binary:part(K, byte_size(Prefix), byte_size(K) - byte_size(Prefix)), V}
      || {K, V} <- Params, binary:longest_common_prefix([K, Prefix]) =:= byte_size(Prefix)]].

%% ?BURST chat messages as fast as the hook takes them; returns the requests
%% the endpoint got once every message arrived.
burst(Config) ->
    Bodies = [<<"burst ", (integer_to_binary(I))/binary>> || I <- lists:seq(1, ?BURST)],
    {Micros, ok} = timer:tc(fun() -> lists:foreach(fun send_chat/1, Bodies) end),
    ct:log("~p hook runs took ~p us", [?BURST, Micros]),
    Messages = all_messages(Config, pm, ?BURST),
    ?assertEqual(lists:sort(Bodies),
                 lists:sort([M || #{json := #{<<"message">> := M}} <- Messages])),
    Requests = ep_sns_proxy:requests(?config(proxy, Config)),
    %% The pool counts what the endpoint saw.
    {ok, Stats} = mod_event_pusher_sns:stats(ep_test_host:host_type()),
    ?assertEqual(length(Requests), maps:get(requests, Stats, undefined)),
    Requests.

%%--------------------------------------------------------------------
%% Captured logs (a logger handler sending every event to an ETS table)
%%--------------------------------------------------------------------

capture_logs() ->
    Tab = ets:new(?MODULE, [public, ordered_set]),
    persistent_term:put({?MODULE, log_table}, Tab),
    #{level := Level} = logger:get_primary_config(),
    persistent_term:put({?MODULE, primary_level}, Level),
    %% Info and debug too: the secret must not be in any of them.
    ok = logger:set_primary_config(level, all),
    logger:add_handler(?MODULE, ?MODULE, #{level => all, config => #{table => Tab}}).

stop_capturing_logs() ->
    _ = logger:remove_handler(?MODULE),
    ok = logger:set_primary_config(level, persistent_term:get({?MODULE, primary_level})),
    ets:delete(persistent_term:get({?MODULE, log_table})),
    persistent_term:erase({?MODULE, log_table}),
    ok.

captured_logs() ->
    [E || {_, E} <- ets:tab2list(persistent_term:get({?MODULE, log_table}))].

%% logger handler callback
log(Event, #{config := #{table := Tab}}) ->
    ets:insert(Tab, {erlang:unique_integer([monotonic]), Event}),
    ok.

is_host_module_start_failure(#{msg := {report, #{what := module_start_failed}}}) -> true;
is_host_module_start_failure(_) -> false.

%% The event as a log file would show it, and every term in it.
log_text(Event) ->
    Formatted = logger_formatter:format(Event, #{single_line => true}),
    iolist_to_binary([Formatted, io_lib:format("~0p", [Event])]).
