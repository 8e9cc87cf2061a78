%% @doc mod_event_pusher_http (doc/compatibility.md §4) against a real HTTP server: what
%% arrives (method, URL, headers, body bytes), retries, instrumentation, and
%% that the hook never waits for the server.
-module(mod_event_pusher_http_SUITE).

-include("ep_suite.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([chat_message_sent_by_user_is_posted_as_a_form/1,
         message_text_is_form_encoded_as_cow_qs_does/1,
         message_delivered_to_user_is_not_posted_by_default/1,
         groupchat_headline_and_normal_messages_are_not_posted_by_default/1,
         chat_message_with_empty_or_missing_body_is_not_posted_by_default/1,
         presences_and_status_events_are_not_posted_by_default/1,
         custom_callback_module_sets_body_and_headers/1,
         custom_callback_module_posts_messages_delivered_to_users/1,
         custom_should_make_req_false_skips_the_request/1,
         prefix_api_and_path_slash_notify_post_to_apinotify/1,
         prefix_api_slash_and_path_notify_post_to_api_notify/1,
         default_prefix_and_path_slash_notify_post_to_notify/1,
         default_prefix_and_default_path_post_to_root/1,
         two_handlers_on_two_pools_both_receive/1,
         two_handlers_on_one_pool_post_to_both_paths/1,
         response_emits_count_with_code_time_and_sender/1,
         server_error_is_retried_and_delivered_once/1,
         client_error_is_not_retried_and_counted_with_its_code/1,
         unreachable_server_emits_failure_count/1,
         hook_returns_while_server_holds_the_request/1,
         host_with_a_trailing_slash_adds_no_second_slash/1,
         host_with_a_path_contributes_only_its_origin/1,
         module_starts_without_its_pool_and_requests_fail/1,
         pool_configured_after_start_is_used_by_the_next_request/1,
         crashing_callback_is_logged_and_other_handlers_still_run/1,
         header_http_cannot_carry_is_logged_and_counted_as_failure/1]).
%% logger handler used to observe the module's logs

-define(WAIT_MS, 5000).
%% Generous for a call that only enqueues; far below request_timeout.
-define(METRIC, mod_event_pusher_http_sent).

%%====================================================================
%% Suite setup
%%====================================================================

all() ->
    [{group, default_callbacks}, {group, custom_callbacks}, {group, urls},
     {group, handlers}, {group, delivery}, {group, pool_lifecycle}, {group, failures}].

groups() ->
    [{default_callbacks, [],
      [chat_message_sent_by_user_is_posted_as_a_form,
       message_text_is_form_encoded_as_cow_qs_does,
       message_delivered_to_user_is_not_posted_by_default,
       groupchat_headline_and_normal_messages_are_not_posted_by_default,
       chat_message_with_empty_or_missing_body_is_not_posted_by_default,
       presences_and_status_events_are_not_posted_by_default]},
     {custom_callbacks, [],
      [custom_callback_module_sets_body_and_headers,
       custom_callback_module_posts_messages_delivered_to_users,
       custom_should_make_req_false_skips_the_request]},
     {urls, [],
      [prefix_api_and_path_slash_notify_post_to_apinotify,
       prefix_api_slash_and_path_notify_post_to_api_notify,
       default_prefix_and_path_slash_notify_post_to_notify,
       default_prefix_and_default_path_post_to_root,
       host_with_a_trailing_slash_adds_no_second_slash,
       host_with_a_path_contributes_only_its_origin]},
     {handlers, [],
      [two_handlers_on_two_pools_both_receive,
       two_handlers_on_one_pool_post_to_both_paths]},
     {delivery, [],
      [response_emits_count_with_code_time_and_sender,
       server_error_is_retried_and_delivered_once,
       client_error_is_not_retried_and_counted_with_its_code,
       unreachable_server_emits_failure_count,
       hook_returns_while_server_holds_the_request]},
     {pool_lifecycle, [],
      [module_starts_without_its_pool_and_requests_fail,
       pool_configured_after_start_is_used_by_the_next_request]},
     {failures, [],
      [crashing_callback_is_logged_and_other_handlers_still_run,
       header_http_cannot_carry_is_logged_and_counted_as_failure]}].

init_per_suite(Config) ->
    Config.

end_per_suite(_Config) ->
    ok.

