%% @doc The hook translator turns MongooseIM's hooks into event pusher
%% events (doc/compatibility.md §2). A recording push_event handler at the backends'
%% priority (50) sends each event to the test process.
-module(mod_event_pusher_hook_translator_SUITE).

-include("ep_suite.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([record_event/3]).
-export([user_send_message_chat_yields_in_chat_event/1,
         user_send_message_groupchat_yields_in_groupchat_event/1,
         user_send_message_headline_yields_in_headline_event/1,
         user_send_message_normal_yields_in_normal_event/1,
         user_send_message_without_type_yields_normal_event/1,
         user_send_message_error_yields_no_event/1,
         user_send_message_returns_ok_with_packet_unchanged/1,
         filter_local_packet_chat_yields_out_chat_event/1,
         filter_local_packet_groupchat_to_room_yields_out_event_to_room/1,
         filter_local_packet_presence_without_type_yields_normal_out_event/1,
         filter_local_packet_typed_presence_yields_no_event/1,
         filter_local_packet_error_message_yields_no_event/1,
         filter_local_packet_iq_yields_no_event/1,
         filter_local_packet_returns_ok_with_packet_unchanged/1,
         user_available_yields_online_status_event/1,
         unset_presence_yields_offline_status_event/1,
         unacknowledged_message_yields_unack_event_to_full_jid/1,
         status_and_unack_handlers_return_ok_with_acc_element_unchanged/1,
         event_pusher_namespace_set_by_backend_is_copied_back_permanently/1,
         event_pusher_namespace_is_copied_back_through_filter_local_packet/1,
         stopped_module_translates_no_hooks/1]).

-define(ROOM, <<"room@muc.localhost">>).

%%====================================================================
%% Suite setup
%%====================================================================

all() ->
    [{group, user_send_message}, {group, filter_local_packet}, {group, presence_and_sm},
     {group, accumulator}].

groups() ->
    [{user_send_message, [],
      [user_send_message_chat_yields_in_chat_event,
       user_send_message_groupchat_yields_in_groupchat_event,
       user_send_message_headline_yields_in_headline_event,
       user_send_message_normal_yields_in_normal_event,
       user_send_message_without_type_yields_normal_event,
       user_send_message_error_yields_no_event,
       user_send_message_returns_ok_with_packet_unchanged]},
     {filter_local_packet, [],
      [filter_local_packet_chat_yields_out_chat_event,
       filter_local_packet_groupchat_to_room_yields_out_event_to_room,
       filter_local_packet_presence_without_type_yields_normal_out_event,
       filter_local_packet_typed_presence_yields_no_event,
       filter_local_packet_error_message_yields_no_event,
       filter_local_packet_iq_yields_no_event,
       filter_local_packet_returns_ok_with_packet_unchanged]},
     {presence_and_sm, [],
      [user_available_yields_online_status_event,
       unset_presence_yields_offline_status_event,
       unacknowledged_message_yields_unack_event_to_full_jid,
       status_and_unack_handlers_return_ok_with_acc_element_unchanged]},
     {accumulator, [],
      [event_pusher_namespace_set_by_backend_is_copied_back_permanently,
       event_pusher_namespace_is_copied_back_through_filter_local_packet,
       stopped_module_translates_no_hooks]}].

init_per_suite(Config) ->
    %% mod_event_pusher with no backend: only the translator and push_event run.
    ok = ep_test_host:boot([ep_test_host:general_toml(), "[modules.mod_event_pusher]\n"]),
    Config.

end_per_suite(_Config) ->
    ep_test_host:shutdown().

%% Cases run in the process of init_per_testcase, so the recorder reports here.
init_per_testcase(Case, Config) ->
    Extra = maps:merge(#{test_pid => self()}, recorder_setting(Case)),
    Handler = {push_event, ep_test_host:host_type(), fun ?MODULE:record_event/3, Extra, 50},
    _ = gen_hook:add_handlers([Handler]),
    _ = gen_hook:reload_hooks(),
    [{recorder, Handler} | Config].

end_per_testcase(_Case, Config) ->
    _ = gen_hook:delete_handlers([?config(recorder, Config)]),
    _ = gen_hook:reload_hooks(),
    flush_events(),
    ok.

%%====================================================================
%% user_send_message
%%====================================================================

user_send_message_chat_yields_in_chat_event(doc) ->
    ["A chat message sent by a client is an `in' chat event from the acc's sender"];
user_send_message_chat_yields_in_chat_event(_Config) ->
    Msg = ep_test_host:message(bob(), <<"chat">>, <<"hi">>),
    {ok, _} = ep_test_host:user_send_message(alice(), Msg),
    #chat_event{type = chat, direction = in, from = From, to = To, packet = Packet} = one_event(),
    ?assertEqual(jid:to_binary(alice()), jid:to_binary(From)),
    ?assertEqual(jid:to_binary(bob()), jid:to_binary(To)),
    ?assertEqual(Msg, Packet).

user_send_message_groupchat_yields_in_groupchat_event(doc) ->
    ["A groupchat message sent by a client is an `in' groupchat event"];
user_send_message_groupchat_yields_in_groupchat_event(_Config) ->
    Msg = ep_test_host:message(room(), <<"groupchat">>, <<"hi all">>),
    {ok, _} = ep_test_host:user_send_message(alice(), Msg),
    #chat_event{type = groupchat, direction = in, to = To} = one_event(),
    ?assertEqual(?ROOM, jid:to_binary(To)).

user_send_message_headline_yields_in_headline_event(doc) ->
    ["A headline message sent by a client is an `in' headline event"];
user_send_message_headline_yields_in_headline_event(_Config) ->
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(bob(), <<"headline">>, <<"news">>)),
    #chat_event{type = headline, direction = in} = one_event().

user_send_message_normal_yields_in_normal_event(doc) ->
    ["A message of type normal sent by a client is an `in' normal event"];
user_send_message_normal_yields_in_normal_event(_Config) ->
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(bob(), <<"normal">>, <<"x">>)),
    #chat_event{type = normal, direction = in} = one_event().

