%% @doc mod_push_service_mongoosepush (doc/compatibility.md §8) against a MongoosePush
%% stand-in (a real HTTP server, ep_mongoosepush): the request path and JSON
%% byte for byte, the synchronous contract of Acc `ok', and the event
%% pusher's path end to end (enable IQ, offline message, request at the
%% stand-in), with MongoosePush's answers driving the results; (ours) an
%% outage held without loss and timeouts (doc/mongoosepush.md).
-module(mod_push_service_mongoosepush_SUITE).

-compile([export_all, nowarn_export_all]).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("jlib.hrl").

-define(HT, <<"localhost">>).
-define(ALICE, <<"alice@localhost">>).
-define(BOB, <<"bob@localhost">>).
-define(VIRTUAL, <<"virtual.localhost">>).
-define(POOL, mongoose_push_http).
-define(METRIC, mod_push_service_mongoosepush_sent).
-define(LABELS, #{host_type => ?HT}).
-define(WAIT_MS, 5000).
-define(OUTAGE_MS, 10000).
%% How late the pool may notice that MongoosePush is back (its longest wait
%% between probes is 5 s), plus the backlog.
-define(RECOVERY_MS, 20000).

all() ->
    [{group, json}, {group, sync}, {group, event_pusher}, {group, privacy},
     {group, outages}, {group, timeouts}].

groups() ->
    [{json, [],
      [v3_alert_path_and_json_are_exact,
       v2_silent_path_and_json_are_exact,
       prefix_is_concatenated_and_device_id_is_not_escaped,
       json_is_what_jiffy_writes_for_mongooseim_map,
       missing_service_sends_nothing,
       config_defaults_and_validation,
       delivery_options_are_accepted_and_checked]},
     {sync, [],
      [ok_acc_gets_ok_for_2xx,
       ok_acc_gets_device_not_registered_for_410,
       ok_acc_gets_an_error_for_other_4xx,
       ok_acc_5xx_then_200_is_delivered_once,
       ok_acc_5xx_throughout_is_an_error,
       ok_acc_too_many_requests_is_retried_after_its_retry_after]},
     {event_pusher, [],
      [offline_chat_message_reaches_mongoosepush,
       offline_groupchat_message_reaches_mongoosepush,
       device_not_registered_disables_the_node,
       server_error_then_success_is_delivered_once,
       server_error_throughout_is_counted_and_node_kept,
       hook_returns_while_mongoosepush_holds_the_request]},
     {privacy, [],
      [privacy_silent_notification_has_neither_body_nor_sender,
       privacy_alert_carries_the_fixed_text_as_body,
       privacy_alert_without_a_sender_has_an_empty_title_and_no_tag]},
     {outages, [], [mongoosepush_down_for_10s_under_load_loses_nothing]},
     {timeouts, [],
      [slow_mongoosepush_gets_each_notification_once_counted_as_timeout,
       retry_on_timeout_sends_a_timed_out_notification_again]}].

init_per_suite(Config) ->
    {ok, _} = ejabberd_sup:ensure_started(),
    ok = mongoose_mnesia:ensure_started(),
    Config.

end_per_suite(_Config) ->
    ok.

init_per_testcase(Case, Config) ->
    ok = ejabberd_auth:set_users(all),
    clear_table(),
    {ok, Sink} = ep_mongoosepush:start(),
    case Case of
        _ when Case =:= config_defaults_and_validation;
               Case =:= delivery_options_are_accepted_and_checked ->
            ok;
        _ ->
            ok = ep_test_host:boot([toml(Sink, Case), privacy_toml(Case)]),
            ok = mongoose_instrument:start_recording(
                   instrument_helper:declared_events(mod_push_service_mongoosepush, [?HT])
                   ++ instrument_helper:declared_events(mod_event_pusher_push, [?HT]))
    end,
    [{sink, Sink} | Config].

end_per_testcase(_Case, Config) ->
    _ = mongoose_instrument:stop_recording(),
    ok = ep_log_capture:stop(),
    ep_test_host:shutdown(),
    ep_sessions:close_all(),
    ep_mongoosepush:stop(?config(sink, Config)).

api_version(v2_silent_path_and_json_are_exact) -> "v2";
api_version(_) -> "v3".

path_prefix(prefix_is_concatenated_and_device_id_is_not_escaped) -> "/api";
path_prefix(_) -> "/".

%% (ours) mod_event_pusher_push's privacy options, per case.
privacy_toml(privacy_silent_notification_has_neither_body_nor_sender) ->
    privacy_section("  body = \"omit\"\n  sender = \"omit\"\n");
privacy_toml(privacy_alert_carries_the_fixed_text_as_body) ->
    privacy_section("  body = \"replace\"\n  body_text = \"New message\"\n");
privacy_toml(privacy_alert_without_a_sender_has_an_empty_title_and_no_tag) ->
    privacy_section("  sender = \"omit\"\n");
privacy_toml(_) ->
    "".

privacy_section(Lines) ->
    ["\n[modules.mod_event_pusher.push.privacy]\n", Lines].

%% (ours) The pool's request_timeout and the module's delivery options, per case.
request_timeout(slow_mongoosepush_gets_each_notification_once_counted_as_timeout) -> 300;
request_timeout(retry_on_timeout_sends_a_timed_out_notification_again) -> 300;
request_timeout(_) -> 2000.

delivery_toml(mongoosepush_down_for_10s_under_load_loses_nothing) -> "  max_age = 60000\n";
delivery_toml(retry_on_timeout_sends_a_timed_out_notification_again) ->
    "  retry_on_timeout = true\n";
delivery_toml(_) -> "".

toml(Sink, Case) ->
    [ep_test_host:general_toml(),
     ep_mongoosepush:pool_toml(Sink, atom_to_list(?POOL), path_prefix(Case),
                               #{request_timeout => request_timeout(Case)}),
     "[modules.mod_event_pusher.push]\n",
     "  virtual_pubsub_hosts = [\"virtual.@HOST@\"]\n\n",
     "[modules.mod_push_service_mongoosepush]\n",
     "  pool_name = \"", atom_to_list(?POOL), "\"\n",
     "  api_version = \"", api_version(Case), "\"\n",
     delivery_toml(Case)].

%%====================================================================
%% json
%%====================================================================

%% Doc: v3, alert: POST /v3/notification/<device_id>, application/json, the
%% optional options copied as strings, click_action and sound in the alert,
%% tags and other enable-form fields dropped; keys in jiffy's order.
v3_alert_path_and_json_are_exact(Config) ->
    Options = #{<<"service">> => <<"apns">>, <<"device_id">> => <<"d1">>,
                <<"mode">> => <<"prod">>, <<"priority">> => <<"high">>,
                <<"topic">> => <<"com.example">>, <<"mutable_content">> => <<"true">>,
                <<"time_to_live">> => <<"3600">>, <<"click_action">> => <<"open">>,
                <<"sound">> => <<"bing.aiff">>, <<"tags">> => <<"beta">>,
                <<"other">> => <<"x">>},
    ?assertEqual(ok, hook(ok, [summary(<<"3">>, ?ALICE, <<"Hi \"Bob\"\n">>)], Options)),
    [N] = notifications(Config, 1),
    ?assertMatch(#{path := <<"/v3/notification/d1">>, content_type := <<"application/json">>}, N),
    ?assertEqual(<<"{\"topic\":\"com.example\",\"time_to_live\":\"3600\",\"priority\":\"high\","
                   "\"mutable_content\":\"true\",\"mode\":\"prod\",\"service\":\"apns\","
                   "\"alert\":{\"sound\":\"bing.aiff\",\"click_action\":\"open\","
                   "\"title\":\"alice@localhost\",\"tag\":\"alice@localhost\","
                   "\"body\":\"Hi \\\"Bob\\\"\\n\",\"badge\":3}}">>,
                 maps:get(body, N)).

%% Doc: v2, silent: `data' holds the notification fields, message-count an
%% integer; no alert.
v2_silent_path_and_json_are_exact(Config) ->
    Options = #{<<"service">> => <<"fcm">>, <<"device_id">> => <<"d2">>,
                <<"silent">> => <<"true">>, <<"mode">> => <<"dev">>,
                <<"click_action">> => <<"ignored">>},
    ?assertEqual(ok, hook(ok, [summary(<<"7">>, ?ALICE, <<"Hi">>)], Options)),
    [N] = notifications(Config, 1),
    ?assertEqual(<<"/v2/notification/d2">>, maps:get(path, N)),
    ?assertEqual(<<"{\"mode\":\"dev\",\"service\":\"fcm\",\"data\":{\"message-count\":7,"
                   "\"last-message-sender\":\"alice@localhost\","
                   "\"last-message-body\":\"Hi\"}}">>,
                 maps:get(body, N)).