%% Each case boots its own node from its own TOML against fresh sinks. A
%% pool spec {Tag, Prefix, HostSuffix} appends HostSuffix to the sink's URL
%% in `connection.host'; cases in late_pool_cases() get their sink but no
%% pool in the TOML.
init_per_testcase(Case, Config) ->
    {PoolSpecs, HandlersToml} = setup(Case),
    Sinks = [begin {ok, S} = ep_http_sink:start(), {element(1, Spec), S} end
             || Spec <- PoolSpecs],
    Pools = [pool_toml(Spec, proplists:get_value(element(1, Spec), Sinks))
             || Spec <- PoolSpecs],
    ok = ep_log_capture:start(),
    ok = mock_callbacks(Case),
    BootPools = case lists:member(Case, late_pool_cases()) of
                    true -> [];
                    false -> Pools
                end,
    ok = ep_test_host:boot([ep_test_host:general_toml(), BootPools,
                            "[modules.mod_event_pusher.http]\n", HandlersToml]),
    case lists:member(Case, instrumented()) of
        true -> instrument_helper:start([{?METRIC, #{host_type => ep_test_host:host_type()}}]);
        false -> ok
    end,
    [{sinks, Sinks}, {sink, element(2, hd(Sinks))}, {pools_toml, Pools} | Config].

end_per_testcase(Case, Config) ->
    ok = ep_log_capture:stop(),
    _ = [meck:unload(M) || M <- [ep_http_crashing_callback, ep_http_bad_header_callback],
                           lists:member(M, meck:mocked())],
    [ok = ep_http_sink:up(S) || {_, S} <- ?config(sinks, Config)],
    [ok = ep_http_sink:release(S) || {_, S} <- ?config(sinks, Config)],
    ep_test_host:shutdown(),
    [ep_http_sink:stop(S) || {_, S} <- ?config(sinks, Config)],
    case lists:member(Case, instrumented()) of
        true -> instrument_helper:stop();
        false -> ok
    end.

instrumented() ->
    [module_starts_without_its_pool_and_requests_fail,
     pool_configured_after_start_is_used_by_the_next_request,
     header_http_cannot_carry_is_logged_and_counted_as_failure,
     response_emits_count_with_code_time_and_sender,
     server_error_is_retried_and_delivered_once,
     client_error_is_not_retried_and_counted_with_its_code,
     unreachable_server_emits_failure_count,
     hook_returns_while_server_holds_the_request].

%% {[{PoolTag, PathPrefix | default}], HandlersToml}
setup(Case) when Case =:= custom_callback_module_sets_body_and_headers;
                 Case =:= custom_callback_module_posts_messages_delivered_to_users;
                 Case =:= custom_should_make_req_false_skips_the_request ->
    {[{"http_pool", default}],
     handlers([#{path => "/custom", callback_module => "ep_http_custom_callback"}])};
setup(prefix_api_and_path_slash_notify_post_to_apinotify) ->
    {[{"http_pool", "/api"}], handlers([#{path => "/notify"}])};
setup(prefix_api_slash_and_path_notify_post_to_api_notify) ->
    {[{"http_pool", "/api/"}], handlers([#{path => "notify"}])};
setup(default_prefix_and_path_slash_notify_post_to_notify) ->
    {[{"http_pool", default}], handlers([#{path => "/notify"}])};
setup(default_prefix_and_default_path_post_to_root) ->
    {[{"http_pool", default}], handlers([#{}])};
setup(two_handlers_on_two_pools_both_receive) ->
    {[{"pool_a", default}, {"pool_b", default}],
     handlers([#{pool_name => "pool_a", path => "/a"}, #{pool_name => "pool_b", path => "/b"}])};
setup(host_with_a_trailing_slash_adds_no_second_slash) ->
    {[{"http_pool", default, "/"}], handlers([#{path => "/notify"}])};
setup(host_with_a_path_contributes_only_its_origin) ->
    {[{"http_pool", "/api/", "/base/ignored"}], handlers([#{path => "notify"}])};
setup(crashing_callback_is_logged_and_other_handlers_still_run) ->
    {[{"http_pool", default}],
     handlers([#{path => "/crash", callback_module => "ep_http_crashing_callback"},
               #{path => "/fine"}])};
setup(header_http_cannot_carry_is_logged_and_counted_as_failure) ->
    {[{"http_pool", default}],
     handlers([#{path => "/bad", callback_module => "ep_http_bad_header_callback"},
               #{path => "/fine"}])};
setup(two_handlers_on_one_pool_post_to_both_paths) ->
    {[{"http_pool", default}], handlers([#{path => "/one"}, #{path => "/two"}])};
setup(_DefaultCallbackOrDeliveryCase) ->
    {[{"http_pool", default}], handlers([#{path => "/notify"}])}.

late_pool_cases() ->
    [module_starts_without_its_pool_and_requests_fail,
     pool_configured_after_start_is_used_by_the_next_request].

%% Callback modules whose callbacks fail, made with meck before the boot
%% (the config checks that `callback_module' can be loaded).
mock_callbacks(crashing_callback_is_logged_and_other_handlers_still_run) ->
    mock_callback(ep_http_crashing_callback, fun(_, _, _, _, _, _, _) -> error(boom) end);