user_send_message_without_type_yields_normal_event(doc) ->
    ["A message without a type attribute is a normal event"];
user_send_message_without_type_yields_normal_event(_Config) ->
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(bob(), undefined, <<"x">>)),
    #chat_event{type = normal, direction = in} = one_event().

user_send_message_error_yields_no_event(doc) ->
    ["A message of type error yields no event"];
user_send_message_error_yields_no_event(_Config) ->
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(bob(), <<"error">>, <<"x">>)),
    no_event().

user_send_message_returns_ok_with_packet_unchanged(doc) ->
    ["user_send_message returns {ok, Acc} with the acc's element unchanged"];
user_send_message_returns_ok_with_packet_unchanged(_Config) ->
    Msg = ep_test_host:message(bob(), <<"chat">>, <<"hi">>),
    {ok, Acc} = ep_test_host:user_send_message(alice(), Msg),
    ?assertEqual(Msg, mongoose_acc:element(Acc)),
    _ = one_event().

%%====================================================================
%% filter_local_packet
%%====================================================================

filter_local_packet_chat_yields_out_chat_event(doc) ->
    ["A chat message delivered locally is an `out' chat event with the router's From and To"];
filter_local_packet_chat_yields_out_chat_event(_Config) ->
    {ok, {_, _, _, Packet}} = ep_test_host:filter_local_packet(
                                alice(), bob(), ep_test_host:message(bob(), <<"chat">>, <<"yo">>)),
    #chat_event{type = chat, direction = out, from = From, to = To, packet = EvPacket} = one_event(),
    ?assertEqual(jid:to_binary(alice()), jid:to_binary(From)),
    ?assertEqual(jid:to_binary(bob()), jid:to_binary(To)),
    ?assertEqual(Packet, EvPacket).

filter_local_packet_groupchat_to_room_yields_out_event_to_room(doc) ->
    ["A groupchat message routed to a room is an `out' groupchat event whose `to' is the room"];
filter_local_packet_groupchat_to_room_yields_out_event_to_room(_Config) ->
    {ok, _} = ep_test_host:filter_local_packet(
                alice(), room(), ep_test_host:message(room(), <<"groupchat">>, <<"hi">>)),
    #chat_event{type = groupchat, direction = out, to = To} = one_event(),
    ?assertEqual(?ROOM, jid:to_binary(To)).

filter_local_packet_presence_without_type_yields_normal_out_event(doc) ->
    ["A presence without type delivered locally is a normal `out' event carrying the presence"];
filter_local_packet_presence_without_type_yields_normal_out_event(_Config) ->
    {ok, _} = ep_test_host:filter_local_packet(alice(), bob(), ep_test_host:presence(undefined)),
    #chat_event{type = normal, direction = out,
                packet = #xmlel{name = <<"presence">>}} = one_event().

