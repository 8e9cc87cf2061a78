%% @doc mod_event_pusher and its push_event hook (doc/compatibility.md §3): backends at
%% priority 50 get every event with the metadata left by user handlers below
%% 50, which may also stop the event.
-module(mod_event_pusher_SUITE).

-include("ep_suite.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2, init_per_testcase/2, end_per_testcase/2]).
-export([record_event/3]).
-export([push_event_gives_backends_the_event_and_empty_metadata/1,
         push_event_returns_the_acc_left_by_backends/1,
         filter_stop_hides_the_event_from_backends/1,
         filter_metadata_reaches_backends/1,
         filter_lets_only_presences_and_marked_messages_through_hooks/1,
         configured_backend_is_started_with_its_own_options/1,
         http_backend_receives_only_what_the_filter_lets_through/1,
         http_callbacks_read_metadata_from_the_acc/1,
         http_callbacks_see_empty_metadata_without_filter/1]).

-define(WAIT_MS, 5000).

%%====================================================================
%% Suite setup
%%====================================================================

all() ->
    [{group, push_event}, {group, http_backend}].

groups() ->
    [{push_event, [],
      [push_event_gives_backends_the_event_and_empty_metadata,
       push_event_returns_the_acc_left_by_backends,
       filter_stop_hides_the_event_from_backends,
       filter_metadata_reaches_backends,
       filter_lets_only_presences_and_marked_messages_through_hooks]},
     {http_backend, [],
      [configured_backend_is_started_with_its_own_options,
       http_backend_receives_only_what_the_filter_lets_through,
       http_callbacks_read_metadata_from_the_acc,
       http_callbacks_see_empty_metadata_without_filter]}].

init_per_suite(Config) ->
    Config.

end_per_suite(_Config) ->
    ok.

init_per_group(push_event, Config) ->
    ok = ep_test_host:boot([ep_test_host:general_toml(), "[modules.mod_event_pusher]\n"]),
    Config;
init_per_group(http_backend, Config) ->
    {ok, Sink} = ep_http_sink:start(),
    ok = ep_test_host:boot(http_toml(Sink)),
    [{sink, Sink} | Config].

end_per_group(_Group, Config) ->
    ep_test_host:shutdown(),
    case ?config(sink, Config) of
        undefined -> ok;
        Sink -> ep_http_sink:stop(Sink)
    end.

init_per_testcase(Case, Config) ->
    [ok = ep_http_sink:reset(Sink) || Sink <- [?config(sink, Config)], Sink =/= undefined],
    HostType = ep_test_host:host_type(),
    Recorder = {push_event, HostType, fun ?MODULE:record_event/3,
                #{test_pid => self()}, 50},
    _ = gen_hook:add_handlers([Recorder]),
    _ = gen_hook:reload_hooks(),
    case uses_filter(Case) of
        true -> ok = ep_filter_module:add(HostType);
        false -> ok
    end,
    [{recorder, Recorder} | Config].

end_per_testcase(Case, Config) ->
    HostType = ep_test_host:host_type(),
    case uses_filter(Case) of
        true -> ok = ep_filter_module:remove(HostType);
        false -> ok
    end,
    _ = gen_hook:delete_handlers([?config(recorder, Config)]),
    _ = gen_hook:reload_hooks(),
    _ = events(),
    ok.

uses_filter(Case) ->
    lists:member(Case, [filter_stop_hides_the_event_from_backends,
                        filter_metadata_reaches_backends,
                        filter_lets_only_presences_and_marked_messages_through_hooks,
                        http_backend_receives_only_what_the_filter_lets_through,
                        http_callbacks_read_metadata_from_the_acc]).

http_toml(Sink) ->
    [ep_test_host:general_toml(),
     "[outgoing_pools.http.http_pool]\n"
     "  workers = 2\n"
     "  [outgoing_pools.http.http_pool.connection]\n"
     "    host = \"", ep_http_sink:url(Sink), "\"\n\n"
     "[modules.mod_event_pusher.http]\n"
     "  handlers = [{pool_name = \"http_pool\", path = \"/notify\","
     " callback_module = \"ep_http_custom_callback\"}]\n"].

%%====================================================================
%% push_event
%%====================================================================

push_event_gives_backends_the_event_and_empty_metadata(doc) ->
    ["mod_event_pusher:push_event/2 runs the push_event hook: a backend gets the event and empty metadata"];
push_event_gives_backends_the_event_and_empty_metadata(_Config) ->
    Event = #user_status_event{jid = alice(), status = online},
    _ = mod_event_pusher:push_event(status_acc(), Event),
    ?assertEqual([{Event, #{}}], events()).

push_event_returns_the_acc_left_by_backends(doc) ->
    ["mod_event_pusher:push_event/2 returns the mongoose_acc as the handlers left it"];
push_event_returns_the_acc_left_by_backends(_Config) ->
    Event = #unack_msg_event{to = bob()},
    Acc = mongoose_acc:set(event_pusher, marker, <<"set by backend">>, status_acc()),
    Setter = {push_event, ep_test_host:host_type(), fun ?MODULE:record_event/3,
              #{test_pid => self(), replace_acc => Acc}, 60},
    _ = gen_hook:add_handlers([Setter]),
    _ = gen_hook:reload_hooks(),
    try
        Result = mod_event_pusher:push_event(status_acc(), Event),
        ?assertEqual(<<"set by backend">>, mongoose_acc:get(event_pusher, marker, undefined, Result))
    after
        _ = gen_hook:delete_handlers([Setter]),
        _ = gen_hook:reload_hooks()
    end.

filter_stop_hides_the_event_from_backends(doc) ->
    ["A handler below 50 returning {stop, _} keeps the event from every backend"];
filter_stop_hides_the_event_from_backends(_Config) ->
    Msg = ep_test_host:message(bob(), <<"chat">>, <<"dropped">>),
    Event = #chat_event{type = chat, direction = in, from = alice(), to = bob(), packet = Msg},
    _ = mod_event_pusher:push_event(ep_test_host:new_acc(alice(), bob(), Msg), Event),
    ?assertEqual([], events()).

filter_metadata_reaches_backends(doc) ->
    ["Metadata added by a handler below 50 reaches the backends with the event"];
filter_metadata_reaches_backends(_Config) ->
    Event = #user_status_event{jid = alice(), status = offline},
    _ = mod_event_pusher:push_event(status_acc(), Event),
    ?assertEqual([{Event, #{filtered_by => ep_filter_module, kind => status, version => 1}}],
                 events()).

filter_lets_only_presences_and_marked_messages_through_hooks(doc) ->
    ["Through the real hooks, backends see only what the filter lets through, each with its metadata"];
filter_lets_only_presences_and_marked_messages_through_hooks(_Config) ->
    send_filter_mix(),
    [{#chat_event{direction = out, packet = #xmlel{name = <<"presence">>}}, Meta1},
     {#chat_event{direction = out, packet = #xmlel{name = <<"message">>}}, Meta2},
     {#user_status_event{status = online}, Meta3}] = events(),
    ?assertEqual(#{filtered_by => ep_filter_module, kind => presence, version => 1}, Meta1),
    ?assertEqual(#{filtered_by => ep_filter_module, kind => marked_message, version => 1}, Meta2),
    ?assertEqual(#{filtered_by => ep_filter_module, kind => status, version => 1}, Meta3).

%%====================================================================
%% With the http backend
%%====================================================================

configured_backend_is_started_with_its_own_options(doc) ->
    ["A backend configured under mod_event_pusher runs as a module with its own (processed) options"];
configured_backend_is_started_with_its_own_options(_Config) ->
    ?assertEqual(#{handlers => [#{pool_name => http_pool, path => <<"notify">>,
                                  callback_module => ep_http_custom_callback}]},
                 gen_mod:get_module_opts(ep_test_host:host_type(), mod_event_pusher_http)).

http_backend_receives_only_what_the_filter_lets_through(doc) ->
    ["The http backend posts only the events the filter lets through"];
http_backend_receives_only_what_the_filter_lets_through(Config) ->
    Sink = ?config(sink, Config),
    send_filter_mix(),
    %% The status event passes the filter but http only posts chat events.
    Bodies = lists:sort([B || #{body := B} <- wait_for_all_requests(Sink, 2)]),
    ?assertEqual([<<"out|message|alice@localhost|bob|marked">>,
                  <<"out|presence|alice@localhost|bob|">>], Bodies).

http_callbacks_read_metadata_from_the_acc(doc) ->
    ["The http callback module reads the filter's metadata from the acc's event_pusher namespace"];
http_callbacks_read_metadata_from_the_acc(Config) ->
    Sink = ?config(sink, Config),
    send_filter_mix(),
    Meta = lists:sort([{B, ep_http_sink:header(<<"x-ep-metadata">>, R)}
                       || R = #{body := B} <- wait_for_all_requests(Sink, 2)]),
    ?assertEqual([{<<"out|message|alice@localhost|bob|marked">>,
                   <<"filtered_by=ep_filter_module,kind=marked_message,version=1">>},
                  {<<"out|presence|alice@localhost|bob|">>,
                   <<"filtered_by=ep_filter_module,kind=presence,version=1">>}], Meta).

http_callbacks_see_empty_metadata_without_filter(doc) ->
    ["Without a filter the http callback module reads empty metadata"];
http_callbacks_see_empty_metadata_without_filter(Config) ->
    Sink = ?config(sink, Config),
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(bob(), <<"chat">>, <<"plain">>)),
    [R] = wait_for_all_requests(Sink, 1),
    ?assertEqual(<<"in|message|alice@localhost|bob|plain">>, maps:get(body, R)),
    ?assertEqual(<<>>, ep_http_sink:header(<<"x-ep-metadata">>, R)).

%%====================================================================
%% The recording push_event handler
%%====================================================================

%% @doc Reports each event with its metadata to the test process; with
%% `replace_acc' it returns that acc, as a backend storing state would.
-spec record_event(map(), #{event := term()}, map()) -> {ok, map()}.
record_event(HookAcc = #{metadata := Metadata}, #{event := Event}, Extra = #{test_pid := Pid}) ->
    case Extra of
        #{replace_acc := Acc} ->
            {ok, HookAcc#{acc := Acc}};
        _ ->
            Pid ! {pushed_event, Event, Metadata},
            {ok, HookAcc}
    end.

%%====================================================================
%% Helpers
%%====================================================================

-include("ep_suite_users.hrl").

status_acc() ->
    ep_test_host:new_acc(alice(), jid:to_bare(alice()), ep_test_host:presence(undefined)).

%% What a client and the router produce in a short session; the filter lets
%% through the presence, the marked message and the status event only.
send_filter_mix() ->
    Pass = #xmlel{name = <<"ep-pass">>},
    {ok, _} = ep_test_host:filter_local_packet(
                alice(), bob(), ep_test_host:message(bob(), <<"chat">>, <<"plain">>)),
    {ok, _} = ep_test_host:filter_local_packet(alice(), bob(), ep_test_host:presence(undefined)),
    {ok, _} = ep_test_host:filter_local_packet(
                alice(), bob(), ep_test_host:message(bob(), <<"chat">>, <<"marked">>, [Pass])),
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(bob(), <<"chat">>, <<"client says">>)),
    {ok, _} = ep_test_host:user_available(alice()),
    ok.

%% Hooks run in this process: their events are in the mailbox on return.
events() ->
    receive
        {pushed_event, Event, Metadata} -> [{Event, Metadata} | events()]
    after 0 -> []
    end.

%% Waits for N requests, then for the pool to go idle, and returns every
%% request the sink received: nothing else can still be on its way.
wait_for_all_requests(Sink, N) ->
    _ = ep_http_sink:wait_for_requests(Sink, N, ?WAIT_MS),
    ok = ep_test_host:wait_http_pool_idle(http_pool, ?WAIT_MS),
    Requests = ep_http_sink:requests(Sink),
    ?assertEqual(N, length(Requests), Requests),
    Requests.