mock_callbacks(header_http_cannot_carry_is_logged_and_counted_as_failure) ->
    mock_callback(ep_http_bad_header_callback, fun(_, _, _, _, _, _, _) -> <<"x">> end,
                  fun(_, _, _, _, _, _, _) -> [{<<"bad header">>, <<"v">>}] end);
mock_callbacks(_Case) ->
    ok.

mock_callback(Module, PrepareBody) ->
    mock_callback(Module, PrepareBody, fun(_, _, _, _, _, _, _) -> [] end).

mock_callback(Module, PrepareBody, PrepareHeaders) ->
    ok = meck:new(Module, [non_strict, no_link]),
    ok = meck:expect(Module, should_make_req, fun(_, _, _, _, _, _) -> true end),
    ok = meck:expect(Module, prepare_body, PrepareBody),
    ok = meck:expect(Module, prepare_headers, PrepareHeaders).

pool_toml({Tag, Prefix}, Sink) ->
    pool_toml({Tag, Prefix, ""}, Sink);
pool_toml({Tag, Prefix, HostSuffix}, Sink) ->
    PrefixLine = case Prefix of
                     default -> "";
                     _ -> ["    path_prefix = \"", Prefix, "\"\n"]
                 end,
    ["[outgoing_pools.http.", Tag, "]\n",
     "  workers = 2\n",
     "  [outgoing_pools.http.", Tag, ".connection]\n",
     "    host = \"", ep_http_sink:url(Sink), HostSuffix, "\"\n",
     PrefixLine,
     "    request_timeout = 2000\n\n"].

%% Handlers as TOML array-of-tables, only the keys given (defaults otherwise).
handlers(Handlers) ->
    [["[[modules.mod_event_pusher.http.handlers]]\n",
      [["  ", atom_to_list(K), " = \"", V, "\"\n"] || {K, V} <- lists:sort(maps:to_list(H))]]
     || H <- Handlers].

%%====================================================================
%% Default callbacks
%%====================================================================

chat_message_sent_by_user_is_posted_as_a_form(doc) ->
    ["A chat message sent by a user is POSTed as a urlencoded form with author, server, receiver and message"];
chat_message_sent_by_user_is_posted_as_a_form(Config) ->
    send_chat(<<"Hello">>),
    [Req] = all_requests(Config, 1),
    #{method := <<"POST">>, path := <<"/notify">>, body := Body} = Req,
    ?assertEqual(<<"author=alice&server=localhost&receiver=bob&message=Hello">>, Body),
    ?assertEqual(<<"application/x-www-form-urlencoded">>,
                 ep_http_sink:header(<<"content-type">>, Req)).

message_text_is_form_encoded_as_cow_qs_does(doc) ->
    ["The message text keeps A-Z a-z 0-9 - . _, sends a space as + and every other byte as %XX"];