%% Doc: the pool's path_prefix and the path are concatenated with no slash
%% added, and the device id is sent as it is (not %-escaped).
prefix_is_concatenated_and_device_id_is_not_escaped(Config) ->
    Options = #{<<"service">> => <<"apns">>, <<"device_id">> => <<"a+b%2Fc=">>},
    ?assertEqual(ok, hook(ok, [summary(<<"1">>, ?ALICE, <<"x">>)], Options)),
    [N] = notifications(Config, 1),
    ?assertEqual(<<"/apiv3/notification/a+b%2Fc=">>, maps:get(path, N)).

%% Doc: the body is byte for byte what jiffy writes for the map MongooseIM
%% builds (key order, escaping of quotes, backslashes, control characters,
%% non-ASCII kept).
json_is_what_jiffy_writes_for_mongooseim_map(_Config) ->
    Odd = <<"a\"\\/\b\f\r\t\n", 0, 31, 127, "é ☃"/utf8>>,
    Cases = [{summary(<<"12">>, Odd, Odd), #{<<"service">> => Odd, <<"sound">> => Odd}},
             {summary(<<"0">>, ?ALICE, <<>>), #{<<"service">> => <<"apns">>,
                                                <<"silent">> => <<"true">>,
                                                <<"topic">> => Odd}},
             {#{<<"message-sender">> => ?ALICE, <<"jingle-message">> => <<"propose">>,
                <<"jingle-session-id">> => <<"s1">>},
              #{<<"service">> => <<"fcm">>, <<"silent">> => <<"true">>}}],
    lists:foreach(
      fun({Notification, Options}) ->
              ?assertEqual(jiffy:encode(mongooseim_map(Notification, Options)),
                           mod_push_service_mongoosepush:make_notification(Notification,
                                                                           Options))
      end, Cases).

%% Doc: without `service' nothing is sent and make_notification_failed is
%% logged; the caller gets the error; the next valid notification is sent.
missing_service_sends_nothing(Config) ->
    ep_log_capture:start(),
    Options = #{<<"device_id">> => <<"d1">>},
    ?assertEqual({error, make_notification_failed},
                 hook(ok, [summary(<<"1">>, ?ALICE, <<"x">>)], Options)),
    _ = ep_log_capture:wait_for(make_notification_failed, ?WAIT_MS),
    %% A jingle notification (no body) can only be silent.
    ?assertEqual({error, make_notification_failed},
                 hook(ok, [#{<<"message-sender">> => ?ALICE}],
                      Options#{<<"service">> => <<"apns">>})),
    ?assertEqual(ok, hook(ok, [summary(<<"1">>, ?ALICE, <<"after">>)],
                          Options#{<<"service">> => <<"apns">>})),
    [#{body := Body}] = notifications(Config, 1),
    ?assertMatch({_, _}, binary:match(Body, <<"after">>)).

%% Doc: MongooseIM's defaults; api_version only v2/v3; max_http_connections >= 0.
config_defaults_and_validation(Config) ->
    Sink = ?config(sink, Config),
    Pool = ep_mongoosepush:pool_toml(Sink, "p", "/"),
    ok = ep_test_host:boot([ep_test_host:general_toml(), Pool,
                            "[modules.mod_push_service_mongoosepush]\n  pool_name = \"p\"\n"]),
    ?assertEqual(#{pool_name => p, api_version => <<"v3">>, max_http_connections => 100},
                 gen_mod:get_module_opts(?HT, mod_push_service_mongoosepush)),
    ep_test_host:shutdown(),
    Bad = fun(Line) ->
                  ?assertError({config_error, _, _},
                               ep_test_host:boot([ep_test_host:general_toml(), Pool,
                                                  "[modules.mod_push_service_mongoosepush]\n",
                                                  "  pool_name = \"p\"\n", Line]))
          end,
    Bad("  api_version = \"v1\"\n"),
    Bad("  max_http_connections = -1\n").

%% Doc: (ours) retry_on_timeout, max_age and retry_after_max are accepted
%% (no default in the parsed config); bad values are rejected with their path.
delivery_options_are_accepted_and_checked(Config) ->
    Pool = ep_mongoosepush:pool_toml(?config(sink, Config), "p", "/"),
    Section = fun(Line) -> [Pool, "[modules.mod_push_service_mongoosepush]\n",
                            "  pool_name = \"p\"\n", Line] end,
    ?assertMatch(#{retry_on_timeout := true, max_age := 60000, retry_after_max := 5000},
                 maps:get(mod_push_service_mongoosepush,
                          ep_config_check:modules(Config,
                                                  Section("  retry_on_timeout = true\n"
                                                          "  max_age = 60000\n"
                                                          "  retry_after_max = 5000\n")))),
    [?assertEqual({"modules.mod_push_service_mongoosepush." ++ Key, Reason},
                  ep_config_check:path_and_reason(
                    ep_config_check:the_error(Config, [ep_config_check:general(),
                                                       Section(["  ", Key, " = ", Value, "\n"])])))
     || {Key, Value, Reason} <- [{"retry_on_timeout", "1", wrong_type},
                                 {"max_age", "0", function_clause},
                                 {"retry_after_max", "-5", function_clause}]].

%%====================================================================
%% sync (Acc ok: the legacy pubsub node plugin)
%%====================================================================

%% Doc: 2xx → ok.
ok_acc_gets_ok_for_2xx(Config) ->
    ep_mongoosepush:answer(?config(sink, Config), [204]),
    ?assertEqual(ok, hook(ok, [summary(<<"1">>, ?ALICE, <<"x">>)], options())),
    wait_event(code_is(<<"204">>)).

%% Doc: 410 → {error, device_not_registered} and a warning; a second
%% notification of the same call is not sent.
ok_acc_gets_device_not_registered_for_410(Config) ->
    ep_log_capture:start(),
    ep_mongoosepush:answer(?config(sink, Config), [410]),
    ?assertEqual({error, device_not_registered},
                 hook(ok, [summary(<<"1">>, ?ALICE, <<"x">>), summary(<<"2">>, ?ALICE, <<"y">>)],
                      options())),
    ?assertMatch(#{code := 410, reason := device_not_registered},
                 ep_log_capture:wait_for(push_send_failed, ?WAIT_MS)),
    ?assertMatch([#{status := 410}], notifications(Config, 1)).

%% Doc: another 4xx → an error naming a likely API mismatch.
ok_acc_gets_an_error_for_other_4xx(Config) ->
    ep_log_capture:start(),
    ep_mongoosepush:answer(?config(sink, Config), [400]),
    ?assertEqual({error, {invalid_status_code, 400}},
                 hook(ok, [summary(<<"1">>, ?ALICE, <<"x">>)], options())),
    #{text := Text} = ep_log_capture:wait_for(push_send_failed, ?WAIT_MS),
    ?assertMatch({_, _}, binary:match(Text, <<"Possible API mismatch">>)).

%% Doc: (ours) a 5xx is retried; 500 then 200 → ok, delivered once.
ok_acc_5xx_then_200_is_delivered_once(Config) ->
    ep_mongoosepush:answer(?config(sink, Config), [500]),
    ?assertEqual(ok, hook(ok, [summary(<<"1">>, ?ALICE, <<"x">>)], options())),
    ?assertMatch([#{status := 500}, #{status := 200}], notifications(Config, 2)).

%% Doc: 5xx on every attempt → the error of the last one, counted.
ok_acc_5xx_throughout_is_an_error(Config) ->
    ep_mongoosepush:answer_always(?config(sink, Config), 503),
    ?assertEqual({error, {invalid_status_code, 503}},
                 hook(ok, [summary(<<"1">>, ?ALICE, <<"x">>)], options())),
    ?assertMatch([_, _, _], notifications(Config, 3)),
    wait_event(failed_with(<<"503">>)).

%% Doc: (ours) MongoosePush v3's `429 too_many_requests' with `Retry-After: 1'
%% then 200 → ok, delivered once, the second attempt at least 1 s after the
%% first (measured at the stand-in).
ok_acc_too_many_requests_is_retried_after_its_retry_after(Config) ->
    Sink = ?config(sink, Config),
    ep_mongoosepush:answer(Sink, [{429, #{retry_after => <<"1">>}}]),
    ?assertEqual(ok, hook(ok, [summary(<<"1">>, ?ALICE, <<"x">>)], options())),
    ?assertMatch([#{status := 429}, #{status := 200}], notifications(Config, 2)),
    [#{at := T1, body := B}, #{at := T2, body := B}] = ep_http_sink:requests(Sink),
    ?assert(T2 - T1 >= 1000000, T2 - T1).

%%====================================================================
%% event_pusher (Acc a mongoose_acc)
%%====================================================================

%% Doc: enable IQ with a publish-options form naming the device → offline
%% chat message → the alert notification at the stand-in.
offline_chat_message_reaches_mongoosepush(Config) ->
    enable_offline(?BOB, <<"n1">>, options()),
    deliver(<<"Alice@localhost/phone">>, ?BOB, <<"chat">>, <<"Hi Bob">>),
    [N] = notifications(Config, 1),
    ?assertEqual(<<"/v3/notification/d1">>, maps:get(path, N)),
    ?assertEqual(<<"{\"service\":\"apns\",\"alert\":{\"title\":\"alice@localhost\","
                   "\"tag\":\"alice@localhost\",\"body\":\"Hi Bob\",\"badge\":1}}">>,
                 maps:get(body, N)),
    wait_event(code_is(<<"200">>)).

%% Doc: groupchat: the sender is the occupant's full JID.
offline_groupchat_message_reaches_mongoosepush(Config) ->
    enable_offline(?BOB, <<"n1">>, (options())#{<<"silent">> => <<"true">>}),
    deliver(<<"Room@muc.localhost/Nick">>, ?BOB, <<"groupchat">>, <<"hello room">>),
    [N] = notifications(Config, 1),
    ?assertEqual(<<"{\"service\":\"apns\",\"data\":{\"message-count\":1,"
                   "\"last-message-sender\":\"room@muc.localhost/Nick\","
                   "\"last-message-body\":\"hello room\"}}">>,
                 maps:get(body, N)).

%% Doc: a 410 disables the node (from the pool's owner); the next message
%% sends nothing; another node of the user is kept.
device_not_registered_disables_the_node(Config) ->
    Other = (options())#{<<"device_id">> => <<"d2">>},
    enable_offline(?BOB, <<"n1">>, options()),
    enable_offline(?BOB, <<"n2">>, Other),
    ep_http_sink:set_status(?config(sink, Config), <<"/v3/notification/d1">>, 410),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"one">>),
    _ = notifications(Config, 2),
    ok = ep_wait:until(fun() -> nodes_of(?BOB) =:= [<<"n2">>] end, ?WAIT_MS),
    wait_count(mod_event_pusher_push_disabled, 1),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"two">>),
    %% The hook ran in deliver/4: whatever it queued is in the pool now.
    Paths = [P || #{path := P} <- notifications(Config, 3)],
    ?assertEqual([<<"/v3/notification/d1">>, <<"/v3/notification/d2">>,
                  <<"/v3/notification/d2">>], lists:sort(Paths)).

%% Doc: (ours) 500 then 200 → retried in Rust, delivered once, counted once.
server_error_then_success_is_delivered_once(Config) ->
    enable_offline(?BOB, <<"n1">>, options()),
    ep_mongoosepush:answer(?config(sink, Config), [500]),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"x">>),
    ?assertMatch([#{status := 500}, #{status := 200}], notifications(Config, 2)),
    wait_event(code_is(<<"200">>)),
    ?assertEqual([], [M || M <- mongoose_instrument:recorded(?METRIC, ?LABELS),
                           maps:is_key(failure_count, M)]).

%% Doc: 500 on every attempt → counted as a failure; the node is kept.
server_error_throughout_is_counted_and_node_kept(Config) ->
    enable_offline(?BOB, <<"n1">>, options()),
    ep_mongoosepush:answer_always(?config(sink, Config), 500),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"x">>),
    ?assertMatch([_, _, _], notifications(Config, 3)),
    wait_event(failed_with(<<"500">>)),
    ?assertEqual([<<"n1">>], nodes_of(?BOB)),
    ?assertEqual(0, length(mongoose_instrument:recorded(mod_event_pusher_push_disabled,
                                                         ?LABELS))).

%% Doc: (ours) the hook call (the user's process) returns while MongoosePush
%% still holds the request: deliver/4 has returned, then the request is seen
%% held, unanswered, with no result reported; released, it is counted.
hook_returns_while_mongoosepush_holds_the_request(Config) ->
    Sink = ?config(sink, Config),
    enable_offline(?BOB, <<"n1">>, options()),
    ok = ep_http_sink:hold(Sink),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"x">>),
    ok = ep_wait:until(fun() -> ep_http_sink:held_count(Sink) =:= 1 end, ?WAIT_MS),
    ?assertEqual([], mongoose_instrument:recorded(?METRIC, ?LABELS)),
    ok = ep_http_sink:release(Sink),
    wait_event(code_is(<<"200">>)).

%%====================================================================
%% privacy (ours: mod_event_pusher_push's privacy options)
%%====================================================================

%% Doc: body and sender left out: a silent notification's `data' holds the
%% message count only.
privacy_silent_notification_has_neither_body_nor_sender(Config) ->
    enable_offline(?BOB, <<"n1">>, (options())#{<<"silent">> => <<"true">>}),
    deliver(<<"Alice@localhost/phone">>, ?BOB, <<"chat">>, <<"secret plans">>),
    [N] = notifications(Config, 1),
    ?assertEqual(<<"{\"service\":\"apns\",\"data\":{\"message-count\":1}}">>,
                 maps:get(body, N)).

%% Doc: the body replaced by a fixed text: the alert's body is that text,
%% the sender is still the title and tag.
privacy_alert_carries_the_fixed_text_as_body(Config) ->
    enable_offline(?BOB, <<"n1">>, options()),
    deliver(<<"Alice@localhost/phone">>, ?BOB, <<"chat">>, <<"secret plans">>),
    [N] = notifications(Config, 1),
    ?assertEqual(<<"{\"service\":\"apns\",\"alert\":{\"title\":\"alice@localhost\","
                   "\"tag\":\"alice@localhost\",\"body\":\"New message\",\"badge\":1}}">>,
                 maps:get(body, N)).

%% Doc: an alert needs a sender (its title) as in MongooseIM: with the sender
%% left out only silent notifications can be sent; an alert is not built
%% (`make_notification_failed') and nothing reaches MongoosePush.
privacy_alert_without_a_sender_has_an_empty_title_and_no_tag(Config) ->
    enable_offline(?BOB, <<"n1">>, options()),
    deliver(<<"Alice@localhost/phone">>, ?BOB, <<"chat">>, <<"secret plans">>),
    [N] = notifications(Config, 1),
    ?assertEqual(<<"{\"service\":\"apns\",\"alert\":{\"title\":\"\","
                   "\"body\":\"secret plans\",\"badge\":1}}">>,
                 maps:get(body, N)).

%%====================================================================
%% outages and timeouts (ours: the http pool's delivery options)
%%====================================================================

%% Doc: with max_age, MongoosePush refusing connections for 10 s while
%% offline messages arrive at about 50 a second: after it is back every
%% notification arrives once, none dropped or failed.
mongoosepush_down_for_10s_under_load_loses_nothing(Config) ->
    Sink = ?config(sink, Config),
    ep_log_capture:start(),
    enable_offline(?BOB, <<"n1">>, options()),
    ok = ep_mongoosepush:down(Sink),
    N = steady_load(erlang:monotonic_time(millisecond) + ?OUTAGE_MS, 0),
    ok = ep_mongoosepush:up(Sink),
    _ = ep_mongoosepush:wait_for_notifications(Sink, N, ?RECOVERY_MS),
    ok = ep_test_host:wait_http_pool_idle(?POOL, ?WAIT_MS),
    Got = ep_mongoosepush:notifications(Sink),
    ?assertEqual(lists:seq(1, N), lists:sort([alert_number(B) || #{body := B} <- Got])),
    ?assertEqual([], [S || #{status := S} <- Got, S =/= 200]),
    %% (Its failed attempts are the probes of the endpoint while it was down.)
    ?assertMatch(#{sent := N, dropped_retries_exhausted := 0, dropped_expired := 0,
                   dropped_overloaded := 0, dropped_closed := 0},
                 ep_test_host:http_pool_stats(?POOL)),
    wait_count(?METRIC, N),
    ?assertEqual([], [M || M <- mongoose_instrument:recorded(?METRIC, ?LABELS),
                           maps:is_key(failure_count, M)]),
    ?assertEqual([], ep_log_capture:logged(push_send_gave_up)),
    ?assertEqual([], ep_log_capture:logged(push_send_failed)),
    ct:log("~p notifications held through a ~p ms outage", [N, ?OUTAGE_MS]).

%% Doc: MongoosePush answering after request_timeout: each notification is
%% sent once (it may have been pushed), counted as a failure and as a
%% timeout, logged with outcome unknown; nothing is retried or dropped.
slow_mongoosepush_gets_each_notification_once_counted_as_timeout(Config) ->
    Sink = ?config(sink, Config),
    ep_log_capture:start(),
    enable_offline(?BOB, <<"n1">>, options()),
    ep_mongoosepush:answer_always(Sink, {200, #{delay => 1000}}),
    [deliver(?ALICE, ?BOB, <<"chat">>, integer_to_binary(I)) || I <- lists:seq(1, 5)],
    wait_count(?METRIC, 5),
    ok = ep_test_host:wait_http_pool_idle(?POOL, ?WAIT_MS),
    Got = ep_mongoosepush:wait_for_notifications(Sink, 5, ?WAIT_MS),
    ?assertEqual(lists:seq(1, 5), lists:sort([alert_number(B) || #{body := B} <- Got])),
    ?assertMatch(#{timeouts := 5, retried := 0, sent := 0, dropped_retries_exhausted := 0},
                 ep_test_host:http_pool_stats(?POOL)),
    Events = mongoose_instrument:recorded(?METRIC, ?LABELS),
    ?assertEqual(5, length([M || M = #{failure_count := 1} <- Events,
                                 not maps:is_key(response_code, M)]), Events),
    Logged = [ep_log_capture:wait_for(push_send_timeout, ?WAIT_MS) || _ <- lists:seq(1, 5)],
    ?assertEqual([unknown], lists:usort([O || #{outcome := O} <- Logged])),
    ?assertEqual([], ep_log_capture:logged(push_send_gave_up)).

%% Doc: with retry_on_timeout a notification that timed out is sent again
%% (same body); the second answer is its result.
retry_on_timeout_sends_a_timed_out_notification_again(Config) ->
    Sink = ?config(sink, Config),
    enable_offline(?BOB, <<"n1">>, options()),
    ep_mongoosepush:answer(Sink, [{200, #{delay => 1000}}]),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"7">>),
    wait_event(code_is(<<"200">>)),
    ok = ep_test_host:wait_http_pool_idle(?POOL, ?WAIT_MS),
    [#{body := B1}, #{body := B2}] = ep_mongoosepush:wait_for_notifications(Sink, 2, ?WAIT_MS),
    ?assertEqual({7, 7}, {alert_number(B1), alert_number(B2)}),
    ?assertMatch(#{retried := 1, sent := 1, timeouts := 0},
                 ep_test_host:http_pool_stats(?POOL)),
    ?assertEqual(1, length(mongoose_instrument:recorded(?METRIC, ?LABELS))).

%% Offline messages from Alice to Bob, their bodies 1, 2, ..., at about 50 a
%% second until Deadline; returns how many. The pause paces the load (it
%% waits for nothing).
steady_load(Deadline, Sent) ->
    case erlang:monotonic_time(millisecond) >= Deadline of
        true ->
            Sent;
        false ->
            deliver(?ALICE, ?BOB, <<"chat">>, integer_to_binary(Sent + 1)),
            timer:sleep(20),
            steady_load(Deadline, Sent + 1)
    end.

%% The message (a number) in a notification's alert.
alert_number(Body) ->
    #{<<"alert">> := #{<<"body">> := Text}} = jiffy:decode(Body, [return_maps]),
    binary_to_integer(Text).

%%====================================================================
%% Helpers
%%====================================================================

options() ->
    #{<<"service">> => <<"apns">>, <<"device_id">> => <<"d1">>}.

summary(Count, Sender, Body) ->
    #{<<"message-count">> => Count, <<"last-message-sender">> => Sender,
      <<"last-message-body">> => Body}.

hook(Acc, Forms, Options) ->
    mongoose_hooks:push_notifications(?HT, Acc, Forms, Options).

%% The map MongooseIM hands to jiffy (doc/compatibility.md §8), built here independently.
mongooseim_map(Notification, Options) ->
    N = case Notification of
            #{<<"message-count">> := C} -> Notification#{<<"message-count">> := binary_to_integer(C)};
            _ -> Notification
        end,
    Base = maps:merge(#{service => maps:get(<<"service">>, Options)},
                      maps:with([<<"mode">>, <<"priority">>, <<"topic">>, <<"mutable_content">>,
                                 <<"time_to_live">>], Options)),
    case Options of
        #{<<"silent">> := <<"true">>} ->
            Base#{data => N};
        _ ->
            S = maps:get(<<"last-message-sender">>, N),
            Base#{alert => maps:merge(#{body => maps:get(<<"last-message-body">>, N),
                                        title => S, tag => S,
                                        badge => maps:get(<<"message-count">>, N)},
                                      maps:with([<<"click_action">>, <<"sound">>], Options))}
    end.

%% Waits for N notifications, then for the pool to be idle: nothing else can
%% arrive after that, so the list is complete.
notifications(Config, N) ->
    Sink = ?config(sink, Config),
    _ = ep_mongoosepush:wait_for_notifications(Sink, N, ?WAIT_MS),
    ok = ep_test_host:wait_http_pool_idle(?POOL, ?WAIT_MS),
    Ns = ep_mongoosepush:notifications(Sink),
    ?assertEqual(N, length(Ns), Ns),
    Ns.

code_is(Code) ->
    fun(M) -> maps:get(count, M, undefined) =:= 1 andalso
                  maps:get(response_code, M, undefined) =:= Code andalso
                  not maps:is_key(failure_count, M) end.

failed_with(Code) ->
    fun(M) -> maps:get(failure_count, M, undefined) =:= 1 andalso
                  maps:get(response_code, M, undefined) =:= Code end.

%% Waits until an emission of the module's event matches CheckF.
wait_event(CheckF) ->
    ok = ep_wait:until(fun() ->
                               lists:any(CheckF, mongoose_instrument:recorded(?METRIC, ?LABELS))
                       end, ?WAIT_MS, #{name => ?METRIC}).

wait_count(Event, N) ->
    _ = ep_wait:value(fun() -> length(mongoose_instrument:recorded(Event, ?LABELS)) end,
                      N, ?WAIT_MS, #{name => Event}),
    ok.

nodes_of(User) ->
    {ok, Services} = mod_event_pusher_push_backend:get_publish_services(
                       ?HT, jid:from_binary(User)),
    lists:sort([Node || {_, Node, _} <- Services]).

%% The router delivers a message from From to the (offline) user To.
deliver(From, To, Type, Body) ->
    ToJID = jid:from_binary(To),
    {ok, _} = ep_test_host:filter_local_packet(jid:from_binary(From), ToJID,
                                               ep_test_host:message(ToJID, Type, Body)),
    ok.

clear_table() ->
    case lists:member(push_subscription, mnesia:system_info(tables)) of
        true -> {atomic, ok} = mnesia:clear_table(push_subscription), ok;
        false -> ok
    end.

%% Enables Node on the virtual pubsub host with Form as publish-options,
%% from a short-lived session: the user is offline afterwards.
enable_offline(User, Node, Form) ->
    Full = jid:from_binary(<<User/binary, "/setup">>),
    SID = ep_sessions:login(Full),
    Fields = [field_el(<<"FORM_TYPE">>, ?NS_PUBSUB_PUB_OPTIONS, <<"hidden">>)
              | [field_el(K, V, undefined) || {K, V} <- maps:to_list(Form)]],
    X = #xmlel{name = <<"x">>, attrs = #{<<"xmlns">> => ?NS_XDATA, <<"type">> => <<"submit">>},
               children = Fields},
    Enable = #xmlel{name = <<"enable">>,
                    attrs = #{<<"xmlns">> => ?NS_PUSH, <<"jid">> => ?VIRTUAL,
                              <<"node">> => Node},
                    children = [X]},
    Reply = iq(Full, SID, Enable),
    ?assertEqual(<<"result">>, exml_query:attr(Reply, <<"type">>)),
    ep_sessions:logout(Full, SID).

field_el(Var, Value, Type) ->
    Attrs = case Type of
                undefined -> #{<<"var">> => Var};
                _ -> #{<<"var">> => Var, <<"type">> => Type}
            end,
    #xmlel{name = <<"field">>, attrs = Attrs,
           children = [#xmlel{name = <<"value">>, children = [#xmlcdata{content = Value}]}]}.

iq(From, SID, SubEl) ->
    To = jid:to_bare(From),
    Id = integer_to_binary(erlang:unique_integer([positive])),
    El = #xmlel{name = <<"iq">>, attrs = #{<<"type">> => <<"set">>, <<"id">> => Id,
                                           <<"to">> => jid:to_binary(To)},
                children = [SubEl]},
    Acc = mongoose_acc:set(c2s, origin_sid, SID, new_acc(From, To, El)),
    _ = mongoose_router:route(Acc),
    receive_reply(Id).

receive_reply(Id) ->
    receive
        {route, Acc} ->
            El = mongoose_acc:element(Acc),
            case exml_query:attr(El, <<"id">>) of
                Id -> El;
                _ -> receive_reply(Id)
            end
    after ?WAIT_MS ->
            ct:fail({no_iq_reply, Id})
    end.

new_acc(From, To, El) ->
    mongoose_acc:new(#{location => #{mfa => {?MODULE, ?FUNCTION_NAME, ?FUNCTION_ARITY},
                                     line => ?LINE, file => ?FILE},
                       lserver => From#jid.lserver, host_type => ?HT,
                       element => El, from_jid => From, to_jid => To}).