filter_local_packet_typed_presence_yields_no_event(doc) ->
    ["A presence of type unavailable delivered locally yields no event"];
filter_local_packet_typed_presence_yields_no_event(_Config) ->
    {ok, _} = ep_test_host:filter_local_packet(alice(), bob(),
                                               ep_test_host:presence(<<"unavailable">>)),
    no_event().

filter_local_packet_error_message_yields_no_event(doc) ->
    ["An error message delivered locally yields no event"];
filter_local_packet_error_message_yields_no_event(_Config) ->
    {ok, _} = ep_test_host:filter_local_packet(
                alice(), bob(), ep_test_host:message(bob(), <<"error">>, <<"x">>)),
    no_event().

filter_local_packet_iq_yields_no_event(doc) ->
    ["An IQ get delivered locally yields no event"];
filter_local_packet_iq_yields_no_event(_Config) ->
    Iq = #xmlel{name = <<"iq">>, attrs = #{<<"type">> => <<"get">>, <<"id">> => <<"1">>},
                children = [#xmlel{name = <<"query">>,
                                   attrs = #{<<"xmlns">> => <<"jabber:iq:version">>}}]},
    {ok, _} = ep_test_host:filter_local_packet(alice(), bob(), Iq),
    no_event().

filter_local_packet_returns_ok_with_packet_unchanged(doc) ->
    ["filter_local_packet returns {ok, {From, To, Acc, Packet}} with From, To and Packet unchanged"];
filter_local_packet_returns_ok_with_packet_unchanged(_Config) ->
    El = ep_test_host:message(bob(), <<"chat">>, <<"yo">>),
    Packet = ep_test_host:with_from_to(El, alice(), bob()),
    {ok, {From, To, Acc, Packet2}} = ep_test_host:filter_local_packet(alice(), bob(), El),
    ?assertEqual(Packet, Packet2),
    ?assertEqual(Packet, mongoose_acc:element(Acc)),
    ?assertEqual({alice(), bob()}, {From, To}),
    _ = one_event().

%%====================================================================
%% user_available, unset_presence, unacknowledged_message
%%====================================================================

user_available_yields_online_status_event(doc) ->
    ["user_available yields #user_status_event{status = online} for the session's JID"];
user_available_yields_online_status_event(_Config) ->
    {ok, _} = ep_test_host:user_available(alice()),
    #user_status_event{jid = Jid, status = online} = one_event(),
    ?assertEqual(?ALICE, jid:to_binary(Jid)).

unset_presence_yields_offline_status_event(doc) ->
    ["unset_presence yields #user_status_event{status = offline} for the session's JID"];
unset_presence_yields_offline_status_event(_Config) ->
    {ok, _} = ep_test_host:unset_presence(alice(), <<"gone">>),
    #user_status_event{jid = Jid, status = offline} = one_event(),
    ?assertEqual(?ALICE, jid:to_binary(Jid)).

unacknowledged_message_yields_unack_event_to_full_jid(doc) ->
    ["unacknowledged_message yields #unack_msg_event{} whose `to' is the session's full JID"];
unacknowledged_message_yields_unack_event_to_full_jid(_Config) ->
    Msg = ep_test_host:with_from_to(ep_test_host:message(bob(), <<"chat">>, <<"buffered">>),
                                    alice(), bob()),
    {ok, _} = ep_test_host:unacknowledged_message(bob(), Msg),
    #unack_msg_event{to = To} = one_event(),
    ?assertEqual(?BOB, jid:to_binary(To)).

status_and_unack_handlers_return_ok_with_acc_element_unchanged(doc) ->
    ["user_available, unset_presence and unacknowledged_message return {ok, Acc} with the element unchanged"];
status_and_unack_handlers_return_ok_with_acc_element_unchanged(_Config) ->
    {ok, Acc1} = ep_test_host:user_available(alice()),
    ?assertEqual(ep_test_host:presence(undefined), mongoose_acc:element(Acc1)),
    {ok, Acc2} = ep_test_host:unset_presence(alice(), <<>>),
    ?assertEqual(ep_test_host:presence(<<"unavailable">>), mongoose_acc:element(Acc2)),
    Msg = ep_test_host:with_from_to(ep_test_host:message(bob(), <<"chat">>, <<"b">>),
                                    alice(), bob()),
    {ok, Acc3} = ep_test_host:unacknowledged_message(bob(), Msg),
    ?assertEqual(Msg, mongoose_acc:element(Acc3)),
    [_, _, _] = events().

%%====================================================================
%% The accumulator's event_pusher namespace
%%====================================================================

event_pusher_namespace_set_by_backend_is_copied_back_permanently(doc) ->
    ["A value a backend stores in the acc's event_pusher namespace is in the hook's result acc, as a permanent key"];
event_pusher_namespace_set_by_backend_is_copied_back_permanently(_Config) ->
    {ok, Acc} = ep_test_host:user_send_message(
                  alice(), ep_test_host:message(bob(), <<"chat">>, <<"hi">>)),
    _ = one_event(),
    ?assertEqual([<<"pubsub.localhost">>],
                 mongoose_acc:get(event_pusher, published_services, undefined, Acc)),
    ?assert(lists:member({event_pusher, published_services},
                         mongoose_acc:get_permanent_keys(Acc))).

event_pusher_namespace_is_copied_back_through_filter_local_packet(doc) ->
    ["The event_pusher namespace is copied into the acc inside filter_local_packet's result, permanently"];
event_pusher_namespace_is_copied_back_through_filter_local_packet(_Config) ->
    {ok, {_, _, Acc, _}} = ep_test_host:filter_local_packet(
                             alice(), bob(), ep_test_host:message(bob(), <<"chat">>, <<"x">>)),
    _ = one_event(),
    ?assertEqual([<<"push.localhost">>],
                 mongoose_acc:get(event_pusher, published_services, undefined, Acc)),
    ?assert(lists:member({event_pusher, published_services},
                         mongoose_acc:get_permanent_keys(Acc))).

stopped_module_translates_no_hooks(doc) ->
    ["After mod_event_pusher stops, none of its hooks produce events; after it starts again they do"];
stopped_module_translates_no_hooks(_Config) ->
    HostType = ep_test_host:host_type(),
    {stopped, Opts} = mongoose_modules:ensure_stopped(HostType, mod_event_pusher),
    try
        {ok, _} = ep_test_host:user_send_message(
                    alice(), ep_test_host:message(bob(), <<"chat">>, <<"hi">>)),
        {ok, _} = ep_test_host:filter_local_packet(
                    alice(), bob(), ep_test_host:message(bob(), <<"chat">>, <<"hi">>)),
        {ok, _} = ep_test_host:user_available(alice()),
        {ok, _} = ep_test_host:unset_presence(alice(), <<>>),
        no_event()
    after
        {started, _} = mongoose_modules:ensure_started(HostType, mod_event_pusher, Opts)
    end,
    {ok, _} = ep_test_host:user_available(alice()),
    #user_status_event{status = online} = one_event().

%%====================================================================
%% The recording push_event handler
%%====================================================================

%% @doc push_event handler at priority 50: reports the event and metadata to
%% the test process; with `set' in Extra it also stores a value in the acc's
%% event_pusher namespace, as the push backend does.
-spec record_event(map(), #{event := term()}, map()) -> {ok, map()}.
record_event(HookAcc = #{acc := Acc, metadata := Metadata}, #{event := Event},
             Extra = #{test_pid := Pid}) ->
    Pid ! {pushed_event, Event, Metadata},
    case Extra of
        #{set := {Key, Value}} ->
            {ok, HookAcc#{acc := mongoose_acc:set(event_pusher, Key, Value, Acc)}};
        _ ->
            {ok, HookAcc}
    end.

%% The two namespace cases get a recorder that stores a value, as the push
%% backend stores the services it notified.
recorder_setting(event_pusher_namespace_set_by_backend_is_copied_back_permanently) ->
    #{set => {published_services, [<<"pubsub.localhost">>]}};
recorder_setting(event_pusher_namespace_is_copied_back_through_filter_local_packet) ->
    #{set => {published_services, [<<"push.localhost">>]}};
recorder_setting(_Case) ->
    #{}.

%%====================================================================
%% Helpers
%%====================================================================

-include("ep_suite_users.hrl").
room() -> ep_test_host:jid(?ROOM).

%% Hooks run in this process, so every event of a hook call is already in the
%% mailbox when the call returns: no waiting needed.
events() ->
    receive
        {pushed_event, Event, _Metadata} -> [Event | events()]
    after 0 -> []
    end.

one_event() ->
    case events() of
        [Event] -> Event;
        Other -> ct:fail({expected_one_event, Other})
    end.

no_event() ->
    ?assertEqual([], events()).

flush_events() ->
    _ = events(),
    ok.