message_text_is_form_encoded_as_cow_qs_does(Config) ->
    Text = <<"a b~c*d&e=f zażółć ❤"/utf8>>,
    Expected = <<"a+b%7Ec%2Ad%26e%3Df+za%C5%BC%C3%B3%C5%82%C4%87+%E2%9D%A4">>,
    %% The literal agrees with doc/compatibility.md's rule, computed independently.
    ?assertEqual(Expected, form_encode(Text)),
    send_chat(Text),
    [#{body := Body}] = all_requests(Config, 1),
    ?assertEqual(<<"author=alice&server=localhost&receiver=bob&message=", Expected/binary>>, Body).

message_delivered_to_user_is_not_posted_by_default(doc) ->
    ["A chat message delivered to a user (an `out' event) is not posted by the default callbacks"];
message_delivered_to_user_is_not_posted_by_default(Config) ->
    {ok, _} = ep_test_host:filter_local_packet(
                alice(), bob(), ep_test_host:message(bob(), <<"chat">>, <<"out">>)),
    assert_only_sentinel_arrives(Config).

groupchat_headline_and_normal_messages_are_not_posted_by_default(doc) ->
    ["Groupchat, headline, normal and untyped messages sent by a user are not posted by the default callbacks"];
groupchat_headline_and_normal_messages_are_not_posted_by_default(Config) ->
    Room = ep_test_host:jid(<<"room@muc.localhost">>),
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(Room, <<"groupchat">>, <<"g">>)),
    _ = [{ok, _} = ep_test_host:user_send_message(alice(), ep_test_host:message(bob(), T, <<"x">>))
         || T <- [<<"headline">>, <<"normal">>, undefined]],
    assert_only_sentinel_arrives(Config).

chat_message_with_empty_or_missing_body_is_not_posted_by_default(doc) ->
    ["A chat message with an empty body or without a body is not posted by the default callbacks"];
chat_message_with_empty_or_missing_body_is_not_posted_by_default(Config) ->
    {ok, _} = ep_test_host:user_send_message(alice(), ep_test_host:message(bob(), <<"chat">>, <<>>)),
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(bob(), <<"chat">>, undefined)),
    assert_only_sentinel_arrives(Config).

presences_and_status_events_are_not_posted_by_default(doc) ->
    ["Presence stanzas and user status events are not posted by the default callbacks"];
presences_and_status_events_are_not_posted_by_default(Config) ->
    {ok, _} = ep_test_host:filter_local_packet(alice(), bob(), ep_test_host:presence(undefined)),
    {ok, _} = ep_test_host:user_available(alice()),
    {ok, _} = ep_test_host:unset_presence(alice(), <<>>),
    assert_only_sentinel_arrives(Config).

%%====================================================================
%% Custom callbacks
%%====================================================================

custom_callback_module_sets_body_and_headers(doc) ->
    ["A custom callback module's body and headers are what the server receives"];
custom_callback_module_sets_body_and_headers(Config) ->
    send_chat(<<"hi there">>),
    [Req] = all_requests(Config, 1),
    #{path := <<"/custom">>, body := Body} = Req,
    ?assertEqual(<<"in|message|alice@localhost|bob|hi there">>, Body),
    ?assertEqual(<<"text/plain; charset=utf-8">>, ep_http_sink:header(<<"content-type">>, Req)),
    ?assertEqual(<<"in">>, ep_http_sink:header(<<"x-ep-direction">>, Req)).

custom_callback_module_posts_messages_delivered_to_users(doc) ->
    ["A custom should_make_req can post `out' events, which the defaults skip"];
custom_callback_module_posts_messages_delivered_to_users(Config) ->
    {ok, _} = ep_test_host:filter_local_packet(
                alice(), bob(), ep_test_host:message(bob(), <<"groupchat">>, <<"delivered">>)),
    [Req] = all_requests(Config, 1),
    ?assertEqual(<<"out|message|alice@localhost|bob|delivered">>, maps:get(body, Req)),
    ?assertEqual(<<"out">>, ep_http_sink:header(<<"x-ep-direction">>, Req)).

custom_should_make_req_false_skips_the_request(doc) ->
    ["When a custom should_make_req returns false nothing is posted"];
