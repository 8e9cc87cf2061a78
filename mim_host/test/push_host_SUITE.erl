%% @doc The XMPP pieces of the MongooseIM host emulation the push backend
%% uses (mim_host/src): ejabberd_sm sessions and info, IQ handlers and
%% routing (ejabberd_local, gen_iq_handler, route_iq with replies and
%% timeouts), data forms, subdomain patterns, ejabberd_auth, mnesia, and the
%% mim_host_xmpp test helpers.
-module(push_host_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("eunit/include/eunit.hrl").
-include("jlib.hrl").
-include("mongoose.hrl").
-include("session.hrl").

-compile([export_all, nowarn_export_all]).

-define(HOST, <<"localhost">>).
-define(DYN_TYPE, <<"dynamic type">>).
-define(DYN, <<"dyn.test">>).
-define(PUBSUB, <<"pubsub.remote">>).
-define(NS_TEST, <<"urn:test:ns">>).

all() ->
    [sessions_and_presence, is_offline_follows_priority, session_info_store_get_remove,
     message_to_bare_jid_goes_to_highest_priority, iq_to_server_and_bare_jid_handlers,
     iq_handler_execution_types, unknown_namespace_is_bounced, handler_crash_replies_error,
     route_iq_gets_reply, route_iq_gets_error_reply, route_iq_times_out,
     route_iq_to_unknown_domain_is_bounced, dynamic_domain_routes_locally,
     data_forms_parse_and_build, subdomain_patterns, xmpp_errors_and_jlib,
     auth_user_list_and_remove_user, mnesia_disc_table].

init_per_testcase(_Case, Config) ->
    mongoose_config:set_opts(#{hosts => [?HOST], host_types => [?DYN_TYPE],
                               {modules, ?HOST} => #{}, {modules, ?DYN_TYPE} => #{},
                               outgoing_pools => []}),
    ejabberd_local:set_iq_timeout(32000),
    ejabberd_auth:set_users(all),
    Config.

end_per_testcase(_Case, _Config) ->
    ejabberd_sup:stop(),
    mongoose_config:erase_opts(),
    ok.

%%--------------------------------------------------------------------
%% Sessions
%%--------------------------------------------------------------------

