%% @doc mod_event_pusher_push with `backend = "rdbms"' (doc/compatibility.md §7,
%% mod_event_pusher_push_rdbms) against real databases: one group on
%% PostgreSQL, one on MariaDB (both started by scripts/services.sh). Each case
%% drives the node with IQs and messages and asserts on the rows the database
%% holds (read on a connection of the test's own, test/support/ep_rdbms.erl)
%% and on the publish IQs a test-controlled pubsub service receives.
-module(mod_event_pusher_push_rdbms_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("jlib.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2, init_per_testcase/2, end_per_testcase/2]).
-export([enable_stores_one_row_with_mongooseim_encodings/1,
         enable_again_keeps_one_row_with_the_new_form/1,
         enable_two_services_stores_two_rows/1,
         disable_one_node_removes_only_its_row/1,
         disable_by_service_removes_its_rows_only/1,
         remove_user_removes_all_rows_of_the_user/1,
         subscriptions_survive_a_module_restart/1,
         offline_message_is_published_to_each_stored_service/1,
         rows_written_by_mongooseim_are_published_to/1,
         remove_domain_removes_only_that_domains_owners/1,
         non_ascii_form_round_trips/1,
         database_down_during_enable_answers_an_error_and_recovers/1]).

-define(HT, <<"localhost">>).
-define(PUBSUB, <<"pubsub.localhost">>).
-define(PUBSUB2, <<"push2.localhost">>).
-define(ALICE, <<"alice@localhost">>).
-define(BOB, <<"bob@localhost">>).
-define(WAIT_MS, 5000).
%% An IQ's answer may wait for a query to time out (query_timeout 2000 ms).
-define(IQ_WAIT_MS, 10000).

%%====================================================================
%% Suite setup
%%====================================================================

all() ->
    [{group, pgsql}, {group, mysql}].

groups() ->
    Cases = [enable_stores_one_row_with_mongooseim_encodings,
             enable_again_keeps_one_row_with_the_new_form,
             enable_two_services_stores_two_rows,
             disable_one_node_removes_only_its_row,
             disable_by_service_removes_its_rows_only,
             remove_user_removes_all_rows_of_the_user,
             subscriptions_survive_a_module_restart,
             offline_message_is_published_to_each_stored_service,
             rows_written_by_mongooseim_are_published_to,
             remove_domain_removes_only_that_domains_owners,
             non_ascii_form_round_trips,
             database_down_during_enable_answers_an_error_and_recovers],
    [{pgsql, [], Cases}, {mysql, [], Cases}].

init_per_suite(Config) ->
    {ok, _} = ejabberd_sup:ensure_started(),
    ok = mongoose_mnesia:ensure_started(),
    Config.

end_per_suite(_Config) ->
    ok.

%% The database must be up: scripts/services.sh starts it (no skipping).
init_per_group(Driver, Config) ->
    case ep_rdbms:is_up(Driver) of
        true -> [{driver, Driver} | Config];
        false -> {fail, {database_down, ep_rdbms:settings(Driver),
                         "run scripts/services.sh start"}}
    end.

end_per_group(_Driver, _Config) ->
    ok.

init_per_testcase(Case, Config) ->
    Driver = ?config(driver, Config),
    ok = ejabberd_auth:set_users(all),
    ok = ep_rdbms:clear(Driver),
    {ok, PubSub} = ep_pubsub:start(?PUBSUB),
    {ok, PubSub2} = ep_pubsub:start(?PUBSUB2),
    Config1 = [{pubsub, PubSub}, {pubsub2, PubSub2} | Config],
    case Case of
        database_down_during_enable_answers_an_error_and_recovers ->
            {ok, Proxy} = ep_tcp_proxy:start(maps:get(port, ep_rdbms:settings(Driver))),
            ok = boot(Driver, ep_tcp_proxy:port(Proxy)),
            [{proxy, Proxy} | Config1];
        _ ->
            ok = boot(Driver, maps:get(port, ep_rdbms:settings(Driver))),
            Config1
    end.

end_per_testcase(_Case, Config) ->
    ep_test_host:shutdown(),
    ep_sessions:close_all(),
    [ok = ep_tcp_proxy:stop(P) || P <- [?config(proxy, Config)], P =/= undefined],
    ep_pubsub:stop(?config(pubsub2, Config)),
    ep_pubsub:stop(?config(pubsub, Config)).

boot(Driver, Port) ->
    ep_test_host:boot([ep_test_host:general_toml(),
                       ep_rdbms:pool_toml(Driver, Port),
                       "[modules.mod_event_pusher.push]\n"
                       "  backend = \"rdbms\"\n"]).

%%====================================================================
%% Cases
%%====================================================================

%% Doc: enable stores one row: the owner's bare JID, the node, the service's
%% JID as text, the form as a JSON object and created_at in microseconds.
enable_stores_one_row_with_mongooseim_encodings(Config) ->
    Before = os:system_time(microsecond),
    SID = ep_sessions:login(<<?ALICE/binary, "/phone">>),
    ok = enable(<<?ALICE/binary, "/phone">>, SID, ?PUBSUB, <<"n1">>,
                #{<<"secret">> => <<"s3cr3t">>}),
    [{Owner, Node, PubSub, Form, CreatedAt}] = rows(Config),
    ?assertEqual({?ALICE, <<"n1">>, ?PUBSUB, #{<<"secret">> => <<"s3cr3t">>}},
                 {Owner, Node, PubSub, Form}),
    ?assert(CreatedAt >= Before andalso CreatedAt =< os:system_time(microsecond)),
    [{_, _, _, FormJSON}] = ep_rdbms:query(?config(driver, Config),
                                           "SELECT owner_jid, node, pubsub_jid, form "
                                           "FROM event_pusher_push_subscription"),
    ?assertEqual(#{<<"secret">> => <<"s3cr3t">>}, jiffy:decode(FormJSON, [return_maps])).

%% Doc: enabling the same service and node again leaves one row, whose
%% form is the new one.
enable_again_keeps_one_row_with_the_new_form(Config) ->
    SID = ep_sessions:login(<<?ALICE/binary, "/phone">>),
    ok = enable(<<?ALICE/binary, "/phone">>, SID, ?PUBSUB, <<"n1">>, #{<<"k">> => <<"1">>}),
    ok = enable(<<?ALICE/binary, "/phone">>, SID, ?PUBSUB, <<"n1">>, #{<<"k">> => <<"2">>}),
    ?assertMatch([{?ALICE, <<"n1">>, ?PUBSUB, #{<<"k">> := <<"2">>}, _}], rows(Config)).

%% Doc: two services (and two nodes) give two rows.
enable_two_services_stores_two_rows(Config) ->
    SID = ep_sessions:login(<<?ALICE/binary, "/phone">>),
    ok = enable(<<?ALICE/binary, "/phone">>, SID, ?PUBSUB, <<"n1">>, #{}),
    ok = enable(<<?ALICE/binary, "/phone">>, SID, ?PUBSUB2, <<"n2">>, #{}),
    ?assertEqual([{?ALICE, <<"n1">>, ?PUBSUB, #{}}, {?ALICE, <<"n2">>, ?PUBSUB2, #{}}],
                 short_rows(Config)).

%% Doc: disable with a node removes that row only.
disable_one_node_removes_only_its_row(Config) ->
    Me = <<?ALICE/binary, "/phone">>,
    SID = ep_sessions:login(Me),
    ok = enable(Me, SID, ?PUBSUB, <<"n1">>, #{}),
    ok = enable(Me, SID, ?PUBSUB, <<"n2">>, #{}),
    ok = disable(Me, SID, ?PUBSUB, <<"n1">>),
    ?assertEqual([{?ALICE, <<"n2">>, ?PUBSUB, #{}}], short_rows(Config)).

%% Doc: disable without a node removes every row of that service, and
%% leaves the other service's.
disable_by_service_removes_its_rows_only(Config) ->
    Me = <<?ALICE/binary, "/phone">>,
    SID = ep_sessions:login(Me),
    ok = enable(Me, SID, ?PUBSUB, <<"n1">>, #{}),
    ok = enable(Me, SID, ?PUBSUB, <<"n2">>, #{}),
    ok = enable(Me, SID, ?PUBSUB2, <<"n3">>, #{}),
    ok = disable(Me, SID, ?PUBSUB, undefined),
    ?assertEqual([{?ALICE, <<"n3">>, ?PUBSUB2, #{}}], short_rows(Config)).

%% Doc: removing a user deletes all of the user's rows, and only theirs.
remove_user_removes_all_rows_of_the_user(Config) ->
    enable_offline(?ALICE, ?PUBSUB, <<"n1">>, #{}),
    enable_offline(?ALICE, ?PUBSUB2, <<"n2">>, #{}),
    enable_offline(?BOB, ?PUBSUB, <<"n3">>, #{}),
    ok = ejabberd_auth:remove_user(jid:from_binary(?ALICE)),
    ?assertEqual([{?BOB, <<"n3">>, ?PUBSUB, #{}}], short_rows(Config)).

%% Doc: the rows outlive the module: after a restart of the modules the
%% user is still notified, with the stored form as publish options.
subscriptions_survive_a_module_restart(Config) ->
    enable_offline(?BOB, ?PUBSUB, <<"n">>, #{<<"secret">> => <<"abc">>}),
    ok = ep_test_host:restart_modules(),
    ?assertEqual([{?BOB, <<"n">>, ?PUBSUB, #{<<"secret">> => <<"abc">>}}], short_rows(Config)),
    deliver(<<"alice@localhost/phone">>, ?BOB, <<"Hi">>),
    [{_, _, IQ}] = ep_pubsub:wait_for_publishes(?config(pubsub, Config), 1, ?WAIT_MS),
    ?assertEqual([{<<"FORM_TYPE">>, [?NS_PUBSUB_PUB_OPTIONS]}, {<<"secret">>, [<<"abc">>]}],
                 publish_options(IQ)).

%% Doc: an offline message makes one publish IQ to each stored service,
%% with its node.
offline_message_is_published_to_each_stored_service(Config) ->
    enable_offline(?BOB, ?PUBSUB, <<"n1">>, #{}),
    enable_offline(?BOB, ?PUBSUB2, <<"n2">>, #{}),
    deliver(<<"alice@localhost/phone">>, ?BOB, <<"Hi Bob">>),
    [{_, To1, IQ1}] = ep_pubsub:wait_for_publishes(?config(pubsub, Config), 1, ?WAIT_MS),
    [{_, To2, IQ2}] = ep_pubsub:wait_for_publishes(?config(pubsub2, Config), 1, ?WAIT_MS),
    ?assertEqual({?PUBSUB, <<"n1">>}, {jid:to_binary(To1), publish_node(IQ1)}),
    ?assertEqual({?PUBSUB2, <<"n2">>}, {jid:to_binary(To2), publish_node(IQ2)}),
    [?assertEqual([<<"Hi Bob">>], proplists:get_value(<<"last-message-body">>,
                                                        summary_fields(IQ)))
     || IQ <- [IQ1, IQ2]].

%% Doc: rows a MongooseIM node wrote (same table, JSON form) are read: the
%% user is notified with the form as publish options.
rows_written_by_mongooseim_are_published_to(Config) ->
    ok = ep_rdbms:insert(?config(driver, Config),
                         [{?BOB, <<"legacy-node">>, ?PUBSUB, <<"{\"secret\":\"old\"}">>}]),
    deliver(<<"alice@localhost/phone">>, ?BOB, <<"Hi">>),
    [{_, _, IQ}] = ep_pubsub:wait_for_publishes(?config(pubsub, Config), 1, ?WAIT_MS),
    ?assertEqual(<<"legacy-node">>, publish_node(IQ)),
    ?assertEqual([{<<"FORM_TYPE">>, [?NS_PUBSUB_PUB_OPTIONS]}, {<<"secret">>, [<<"old">>]}],
                 publish_options(IQ)).

%% Doc: remove_domain deletes the rows of that domain's users only; `_' in
%% the domain is escaped, so it does not match other domains (x_y.com is
%% not xay.com), nor is a user whose name ends in the domain touched.
remove_domain_removes_only_that_domains_owners(Config) ->
    Owners = [<<"u1@x_y.com">>, <<"u2@x_y.com">>, <<"u3@xay.com">>, <<"u4@sub.x_y.com">>,
              <<"x_y.com@localhost">>, ?BOB],
    [ok = mod_event_pusher_push_backend:enable(?HT, jid:from_binary(O),
                                               jid:from_binary(?PUBSUB), <<"n">>, #{})
     || O <- Owners],
    _ = mongoose_hooks:remove_domain(?HT, <<"x_y.com">>),
    ?assertEqual(lists:sort([<<"u3@xay.com">>, <<"u4@sub.x_y.com">>, <<"x_y.com@localhost">>,
                             ?BOB]),
                 [Owner || {Owner, _, _, _} <- short_rows(Config)]).

%% Doc: a node and form values outside ASCII are stored as UTF-8 and come
%% back unchanged, in the rows and in the publish IQ.
non_ascii_form_round_trips(Config) ->
    Node = <<"nœud-ü"/utf8>>,
    Form = #{<<"clé"/utf8>> => <<"välue ✓ 日本"/utf8>>},
    enable_offline(?BOB, ?PUBSUB, Node, Form),
    ?assertEqual([{?BOB, Node, ?PUBSUB, Form}], short_rows(Config)),
    deliver(<<"alice@localhost/phone">>, ?BOB, <<"ça va?"/utf8>>),
    [{_, _, IQ}] = ep_pubsub:wait_for_publishes(?config(pubsub, Config), 1, ?WAIT_MS),
    ?assertEqual(Node, publish_node(IQ)),
    ?assertEqual([{<<"FORM_TYPE">>, [?NS_PUBSUB_PUB_OPTIONS]},
                  {<<"clé"/utf8>>, [<<"välue ✓ 日本"/utf8>>]}],
                 publish_options(IQ)).

%% Doc: with the database unreachable, enable is answered with an error
%% (the query raises in the IQ handler, as MongooseIM's
%% execute_successfully does) and nothing is stored; the node keeps
%% working, and once the database is back enabling works again.
database_down_during_enable_answers_an_error_and_recovers(Config) ->
    Proxy = ?config(proxy, Config),
    Me = <<?ALICE/binary, "/phone">>,
    SID = ep_sessions:login(Me),
    ok = enable(Me, SID, ?PUBSUB, <<"before">>, #{}),
    ok = ep_tcp_proxy:down(Proxy),
    %% the first on the connection that was cut, the second on a new one
    [begin
         Reply = iq(Me, SID, enable_el(?PUBSUB, Node)),
         ?assertEqual(<<"error">>, exml_query:attr(Reply, <<"type">>)),
         ?assertMatch(#xmlel{}, exml_query:path(Reply, [{element, <<"error">>},
                                                        {element, <<"internal-server-error">>}]))
     end || Node <- [<<"during">>, <<"still-during">>]],
    ?assert(ep_tcp_proxy:refused(Proxy) > 0),
    ?assertEqual([{?ALICE, <<"before">>, ?PUBSUB, #{}}], short_rows(Config)),
    ok = ep_tcp_proxy:up(Proxy),
    ok = enable(Me, SID, ?PUBSUB, <<"after">>, #{}),
    ?assertEqual([{?ALICE, <<"after">>, ?PUBSUB, #{}}, {?ALICE, <<"before">>, ?PUBSUB, #{}}],
                 short_rows(Config)),
    %% and the node still notifies from what is stored
    ep_sessions:logout(Me, SID),
    deliver(<<"bob@localhost/phone">>, ?ALICE, <<"Hi">>),
    ?assertEqual(2, length(ep_pubsub:wait_for_publishes(?config(pubsub, Config), 2,
                                                        ?WAIT_MS))).

%%====================================================================
%% Helpers
%%====================================================================

rows(Config) ->
    ep_rdbms:subscriptions(?config(driver, Config)).

short_rows(Config) ->
    [{O, N, P, F} || {O, N, P, F, _CreatedAt} <- rows(Config)].

%% Enables from a short-lived session; the user is offline afterwards.
enable_offline(User, PubSub, Node, Form) ->
    Full = <<User/binary, "/setup">>,
    SID = ep_sessions:login(Full),
    ok = enable(Full, SID, PubSub, Node, Form),
    ep_sessions:logout(Full, SID).

enable(User, SID, PubSub, Node, Form) ->
    Fields = [{K, V} || {K, V} <- maps:to_list(Form)],
    El = enable_el(PubSub, Node),
    Children = case Fields of
                   [] -> [];
                   _ -> [mongoose_data_forms:form(#{type => <<"submit">>,
                                                    ns => ?NS_PUBSUB_PUB_OPTIONS,
                                                    fields => [#{var => K, values => [V]}
                                                               || {K, V} <- Fields]})]
               end,
    expect_result(iq(User, SID, El#xmlel{children = Children})).

disable(User, SID, PubSub, Node) ->
    Attrs = #{<<"xmlns">> => ?NS_PUSH, <<"jid">> => PubSub},
    El = #xmlel{name = <<"disable">>,
                attrs = case Node of
                            undefined -> Attrs;
                            _ -> Attrs#{<<"node">> => Node}
                        end},
    expect_result(iq(User, SID, El)).

enable_el(PubSub, Node) ->
    #xmlel{name = <<"enable">>,
           attrs = #{<<"xmlns">> => ?NS_PUSH, <<"jid">> => PubSub, <<"node">> => Node}}.

expect_result(Reply) ->
    case exml_query:attr(Reply, <<"type">>) of
        <<"result">> -> ok;
        _ -> {unexpected_reply, Reply}
    end.

%% A set IQ from the user's session to the user's bare JID; the reply.
iq(FullJID, _SID, SubEl) ->
    From = jid:from_binary(FullJID),
    Id = integer_to_binary(erlang:unique_integer([positive])),
    El = #xmlel{name = <<"iq">>, attrs = #{<<"type">> => <<"set">>, <<"id">> => Id},
                children = [SubEl]},
    {ok, Reply} = mim_host_xmpp:send_iq(From, jid:to_bare(From), El, ?IQ_WAIT_MS),
    Reply.

%% The router delivers a chat message to the user To (bare).
deliver(From, To, Body) ->
    ToJID = jid:from_binary(To),
    {ok, _} = ep_test_host:filter_local_packet(jid:from_binary(From), ToJID,
                                               ep_test_host:message(ToJID, <<"chat">>, Body)),
    ok.

publish_node(IQ) ->
    exml_query:path(IQ, [{element, <<"pubsub">>}, {element, <<"publish">>},
                         {attr, <<"node">>}]).

publish_options(IQ) ->
    form_fields(exml_query:path(IQ, [{element, <<"pubsub">>}, {element, <<"publish-options">>},
                                     {element_with_ns, <<"x">>, ?NS_XDATA}])).

summary_fields(IQ) ->
    Form = exml_query:path(IQ, [{element, <<"pubsub">>}, {element, <<"publish">>},
                                {element, <<"item">>}, {element, <<"notification">>},
                                {element, <<"x">>}]),
    [F || {Var, _} = F <- form_fields(Form), Var =/= <<"FORM_TYPE">>].

form_fields(Form) ->
    [{exml_query:attr(F, <<"var">>), exml_query:paths(F, [{element, <<"value">>}, cdata])}
     || F <- exml_query:subelements(Form, <<"field">>)].