custom_should_make_req_false_skips_the_request(Config) ->
    Skip = #xmlel{name = <<"ep-skip">>},
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(bob(), <<"chat">>, <<"skipped">>, [Skip])),
    send_chat(<<"sentinel">>),
    [#{body := Body}] = all_requests(Config, 1),
    ?assertEqual(<<"in|message|alice@localhost|bob|sentinel">>, Body).

%%====================================================================
%% URLs
%%====================================================================

prefix_api_and_path_slash_notify_post_to_apinotify(doc) ->
    ["path_prefix \"/api\" and path \"/notify\" post to /apinotify (plain concatenation)"];
prefix_api_and_path_slash_notify_post_to_apinotify(Config) ->
    assert_posted_to(Config, <<"/apinotify">>).

prefix_api_slash_and_path_notify_post_to_api_notify(doc) ->
    ["path_prefix \"/api/\" and path \"notify\" post to /api/notify"];
prefix_api_slash_and_path_notify_post_to_api_notify(Config) ->
    assert_posted_to(Config, <<"/api/notify">>).

default_prefix_and_path_slash_notify_post_to_notify(doc) ->
    ["The default path_prefix \"/\" and path \"/notify\" post to /notify"];
default_prefix_and_path_slash_notify_post_to_notify(Config) ->
    assert_posted_to(Config, <<"/notify">>).

default_prefix_and_default_path_post_to_root(doc) ->
    ["The default path_prefix and the default path post to /"];
default_prefix_and_default_path_post_to_root(Config) ->
    assert_posted_to(Config, <<"/">>).

%%====================================================================
%% Handlers
%%====================================================================

two_handlers_on_two_pools_both_receive(doc) ->
    ["Two handlers on two pools each post the event to their own server"];
two_handlers_on_two_pools_both_receive(Config) ->
    send_chat(<<"both">>),
    Sinks = ?config(sinks, Config),
    [#{path := <<"/a">>, body := BodyA}] =
        ep_http_sink:wait_for_requests(proplists:get_value("pool_a", Sinks), 1, ?WAIT_MS),
    [#{path := <<"/b">>, body := BodyB}] =
        ep_http_sink:wait_for_requests(proplists:get_value("pool_b", Sinks), 1, ?WAIT_MS),
    ?assertEqual(BodyA, BodyB),
    ?assertEqual(<<"author=alice&server=localhost&receiver=bob&message=both">>, BodyA).

two_handlers_on_one_pool_post_to_both_paths(doc) ->
    ["Two handlers on one pool post the event once to each handler's path"];
two_handlers_on_one_pool_post_to_both_paths(Config) ->
    send_chat(<<"twice">>),
    Paths = lists:sort([P || #{path := P} <- all_requests(Config, 2)]),
    ?assertEqual([<<"/one">>, <<"/two">>], Paths).

%%====================================================================
%% Delivery, retries, instrumentation
%%====================================================================

response_emits_count_with_code_time_and_sender(doc) ->
    ["A response emits mod_event_pusher_http_sent with count 1, response_code, response_time and sender"];
response_emits_count_with_code_time_and_sender(Config) ->
    send_chat(<<"counted">>),
    [_] = all_requests(Config, 1),
    instrument_helper:wait_and_assert(
      ?METRIC, labels(),
      fun(M) ->
              maps:get(count, M, undefined) =:= 1 andalso
                  maps:get(response_code, M, undefined) =:= <<"200">> andalso
                  maps:get(sender, M, undefined) =:= <<"alice">> andalso
                  is_integer(maps:get(response_time, M, undefined)) andalso
                  maps:get(response_time, M) > 0
      end).

server_error_is_retried_and_delivered_once(doc) ->
    ["A 500 is retried; after the following 200 the event is not sent again"];
server_error_is_retried_and_delivered_once(Config) ->
    Sink = ?config(sink, Config),
    ok = ep_http_sink:queue_statuses(Sink, any, [500]),
    send_chat(<<"retry me">>),
    [#{status := 500, body := B1}, #{status := 200, body := B2}] = all_requests(Config, 2),
    ?assertEqual(B1, B2),
    instrument_helper:wait_and_assert(?METRIC, labels(), code_is(<<"200">>)).

client_error_is_not_retried_and_counted_with_its_code(doc) ->
    ["A 404 is final: one request, and a count event with response_code <<\"404\">>"];
client_error_is_not_retried_and_counted_with_its_code(Config) ->
    Sink = ?config(sink, Config),
    ok = ep_http_sink:set_status(Sink, default, 404),
    send_chat(<<"not found">>),
    instrument_helper:wait_and_assert(?METRIC, labels(), code_is(<<"404">>)),
    [#{status := 404}] = all_requests(Config, 1).

unreachable_server_emits_failure_count(doc) ->
    ["With the server down the hook still returns and failure_count is emitted"];
unreachable_server_emits_failure_count(Config) ->
    Sink = ?config(sink, Config),
    ok = ep_http_sink:down(Sink),
    {ok, _} = send_chat_result(<<"nobody home">>),
    instrument_helper:wait_and_assert(
      ?METRIC, labels(),
      fun(M) ->
              maps:get(failure_count, M, undefined) =:= 1 andalso
                  maps:get(sender, M, undefined) =:= <<"alice">>
      end),
    ?assertEqual([], ep_http_sink:requests(Sink)).

hook_returns_while_server_holds_the_request(doc) ->
    ["The hook returns while the server still holds the request open; the response is counted after release"];
hook_returns_while_server_holds_the_request(Config) ->
    Sink = ?config(sink, Config),
    ok = ep_http_sink:hold(Sink),
    %% The hook call has returned here, yet the request reached the server
    %% and is still unanswered: the user's process never waited for it.
    {ok, _} = send_chat_result(<<"held">>),
    [#{body := Body}] = ep_http_sink:wait_for_requests(Sink, 1, ?WAIT_MS),
    ?assertEqual(1, ep_http_sink:held_count(Sink)),
    ?assertEqual(<<"author=alice&server=localhost&receiver=bob&message=held">>, Body),
    instrument_helper:assert_not_emitted(?METRIC, labels()),
    ok = ep_http_sink:release(Sink),
    instrument_helper:wait_and_assert(?METRIC, labels(), code_is(<<"200">>)).

%%====================================================================
%% URLs from connection.host
%%====================================================================

host_with_a_trailing_slash_adds_no_second_slash(doc) ->
    ["host \"http://h:p/\", the default prefix and path \"/notify\" post to /notify, not //notify"];
host_with_a_trailing_slash_adds_no_second_slash(Config) ->
    assert_posted_to(Config, <<"/notify">>).

host_with_a_path_contributes_only_its_origin(doc) ->
    ["host \"http://h:p/base/ignored\" with prefix \"/api/\" and path \"notify\" posts to /api/notify"];
host_with_a_path_contributes_only_its_origin(Config) ->
    assert_posted_to(Config, <<"/api/notify">>).

%%====================================================================
%% Pool lifecycle
%%====================================================================

module_starts_without_its_pool_and_requests_fail(doc) ->
    ["A handler naming a pool that is not configured does not fail the start; each request "
     "fails with pool_not_started, a warning and failure_count = 1"];
module_starts_without_its_pool_and_requests_fail(Config) ->
    ?assert(gen_mod:is_loaded(ep_test_host:host_type(), mod_event_pusher_http)),
    #{reason := Why} = ep_log_capture:wait_for(event_pusher_http_pool_unavailable, ?WAIT_MS),
    ?assertMatch(#{what := event_pusher_pool_not_found}, Why),
    {ok, _} = send_chat_result(<<"lost">>),
    instrument_helper:wait_and_assert(?METRIC, labels(), fun is_alice_failure/1),
    ?assertMatch(#{reason := pool_not_started, sender := <<"alice">>},
                 ep_log_capture:wait_for(event_pusher_http_req_failed, ?WAIT_MS)),
    ?assertEqual([], ep_http_sink:requests(?config(sink, Config))).

pool_configured_after_start_is_used_by_the_next_request(doc) ->
    ["A pool added to the config and started after the module started is acquired by the "
     "next request, which is delivered"];
pool_configured_after_start_is_used_by_the_next_request(Config) ->
    {ok, _} = send_chat_result(<<"before">>),
    instrument_helper:wait_and_assert(?METRIC, labels(), fun is_alice_failure/1),
    %% What MongooseIM's suites do: put the pool in the config, start it.
    [Pool] = parse_pools(?config(pools_toml, Config), Config),
    ok = mongoose_config:set_opts((mongoose_config:get_opts())#{outgoing_pools => [Pool]}),
    _ = mongoose_wpool:start_configured_pools([Pool]),
    send_chat(<<"after">>),
    [#{path := <<"/notify">>, body := Body}] = all_requests(Config, 1),
    ?assertEqual(<<"author=alice&server=localhost&receiver=bob&message=after">>, Body),
    instrument_helper:wait_and_assert(?METRIC, labels(), code_is(<<"200">>)),
    %% Acquired once: stopping the module releases it and the pool closes.
    ok = ep_test_host:shutdown(),
    ?assertEqual(undefined, ep_test_host:http_pool_stats(http_pool)).

%%====================================================================
%% Failures in callbacks
%%====================================================================

crashing_callback_is_logged_and_other_handlers_still_run(doc) ->
    ["A callback that crashes (here prepare_body) is logged; the other handler still posts "
     "and the hook returns ok"];
crashing_callback_is_logged_and_other_handlers_still_run(Config) ->
    {ok, _} = send_chat_result(<<"survives">>),
    ?assertMatch(#{callback_module := ep_http_crashing_callback, reason := boom},
                 ep_log_capture:wait_for(event_pusher_http_handler_failed, ?WAIT_MS)),
    [#{path := <<"/fine">>}] = all_requests(Config, 1).

header_http_cannot_carry_is_logged_and_counted_as_failure(doc) ->
    ["A header name HTTP cannot carry is logged as a handler failure and counted as "
     "failure_count; the other handler still posts"];
header_http_cannot_carry_is_logged_and_counted_as_failure(Config) ->
    {ok, _} = send_chat_result(<<"bad header">>),
    ?assertMatch(#{reason := invalid_request, path := <<"bad">>},
                 ep_log_capture:wait_for(event_pusher_http_handler_failed, ?WAIT_MS)),
    instrument_helper:wait_and_assert(?METRIC, labels(), fun is_alice_failure/1),
    [#{path := <<"/fine">>}] = all_requests(Config, 1).

%%====================================================================
%% Helpers
%%====================================================================

is_alice_failure(M) ->
    maps:get(failure_count, M, undefined) =:= 1 andalso
        maps:get(sender, M, undefined) =:= <<"alice">>.

%% The `outgoing_pools' entries of a TOML snippet, as the parser makes them.
parse_pools(PoolsToml, Config) ->
    Path = filename:join(?config(priv_dir, Config), "late_pool.toml"),
    ok = file:write_file(Path, [ep_test_host:general_toml(), PoolsToml]),
    proplists:get_value(outgoing_pools, mongoose_config_parser:parse_file(Path)).

-include("ep_suite_users.hrl").

labels() ->
    #{host_type => ep_test_host:host_type()}.

code_is(Code) ->
    fun(M) -> maps:get(count, M, undefined) =:= 1 andalso
                  maps:get(response_code, M, undefined) =:= Code end.

send_chat(Text) ->
    {ok, _} = send_chat_result(Text),
    ok.

send_chat_result(Text) ->
    ep_test_host:user_send_message(alice(), ep_test_host:message(bob(), <<"chat">>, Text)).

%% Waits for N requests and then for the pool to be idle: after that nothing
%% else can arrive, so the sink's list is complete.
all_requests(Config, N) ->
    Sink = ?config(sink, Config),
    _ = ep_http_sink:wait_for_requests(Sink, N, ?WAIT_MS),
    ok = ep_test_host:wait_http_pool_idle(http_pool, ?WAIT_MS),
    Requests = ep_http_sink:requests(Sink),
    ?assertEqual(N, length(Requests), Requests),
    Requests.

%% The events sent before were submitted before this chat message; once the
%% pool is idle only the message may have arrived.
assert_only_sentinel_arrives(Config) ->
    send_chat(<<"sentinel">>),
    [#{body := Body}] = all_requests(Config, 1),
    ?assertEqual(<<"author=alice&server=localhost&receiver=bob&message=sentinel">>, Body).

assert_posted_to(Config, Path) ->
    send_chat(<<"where">>),
    [#{path := Got}] = all_requests(Config, 1),
    ?assertEqual(Path, Got).

%% doc/compatibility.md §4: A-Z a-z 0-9 - . _ kept, space as +, every other byte %XX.
form_encode(Bin) ->
    << <<(form_byte(C))/binary>> || <<C>> <= Bin >>.

form_byte(C) when C >= $A, C =< $Z; C >= $a, C =< $z; C >= $0, C =< $9;
                  C =:= $-; C =:= $.; C =:= $_ ->
    <<C>>;
form_byte($\s) ->
    <<"+">>;
form_byte(C) ->
    list_to_binary(io_lib:format("%~2.16.0B", [C])).