sessions_and_presence(_Config) ->
    Alice = jid(<<"alice">>, <<"phone">>),
    SID = mim_host_xmpp:login(Alice, #{priority => 5, info => #{k => v}}),
    ?assertMatch(#session{sid = SID, usr = {<<"alice">>, ?HOST, <<"phone">>},
                          us = {<<"alice">>, ?HOST}, priority = 5, info = #{k := v}},
                 ejabberd_sm:get_session(Alice)),
    ?assertEqual(self(), ejabberd_sm:get_session_pid(Alice)),
    SID2 = mim_host_xmpp:login(jid(<<"alice">>, <<"pc">>), #{priority => undefined}),
    ?assertEqual([<<"pc">>, <<"phone">>],
                 lists:sort(ejabberd_sm:get_user_resources(jid:to_bare(Alice)))),
    ?assertEqual([{5, <<"phone">>}], ejabberd_sm:get_user_present_resources(Alice)),
    ?assertEqual(2, length(ejabberd_sm:get_raw_sessions(jid:to_bare(Alice)))),
    %% a new session of the same full JID replaces the old one
    Pid = spawn(fun() -> receive stop -> ok end end),
    NewSID = {erlang:system_time(microsecond), Pid},
    ?assertEqual([self()], ejabberd_sm:open_session(?HOST, NewSID, Alice, 1, #{})),
    ?assertEqual(Pid, ejabberd_sm:get_session_pid(Alice)),
    mim_host_xmpp:logout(Alice, NewSID),
    mim_host_xmpp:logout(jid(<<"alice">>, <<"pc">>), SID2),
    ?assertEqual(offline, ejabberd_sm:get_session(Alice)),
    ?assertEqual([], ejabberd_sm:get_raw_sessions(Alice)),
    Pid ! stop.

is_offline_follows_priority(_Config) ->
    Bob = jid(<<"bob">>, <<"r1">>),
    ?assert(ejabberd_sm:is_offline(Bob)),
    SID = mim_host_xmpp:login(Bob, #{priority => undefined}),
    ?assert(ejabberd_sm:is_offline(jid:to_bare(Bob))),
    Acc = new_acc(Bob),
    ejabberd_sm:set_presence(Acc, SID, Bob, -1, presence, #{}),
    ?assert(ejabberd_sm:is_offline(Bob)),
    ejabberd_sm:set_presence(Acc, SID, Bob, 0, presence, #{}),
    ?assertNot(ejabberd_sm:is_offline(jid:to_bare(Bob))),
    %% the highest priority counts
    SID2 = mim_host_xmpp:login(jid(<<"bob">>, <<"r2">>), #{priority => -5}),
    ?assertNot(ejabberd_sm:is_offline(Bob)),
    ejabberd_sm:unset_presence(Acc, SID, Bob, <<>>, #{}),
    ?assert(ejabberd_sm:is_offline(Bob)),
    mim_host_xmpp:logout(jid(<<"bob">>, <<"r2">>), SID2).

session_info_store_get_remove(_Config) ->
    Carol = jid(<<"carol">>, <<"r">>),
    ?assertEqual({error, offline}, ejabberd_sm:get_info(Carol, publish_service)),
    SID = mim_host_xmpp:login(Carol),
    ?assertEqual({error, not_set}, ejabberd_sm:get_info(Carol, publish_service)),
    ok = ejabberd_sm:store_info(Carol, SID, publish_service, {a, b, #{}}),
    ?assertEqual({ok, {a, b, #{}}}, ejabberd_sm:get_info(Carol, publish_service)),
    [Raw] = ejabberd_sm:get_raw_sessions(jid:to_bare(Carol)),
    ?assertEqual({publish_service, {a, b, #{}}},
                 mongoose_session:get_info(Raw, publish_service, undefined)),
    ?assertEqual(<<"r">>, mongoose_session:get_resource(Raw)),
    ok = ejabberd_sm:remove_info(Carol, SID, publish_service),
    ?assertEqual({error, not_set}, ejabberd_sm:get_info(Carol, publish_service)),
    %% an unknown sid changes nothing
    ok = ejabberd_sm:store_info(Carol, {1, self()}, publish_service, x),
    ?assertEqual({error, not_set}, ejabberd_sm:get_info(Carol, publish_service)).

message_to_bare_jid_goes_to_highest_priority(_Config) ->
    Dave = jid(<<"dave">>, <<"hi">>),
    Other = spawn_collector(),
    _ = mim_host_xmpp:login(Dave, #{priority => 10}),
    _ = ejabberd_sm:open_session(?HOST, {erlang:system_time(microsecond), Other},
                                 jid(<<"dave">>, <<"lo">>), 1, #{}),
    Msg = #xmlel{name = <<"message">>, attrs = #{<<"type">> => <<"chat">>},
                 children = [#xmlel{name = <<"body">>, children = [#xmlcdata{content = <<"x">>}]}]},
    mim_host_xmpp:send(jid(<<"eve">>, <<"r">>), jid:to_bare(Dave), Msg),
    receive
        {route, Acc} ->
            ?assertEqual(Dave, mongoose_acc:to_jid(Acc)),
            ?assertEqual(<<"message">>, mongoose_acc:stanza_name(Acc))
    after 5000 -> ct:fail(no_message)
    end,
    ?assertEqual([], collected(Other)).

%%--------------------------------------------------------------------
%% IQ handlers
%%--------------------------------------------------------------------

iq_to_server_and_bare_jid_handlers(_Config) ->
    Self = self(),
    Handler = fun(Acc, From, To, #iq{type = set, sub_el = SubEl} = IQ, Extra) ->
                      Self ! {handled, From, To, mongoose_acc:get(c2s, origin_sid, undefined, Acc),
                              Extra},
                      {Acc, IQ#iq{type = result, sub_el = [SubEl]}}
              end,
    ok = gen_iq_handler:add_iq_handler_for_domain(?HOST, ?NS_TEST, ejabberd_local, Handler,
                                                  #{tag => local}, no_queue),
    ok = gen_iq_handler:add_iq_handler_for_domain(?HOST, ?NS_TEST, ejabberd_sm, Handler,
                                                  #{tag => sm}, one_queue),
    ?assertEqual({error, already_registered},
                 gen_iq_handler:add_iq_handler_for_domain(?HOST, ?NS_TEST, ejabberd_sm, Handler,
                                                          #{}, no_queue)),
    Alice = jid(<<"alice">>, <<"r">>),
    SID = mim_host_xmpp:login(Alice),
    %% to the server
    {ok, Reply1} = mim_host_xmpp:send_iq(Alice, jid:make(<<>>, ?HOST, <<>>), iq(<<"1">>, set)),
    ?assertEqual(<<"result">>, exml_query:attr(Reply1, <<"type">>)),
    ?assertEqual(<<"1">>, exml_query:attr(Reply1, <<"id">>)),
    ?assertEqual(<<"localhost">>, exml_query:attr(Reply1, <<"from">>)),
    ?assertEqual(<<"alice@localhost/r">>, exml_query:attr(Reply1, <<"to">>)),
    ?assertMatch([#xmlel{name = <<"query">>}], Reply1#xmlel.children),
    receive {handled, Alice, _, SID, #{tag := local, host_type := ?HOST}} -> ok
    after 1000 -> ct:fail(not_handled_local)
    end,
    %% to the user's own bare JID
    {ok, Reply2} = mim_host_xmpp:send_iq(Alice, jid:to_bare(Alice), iq(<<"2">>, set)),
    ?assertEqual(<<"result">>, exml_query:attr(Reply2, <<"type">>)),
    receive {handled, Alice, _, SID, #{tag := sm, host_type := ?HOST}} -> ok
    after 1000 -> ct:fail(not_handled_sm)
    end,
    ok = gen_iq_handler:remove_iq_handler_for_domain(?HOST, ?NS_TEST, ejabberd_sm),
    ?assertEqual({error, not_registered},
                 gen_iq_handler:remove_iq_handler_for_domain(?HOST, ?NS_TEST, ejabberd_sm)),
    {ok, Reply3} = mim_host_xmpp:send_iq(Alice, jid:to_bare(Alice), iq(<<"3">>, set)),
    ?assertEqual(<<"service-unavailable">>, error_condition(Reply3)).

iq_handler_execution_types(_Config) ->
    Alice = jid(<<"alice">>, <<"r">>),
    _ = mim_host_xmpp:login(Alice),
    Handler = fun(Acc, _From, _To, IQ, _Extra) -> {Acc, IQ#iq{type = result, sub_el = []}} end,
    lists:foreach(
      fun({Type, N}) ->
              NS = <<"urn:test:", (integer_to_binary(N))/binary>>,
              ok = gen_iq_handler:add_iq_handler_for_domain(?HOST, NS, ejabberd_local, Handler,
                                                            #{}, Type),
              IQ = #xmlel{name = <<"iq">>, attrs = #{<<"type">> => <<"get">>,
                                                     <<"id">> => NS},
                          children = [#xmlel{name = <<"q">>, attrs = #{<<"xmlns">> => NS}}]},
              {ok, Reply} = mim_host_xmpp:send_iq(Alice, jid:make(<<>>, ?HOST, <<>>), IQ),
              ?assertEqual(<<"result">>, exml_query:attr(Reply, <<"type">>)),
              ?assertEqual([], Reply#xmlel.children),
              ok = gen_iq_handler:remove_iq_handler_for_domain(?HOST, NS, ejabberd_local)
      end, [{no_queue, 1}, {parallel, 2}, {one_queue, 3}, {{queues, 3}, 4}]).

unknown_namespace_is_bounced(_Config) ->
    Alice = jid(<<"alice">>, <<"r">>),
    _ = mim_host_xmpp:login(Alice),
    {ok, Reply} = mim_host_xmpp:send_iq(Alice, jid:make(<<>>, ?HOST, <<>>), iq(<<"9">>, get)),
    ?assertEqual(<<"error">>, exml_query:attr(Reply, <<"type">>)),
    ?assertEqual(<<"feature-not-implemented">>, error_condition(Reply)),
    %% the request comes back after the error
    ?assertMatch([#xmlel{name = <<"error">>}, #xmlel{name = <<"query">>}], Reply#xmlel.children).

handler_crash_replies_error(_Config) ->
    Alice = jid(<<"alice">>, <<"r">>),
    _ = mim_host_xmpp:login(Alice),
    ok = gen_iq_handler:add_iq_handler_for_domain(
           ?HOST, ?NS_TEST, ejabberd_local, fun(_, _, _, _, _) -> error(boom) end, #{}, no_queue),
    {ok, Reply} = mim_host_xmpp:send_iq(Alice, jid:make(<<>>, ?HOST, <<>>), iq(<<"c">>, set)),
    ?assertEqual(<<"internal-server-error">>, error_condition(Reply)).

%%--------------------------------------------------------------------
%% route_iq
%%--------------------------------------------------------------------

route_iq_gets_reply(_Config) ->
    {ok, _} = mim_host_xmpp:start_endpoint(?PUBSUB, fun(_) -> result end),
    Callback = reply_callback(),
    ServerJID = jid:make(<<>>, ?HOST, <<>>),
    PubSub = jid:make(<<>>, ?PUBSUB, <<>>),
    IQ = #iq{type = set, sub_el = [#xmlel{name = <<"pubsub">>,
                                          attrs = #{<<"xmlns">> => ?NS_PUBSUB}}]},
    _ = ejabberd_local:route_iq(ServerJID, PubSub, new_acc(ServerJID), IQ, Callback),
    receive
        {ep_xmpp_stanza, ?PUBSUB, ServerJID, PubSub, El} ->
            ?assertEqual(<<"set">>, exml_query:attr(El, <<"type">>)),
            ?assertMatch(<<"ep_", _/binary>>, exml_query:attr(El, <<"id">>)),
            ?assertMatch([#xmlel{name = <<"pubsub">>}], El#xmlel.children)
    after 5000 -> ct:fail(not_routed)
    end,
    receive
        {iq_reply, PubSub, ServerJID, #iq{type = result}} -> ok
    after 5000 -> ct:fail(no_reply)
    end,
    ok = mim_host_xmpp:stop_endpoint(?PUBSUB).

route_iq_gets_error_reply(_Config) ->
    Error = mongoose_xmpp_errors:item_not_found(),
    {ok, _} = mim_host_xmpp:start_endpoint(?PUBSUB, fun(_) -> {error, Error} end),
    ServerJID = jid:make(<<>>, ?HOST, <<>>),
    PubSub = jid:make(<<>>, ?PUBSUB, <<>>),
    IQ = #iq{type = set, sub_el = [#xmlel{name = <<"pubsub">>,
                                          attrs = #{<<"xmlns">> => ?NS_PUBSUB}}]},
    _ = ejabberd_local:route_iq(ServerJID, PubSub, new_acc(ServerJID), IQ, reply_callback()),
    receive
        {iq_reply, PubSub, ServerJID, #iq{type = error, sub_el = Els}} ->
            [Err] = [E || #xmlel{name = <<"error">>} = E <- Els],
            ?assertEqual(<<"cancel">>, exml_query:attr(Err, <<"type">>))
    after 5000 -> ct:fail(no_reply)
    end,
    %% the responder can be changed mid-test
    ok = mim_host_xmpp:set_responder(?PUBSUB, fun(_) -> result end),
    _ = ejabberd_local:route_iq(ServerJID, PubSub, new_acc(ServerJID), IQ, reply_callback()),
    receive {iq_reply, _, _, #iq{type = result}} -> ok
    after 5000 -> ct:fail(no_reply)
    end.

route_iq_times_out(_Config) ->
    {ok, _} = mim_host_xmpp:start_endpoint(?PUBSUB, fun(_) -> no_reply end),
    ServerJID = jid:make(<<>>, ?HOST, <<>>),
    PubSub = jid:make(<<>>, ?PUBSUB, <<>>),
    IQ = #iq{type = get, sub_el = [#xmlel{name = <<"q">>, attrs = #{<<"xmlns">> => ?NS_TEST}}]},
    ejabberd_local:set_iq_timeout(100),
    T0 = erlang:monotonic_time(millisecond),
    _ = ejabberd_local:route_iq(ServerJID, PubSub, new_acc(ServerJID), IQ, reply_callback()),
    receive
        {iq_reply, undefined, undefined, timeout} ->
            ?assert(erlang:monotonic_time(millisecond) - T0 >= 100)
    after 5000 -> ct:fail(no_timeout)
    end,
    %% an explicit timeout; a late reply is dropped
    ok = mim_host_xmpp:set_responder(?PUBSUB, fun(_) -> no_reply end),
    _ = ejabberd_local:route_iq(ServerJID, PubSub, new_acc(ServerJID), IQ, reply_callback(), 50),
    receive
        {ep_xmpp_stanza, ?PUBSUB, _, _, El} ->
            receive {iq_reply, undefined, undefined, timeout} -> ok
            after 5000 -> ct:fail(no_timeout)
            end,
            Late = (jlib:make_result_iq_reply(El))#xmlel{children = []},
            _ = mongoose_router:route(mongoose_acc:update(PubSub, ServerJID, Late,
                                                          new_acc(PubSub))),
            receive {iq_reply, _, _, _} = Unexpected -> ct:fail({unexpected, Unexpected})
            after 200 -> ok
            end
    after 5000 -> ct:fail(not_routed)
    end.

route_iq_to_unknown_domain_is_bounced(_Config) ->
    ServerJID = jid:make(<<>>, ?HOST, <<>>),
    Nowhere = jid:make(<<>>, <<"nowhere.test">>, <<>>),
    IQ = #iq{type = set, sub_el = [#xmlel{name = <<"q">>, attrs = #{<<"xmlns">> => ?NS_TEST}}]},
    _ = ejabberd_local:route_iq(ServerJID, Nowhere, new_acc(ServerJID), IQ, reply_callback()),
    receive
        {iq_reply, Nowhere, ServerJID, #iq{type = error, sub_el = Els}} ->
            [Err] = [E || #xmlel{name = <<"error">>} = E <- Els],
            ?assertEqual(<<"cancel">>, exml_query:attr(Err, <<"type">>)),
            ?assertMatch(#xmlel{name = <<"remote-server-not-found">>},
                         exml_query:subelement(Err, <<"remote-server-not-found">>))
    after 5000 -> ct:fail(no_bounce)
    end.

dynamic_domain_routes_locally(_Config) ->
    ?assertEqual({error, not_found}, mongoose_domain_api:get_domain_host_type(?DYN)),
    {ok, _} = mongoose_domain_api:insert_domain(?DYN, ?DYN_TYPE),
    ?assertEqual({ok, ?DYN_TYPE}, mongoose_domain_api:get_domain_host_type(?DYN)),
    ?assertEqual({ok, ?HOST}, mongoose_domain_api:get_domain_host_type(?HOST)),
    ok = gen_iq_handler:add_iq_handler_for_domain(
           ?DYN_TYPE, ?NS_TEST, ejabberd_sm,
           fun(Acc, _, _, IQ, #{host_type := HT}) ->
                   {Acc, IQ#iq{type = result,
                               sub_el = [#xmlel{name = <<"ht">>, attrs = #{<<"v">> => HT}}]}}
           end, #{}, no_queue),
    User = jid:make(<<"u">>, ?DYN, <<"r">>),
    _ = mim_host_xmpp:login(User),
    {ok, Reply} = mim_host_xmpp:send_iq(User, jid:to_bare(User), iq(<<"d">>, set)),
    ?assertEqual(?DYN_TYPE, exml_query:path(Reply, [{element, <<"ht">>}, {attr, <<"v">>}])),
    Self = self(),
    ok = gen_hook:add_handlers([{remove_domain, ?DYN_TYPE,
                                 fun ?MODULE:remove_domain_handler/3, #{pid => Self}, 50}]),
    gen_hook:reload_hooks(),
    {ok, _} = mongoose_domain_api:delete_domain(?DYN, ?DYN_TYPE),
    receive {removed_domain, ?DYN} -> ok after 1000 -> ct:fail(no_hook) end,
    ?assertEqual({error, not_found}, mongoose_domain_api:get_domain_host_type(?DYN)).

remove_domain_handler(Acc, #{domain := Domain}, #{pid := Pid}) ->
    Pid ! {removed_domain, Domain},
    {ok, Acc}.

%%--------------------------------------------------------------------
%% Forms, patterns, errors, auth, mnesia
%%--------------------------------------------------------------------

data_forms_parse_and_build(_Config) ->
    Form = mongoose_data_forms:form(
             #{ns => ?NS_PUBSUB_PUB_OPTIONS, type => <<"submit">>,
               fields => [#{var => <<"secret">>, values => [<<"s3">>]},
                          #{var => <<"multi">>, values => [<<"a">>, <<"b">>]}]}),
    ?assertEqual(<<"x">>, Form#xmlel.name),
    ?assertEqual(#{<<"xmlns">> => ?NS_XDATA, <<"type">> => <<"submit">>}, Form#xmlel.attrs),
    [FormType, Secret, _Multi] = Form#xmlel.children,
    ?assertEqual(#{<<"var">> => <<"FORM_TYPE">>, <<"type">> => <<"hidden">>},
                 FormType#xmlel.attrs),
    ?assertEqual(#{<<"var">> => <<"secret">>}, Secret#xmlel.attrs),
    ?assertEqual(#{type => <<"submit">>, ns => ?NS_PUBSUB_PUB_OPTIONS,
                   kvs => #{<<"secret">> => [<<"s3">>], <<"multi">> => [<<"a">>, <<"b">>]}},
                 mongoose_data_forms:parse_form_fields(Form)),
    Enable = #xmlel{name = <<"enable">>, attrs = #{<<"xmlns">> => ?NS_PUSH},
                    children = [Form]},
    ?assertEqual(Form, mongoose_data_forms:find_form(Enable)),
    ?assertEqual(undefined, mongoose_data_forms:find_form(Enable#xmlel{children = []})),
    ?assertEqual({error, <<"Form not found">>},
                 mongoose_data_forms:find_and_parse_form(Enable#xmlel{children = []})),
    ?assertMatch(#{ns := ?NS_PUBSUB_PUB_OPTIONS}, mongoose_data_forms:find_and_parse_form(Enable)),
    %% no type attribute, no FORM_TYPE
    Bare = #xmlel{name = <<"x">>, attrs = #{<<"xmlns">> => ?NS_XDATA}},
    ?assertEqual(#{kvs => #{}}, mongoose_data_forms:parse_form_fields(Bare)),
    ?assertEqual(<<"form">>, exml_query:attr(mongoose_data_forms:form(#{}), <<"type">>)),
    ?assert(mongoose_data_forms:is_form(Form, [<<"submit">>])),
    ?assertEqual({error, <<"Invalid form element">>}, mongoose_data_forms:parse_form(Enable)).

subdomain_patterns(_Config) ->
    Prefix = mongoose_subdomain_utils:make_subdomain_pattern(<<"push.@HOST@">>),
    ?assertEqual({prefix, <<"push.">>}, Prefix),
    ?assertEqual({fqdn, <<"push.example.com">>},
                 mongoose_subdomain_utils:make_subdomain_pattern("push.example.com")),
    ?assertEqual({fqdn, <<"sub@HOST@">>},
                 mongoose_subdomain_utils:make_subdomain_pattern(<<"sub@HOST@">>)),
    ?assertEqual(<<"push.localhost">>, mongoose_subdomain_utils:get_fqdn(Prefix, ?HOST)),
    ?assert(mongoose_subdomain_utils:is_subdomain(Prefix, ?HOST, <<"push.localhost">>)),
    ?assertNot(mongoose_subdomain_utils:is_subdomain(Prefix, ?HOST, <<"push.other">>)),
    ?assertEqual(subdomain, mongoose_subdomain_utils:subdomain_type(Prefix)).

xmpp_errors_and_jlib(_Config) ->
    BadRequest = mongoose_xmpp_errors:bad_request(),
    ?assertEqual(#xmlel{name = <<"error">>, attrs = #{<<"code">> => <<"400">>,
                                                     <<"type">> => <<"modify">>},
                        children = [#xmlel{name = <<"bad-request">>,
                                           attrs = #{<<"xmlns">> => ?NS_STANZAS}}]},
                 BadRequest),
    ?assertEqual(<<"cancel">>, exml_query:attr(mongoose_xmpp_errors:not_allowed(), <<"type">>)),
    El = #xmlel{name = <<"iq">>, attrs = #{<<"type">> => <<"set">>, <<"id">> => <<"i">>,
                                           <<"xml:lang">> => <<"en">>},
                children = [#xmlcdata{content = <<" ">>},
                            #xmlel{name = <<"enable">>, attrs = #{<<"xmlns">> => ?NS_PUSH}}]},
    IQ = jlib:iq_query_info(El),
    ?assertMatch(#iq{id = <<"i">>, type = set, xmlns = ?NS_PUSH, lang = <<"en">>,
                     sub_el = #xmlel{name = <<"enable">>}}, IQ),
    ?assertEqual(#xmlel{name = <<"iq">>, attrs = #{<<"type">> => <<"result">>, <<"id">> => <<"i">>},
                        children = []},
                 jlib:iq_to_xml(IQ#iq{type = result, sub_el = []})),
    Result = El#xmlel{attrs = #{<<"type">> => <<"result">>, <<"id">> => <<"i">>}},
    ?assertEqual(reply, jlib:iq_query_info(Result)),
    ?assertMatch(#iq{type = result, sub_el = [#xmlel{name = <<"enable">>}]},
                 jlib:iq_query_or_response_info(Result)),
    ?assertEqual(invalid, jlib:iq_query_info(El#xmlel{children = []})),
    ?assertEqual(not_iq, jlib:iq_query_info(#xmlel{name = <<"message">>})),
    Error = jlib:make_error_reply(El#xmlel{attrs = (El#xmlel.attrs)#{<<"from">> => <<"a@b">>}},
                                  BadRequest),
    ?assertEqual(<<"a@b">>, exml_query:attr(Error, <<"to">>)),
    ?assertEqual(undefined, exml_query:attr(Error, <<"from">>)),
    ?assertEqual(<<"error">>, exml_query:attr(Error, <<"type">>)),
    ?assertMatch([BadRequest | _], Error#xmlel.children).

auth_user_list_and_remove_user(_Config) ->
    Alice = jid:make(<<"alice">>, ?HOST, <<>>),
    Bob = jid:make(<<"bob">>, ?HOST, <<>>),
    ?assert(ejabberd_auth:does_user_exist(Alice)),
    ?assert(ejabberd_auth:does_user_exist(?HOST, Bob, stored)),
    ejabberd_auth:set_users([jid:make(<<"Alice">>, ?HOST, <<"res">>)]),
    ?assert(ejabberd_auth:does_user_exist(?HOST, Alice, stored)),
    ?assertNot(ejabberd_auth:does_user_exist(?HOST, Bob, stored)),
    ?assertNot(ejabberd_auth:does_user_exist(error)),
    Self = self(),
    ok = gen_hook:add_handlers([{remove_user, ?HOST, fun ?MODULE:remove_user_handler/3,
                                 #{pid => Self}, 50}]),
    gen_hook:reload_hooks(),
    ?assertEqual({error, user_does_not_exist}, ejabberd_auth:remove_user(Bob)),
    ok = ejabberd_auth:remove_user(Alice),
    receive {removed_user, Alice, ?HOST} -> ok after 1000 -> ct:fail(no_hook) end,
    ?assertNot(ejabberd_auth:does_user_exist(Alice)).

remove_user_handler(Acc, #{jid := JID}, #{pid := Pid, host_type := HostType}) ->
    Pid ! {removed_user, JID, HostType},
    {ok, Acc}.

mnesia_disc_table(_Config) ->
    ok = mongoose_mnesia:ensure_started(),
    Opts = [{disc_copies, [node()]}, {type, bag}, {attributes, [key, value]}],
    Res = mongoose_mnesia:create_table(ep_host_test, Opts),
    ?assert(lists:member(Res, [{atomic, ok}, {aborted, {already_exists, ep_host_test}}])),
    ?assertEqual({aborted, {already_exists, ep_host_test}},
                 mongoose_mnesia:create_table(ep_host_test, Opts)),
    ?assertEqual(disc_copies, mnesia:table_info(ep_host_test, storage_type)),
    ok = mnesia:dirty_write({ep_host_test, k, 1}),
    ?assertEqual([{ep_host_test, k, 1}], mnesia:dirty_read(ep_host_test, k)),
    {atomic, ok} = mnesia:delete_table(ep_host_test).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

jid(User, Resource) ->
    jid:make(User, ?HOST, Resource).

new_acc(#jid{lserver = LServer}) ->
    mongoose_acc:new(#{location => ?LOCATION, lserver => LServer, host_type => ?HOST}).

iq(ID, Type) ->
    #xmlel{name = <<"iq">>, attrs = #{<<"type">> => atom_to_binary(Type), <<"id">> => ID},
           children = [#xmlel{name = <<"query">>, attrs = #{<<"xmlns">> => ?NS_TEST}}]}.

error_condition(Reply) ->
    [#xmlel{children = [#xmlel{name = Condition} | _]}] =
        [E || #xmlel{name = <<"error">>} = E <- Reply#xmlel.children],
    Condition.

reply_callback() ->
    Self = self(),
    fun(From, To, Acc, Reply) -> Self ! {iq_reply, From, To, Reply}, Acc end.

spawn_collector() ->
    spawn(fun() -> collect([]) end).

collect(Got) ->
    receive
        {get, Pid} -> Pid ! {collected, lists:reverse(Got)};
        Msg -> collect([Msg | Got])
    end.

collected(Pid) ->
    Pid ! {get, self()},
    receive {collected, Got} -> Got after 1000 -> ct:fail(collector_gone) end.
