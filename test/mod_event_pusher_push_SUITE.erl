%% @doc mod_event_pusher_push (doc/compatibility.md §7, XEP-0357): the enable/disable
%% IQs, what is stored and kept in sessions, and the publish IQs that reach a
%% real (test-controlled) pubsub service, with its replies.
-module(mod_event_pusher_push_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("jlib.hrl").
-include("session.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
%% config
-export([defaults_are_mongooseim_defaults/1,
         documented_example_config_boots/1,
         virtual_pubsub_host_templates_are_validated/1,
         rdbms_backend_without_a_pool_fails_start_with_a_clear_error/1,
         instrumentation_events_are_declared/1,
         table_is_created_with_mongooseim_record_shape/1]).
%% iq
-export([get_is_not_allowed/1,
         enable_bad_requests_are_rejected/1,
         disable_bad_requests_are_rejected/1,
         enable_without_form_is_stored/1,
         enable_with_form_is_stored/1,
         enable_again_replaces_the_same_node/1,
         disable_one_node_keeps_the_others/1,
         disable_without_node_removes_every_node_of_the_service/1,
         session_info_is_updated_in_this_and_other_sessions/1]).
%% publish
-export([offline_chat_message_publishes_exact_iq/1,
         groupchat_sender_is_the_occupant_full_jid/1,
         publish_options_carry_the_enable_form/1,
         nothing_is_published_when_not_enabled/1,
         nothing_is_published_when_recipient_is_online/1,
         nothing_is_published_after_disable/1,
         nothing_is_published_after_user_removal/1,
         nothing_is_published_after_domain_removal/1,
         nothing_is_published_for_a_message_without_body/1,
         cancel_error_disables_the_node/1,
         wait_and_modify_errors_do_not_disable_the_node/1,
         timeout_does_not_disable_the_node/1,
         hook_returns_before_the_service_replies/1,
         one_notification_per_message_when_several_hooks_see_it/1,
         subscriptions_in_mongooseim_record_shape_are_read/1]).
%% plugins
-export([enhanced_plugin_notifies_unacknowledged_message_at_once/1,
         enhanced_plugin_notifies_the_session_service_with_nothing_stored/1,
         unacknowledged_headline_is_not_notified/1,
         hints_plugin_skips_no_store/1,
         hints_plugin_notifies_jingle_call/1,
         custom_plugin_with_only_should_publish/1]).
%% virtual pubsub hosts
-export([virtual_pubsub_host_runs_push_notifications_hook/1,
         device_not_registered_disables_the_node/1]).
%% privacy options (ours)
-export([privacy_omit_leaves_body_and_sender_out_of_the_publish_iq/1,
         privacy_replace_puts_the_fixed_text_in_the_publish_iq/1,
         privacy_applies_to_the_push_notifications_hook/1,
         privacy_omit_sender_leaves_out_the_jingle_sender/1,
         privacy_options_are_validated/1]).
%% hook handlers used by the cases
-export([unread_count_handler/3, push_notifications_handler/3]).

-define(HT, <<"localhost">>).
-define(PUBSUB, <<"pubsub.localhost">>).
-define(ALICE, <<"alice@localhost/phone">>).
-define(BOB, <<"bob@localhost">>).
-define(BOB_PHONE, <<"bob@localhost/phone">>).
-define(WAIT_MS, 5000).
%% How long a case watches for something that must not arrive.
-define(QUIET_MS, 300).
-define(LABELS, #{host_type => ?HT}).

%%====================================================================
%% Suite setup
%%====================================================================

all() ->
    [{group, config}, {group, iq}, {group, publish}, {group, plugins}, {group, virtual},
     {group, privacy}].

groups() ->
    [{config, [],
      [defaults_are_mongooseim_defaults,
       documented_example_config_boots,
       virtual_pubsub_host_templates_are_validated,
       rdbms_backend_without_a_pool_fails_start_with_a_clear_error,
       instrumentation_events_are_declared,
       table_is_created_with_mongooseim_record_shape]},
     {iq, [],
      [get_is_not_allowed,
       enable_bad_requests_are_rejected,
       disable_bad_requests_are_rejected,
       enable_without_form_is_stored,
       enable_with_form_is_stored,
       enable_again_replaces_the_same_node,
       disable_one_node_keeps_the_others,
       disable_without_node_removes_every_node_of_the_service,
       session_info_is_updated_in_this_and_other_sessions]},
     {publish, [],
      [offline_chat_message_publishes_exact_iq,
       groupchat_sender_is_the_occupant_full_jid,
       publish_options_carry_the_enable_form,
       nothing_is_published_when_not_enabled,
       nothing_is_published_when_recipient_is_online,
       nothing_is_published_after_disable,
       nothing_is_published_after_user_removal,
       nothing_is_published_after_domain_removal,
       nothing_is_published_for_a_message_without_body,
       cancel_error_disables_the_node,
       wait_and_modify_errors_do_not_disable_the_node,
       timeout_does_not_disable_the_node,
       hook_returns_before_the_service_replies,
       one_notification_per_message_when_several_hooks_see_it,
       subscriptions_in_mongooseim_record_shape_are_read]},
     {plugins, [],
      [enhanced_plugin_notifies_unacknowledged_message_at_once,
       enhanced_plugin_notifies_the_session_service_with_nothing_stored,
       unacknowledged_headline_is_not_notified,
       hints_plugin_skips_no_store,
       hints_plugin_notifies_jingle_call,
       custom_plugin_with_only_should_publish]},
     {virtual, [],
      [virtual_pubsub_host_runs_push_notifications_hook,
       device_not_registered_disables_the_node]},
     {privacy, [],
      [privacy_omit_leaves_body_and_sender_out_of_the_publish_iq,
       privacy_replace_puts_the_fixed_text_in_the_publish_iq,
       privacy_applies_to_the_push_notifications_hook,
       privacy_omit_sender_leaves_out_the_jingle_sender,
       privacy_options_are_validated]}].

init_per_suite(Config) ->
    {ok, _} = ejabberd_sup:ensure_started(),
    ok = mongoose_mnesia:ensure_started(),
    Config.

end_per_suite(_Config) ->
    ok.

init_per_testcase(Case, Config) ->
    ok = ejabberd_auth:set_users(all),
    clear_table(),
    {ok, PubSub} = ep_pubsub:start(?PUBSUB),
    ok = application:set_env(mongoose_event_pusher, push_iq_timeout, iq_timeout(Case)),
    case boots(Case) of
        true ->
            ok = ep_test_host:boot(push_toml(module_toml(Case))),
            ok = mongoose_instrument:start_recording(
                   instrument_helper:declared_events(mod_event_pusher_push, [?HT]));
        false ->
            ok
    end,
    [{pubsub, PubSub} | Config].

end_per_testcase(_Case, Config) ->
    _ = mongoose_instrument:stop_recording(),
    _ = gen_hook:delete_handlers(test_handlers()),
    ep_test_host:shutdown(),
    close_sessions(),
    ok = application:unset_env(mongoose_event_pusher, push_iq_timeout),
    ep_pubsub:stop(?config(pubsub, Config)).

boots(Case) ->
    not lists:member(Case, [virtual_pubsub_host_templates_are_validated,
                            documented_example_config_boots,
                            rdbms_backend_without_a_pool_fails_start_with_a_clear_error,
                            instrumentation_events_are_declared,
                            table_is_created_with_mongooseim_record_shape,
                            subscriptions_in_mongooseim_record_shape_are_read,
                            privacy_options_are_validated]).

iq_timeout(timeout_does_not_disable_the_node) -> 300;
iq_timeout(_) -> 5000.

module_toml(Case) when Case =:= enhanced_plugin_notifies_unacknowledged_message_at_once;
                       Case =:= enhanced_plugin_notifies_the_session_service_with_nothing_stored;
                       Case =:= unacknowledged_headline_is_not_notified ->
    "  plugin_module = \"mod_event_pusher_push_plugin_enhanced\"\n";
module_toml(Case) when Case =:= hints_plugin_skips_no_store;
                       Case =:= hints_plugin_notifies_jingle_call ->
    "  plugin_module = \"mod_event_pusher_push_plugin_hints\"\n";
module_toml(custom_plugin_with_only_should_publish) ->
    "  plugin_module = \"ep_push_plugin_should_publish\"\n";
module_toml(Case) when Case =:= virtual_pubsub_host_runs_push_notifications_hook;
                       Case =:= device_not_registered_disables_the_node ->
    "  virtual_pubsub_hosts = [\"virtual.@HOST@\", \"push.example.com\"]\n";
module_toml(privacy_omit_leaves_body_and_sender_out_of_the_publish_iq) ->
    privacy_toml("  body = \"omit\"\n  sender = \"omit\"\n");
module_toml(privacy_replace_puts_the_fixed_text_in_the_publish_iq) ->
    privacy_toml("  body = \"replace\"\n  body_text = \"New message\"\n");
module_toml(privacy_applies_to_the_push_notifications_hook) ->
    ["  virtual_pubsub_hosts = [\"virtual.@HOST@\"]\n",
     privacy_toml("  body = \"replace\"\n  body_text = \"You have a message\"\n"
                  "  sender = \"omit\"\n")];
module_toml(privacy_omit_sender_leaves_out_the_jingle_sender) ->
    ["  plugin_module = \"mod_event_pusher_push_plugin_hints\"\n",
     privacy_toml("  sender = \"omit\"\n")];
module_toml(_) ->
    "".

privacy_toml(Lines) ->
    ["  [modules.mod_event_pusher.push.privacy]\n", Lines].

push_toml(ModuleToml) ->
    [ep_test_host:general_toml(), "[modules.mod_event_pusher.push]\n", ModuleToml].

%%====================================================================
%% config
%%====================================================================

%% Doc: the options default as in MongooseIM (the wpool included).
defaults_are_mongooseim_defaults(_Config) ->
    Opts = gen_mod:get_module_opts(?HT, mod_event_pusher_push),
    ?assertMatch(#{iqdisc := one_queue, backend := mnesia,
                   plugin_module := mod_event_pusher_push_plugin_defaults,
                   virtual_pubsub_hosts := [], wpool := #{strategy := available_worker},
                   privacy := #{body := keep, sender := keep}},
                 Opts),
    ?assertEqual(#{body => keep, sender => keep}, maps:get(privacy, Opts)).

%% Doc: the configuration of doc/push.md boots with those options.
documented_example_config_boots(_Config) ->
    ok = ep_test_host:boot([ep_test_host:general_toml(),
                            "[modules.mod_event_pusher.push]\n"
                            "  iqdisc.type = \"one_queue\"\n"
                            "  backend = \"mnesia\"\n"
                            "  plugin_module = \"mod_event_pusher_push_plugin_defaults\"\n"
                            "  virtual_pubsub_hosts = [\"virtual.@HOST@\", \"push.example.com\"]\n"
                            "  [modules.mod_event_pusher.push.wpool]\n"
                            "    workers = 100\n"
                            "    strategy = \"available_worker\"\n"]),
    ?assertMatch(#{iqdisc := one_queue, wpool := #{workers := 100, strategy := available_worker},
                   virtual_pubsub_hosts := [_, _]},
                 gen_mod:get_module_opts(?HT, mod_event_pusher_push)).

%% Doc: an FQDN and `<prefix>.@HOST@' are accepted; `sub@HOST@' and
%% `x.@HOST@.y' are rejected at parse time.
virtual_pubsub_host_templates_are_validated(_Config) ->
    ok = ep_test_host:boot(push_toml("  virtual_pubsub_hosts = [\"pubsub.@HOST@\", "
                                     "\"push.example.com\"]\n")),
    ?assertMatch([_, _], gen_mod:get_module_opt(?HT, mod_event_pusher_push,
                                                virtual_pubsub_hosts)),
    ep_test_host:shutdown(),
    [?assertError({config_error, _, _},
                  ep_test_host:boot(push_toml(["  virtual_pubsub_hosts = [\"", Bad, "\"]\n"])))
     || Bad <- ["sub@HOST@", "x.@HOST@.y"]].

%% Doc: backend = "rdbms" without an [outgoing_pools.rdbms.default] pool
%% fails the start with an error that names the missing pool (with a pool,
%% mod_event_pusher_push_rdbms_SUITE).
rdbms_backend_without_a_pool_fails_start_with_a_clear_error(_Config) ->
    try ep_test_host:boot(push_toml("  backend = \"rdbms\"\n")) of
        ok -> ct:fail(rdbms_backend_started)
    catch
        _:Reason ->
            Text = iolist_to_binary(io_lib:format("~p", [Reason])),
            ?assertNotEqual(nomatch, binary:match(Text, <<"push_rdbms_pool_missing">>)),
            ?assertNotEqual(nomatch, binary:match(Text, <<"[outgoing_pools.rdbms.default]">>))
    end.

%% Doc: the four outcome events are declared for the host type.
instrumentation_events_are_declared(_Config) ->
    Declared = instrument_helper:declared_events(mod_event_pusher_push, [?HT]),
    ?assertEqual(lists:sort([{E, ?LABELS} || E <- outcome_events()]), lists:sort(Declared)).

%% Doc: a node without the table gets MongooseIM's: a bag of
%% push_subscription records with MongooseIM's fields.
table_is_created_with_mongooseim_record_shape(_Config) ->
    _ = mnesia:delete_table(push_subscription),
    ok = ep_test_host:boot(push_toml("")),
    ?assertEqual([user_jid, pubsub_jid, pubsub_node, form],
                 mnesia:table_info(push_subscription, attributes)),
    ?assertEqual(bag, mnesia:table_info(push_subscription, type)),
    ?assertEqual(push_subscription, mnesia:table_info(push_subscription, record_name)).

%%====================================================================
%% iq
%%====================================================================

%% Doc: an IQ get in urn:xmpp:push:0 is answered not-allowed.
get_is_not_allowed(_Config) ->
    SID = login(?ALICE),
    Reply = iq(?ALICE, SID, <<"get">>, enable_el(?PUBSUB, <<"n1">>, [])),
    ?assertEqual(<<"not-allowed">>, error_condition(Reply)).

%% Doc: every malformed enable is answered bad-request and stores nothing.
enable_bad_requests_are_rejected(_Config) ->
    SID = login(?ALICE),
    PubOpts = <<"http://jabber.org/protocol/pubsub#publish-options">>,
    Bad = [{no_jid, #xmlel{name = <<"enable">>, attrs = #{<<"xmlns">> => ?NS_PUSH,
                                                         <<"node">> => <<"n">>}}},
           {invalid_jid, enable_el(<<"@@">>, <<"n">>, [])},
           {no_node, #xmlel{name = <<"enable">>, attrs = #{<<"xmlns">> => ?NS_PUSH,
                                                          <<"jid">> => ?PUBSUB}}},
           {empty_node, enable_el(?PUBSUB, <<>>, [])},
           {form_not_submit, enable_el(?PUBSUB, <<"n">>,
                                       [form_el(<<"form">>, PubOpts, [{<<"a">>, [<<"1">>]}])])},
           {wrong_form_type, enable_el(?PUBSUB, <<"n">>,
                                       [form_el(<<"submit">>, <<"urn:other">>,
                                                [{<<"a">>, [<<"1">>]}])])},
           {multi_valued_field, enable_el(?PUBSUB, <<"n">>,
                                          [form_el(<<"submit">>, PubOpts,
                                                   [{<<"a">>, [<<"1">>, <<"2">>]}])])}],
    Results = [{Name, error_condition(iq(?ALICE, SID, <<"set">>, El))} || {Name, El} <- Bad],
    ?assertEqual([{Name, <<"bad-request">>} || {Name, _} <- Bad], Results),
    ?assertEqual({ok, []}, services(?ALICE)).

%% Doc: disable needs a valid JID; a node, if given, must not be empty.
disable_bad_requests_are_rejected(_Config) ->
    SID = login(?ALICE),
    Bad = [{no_jid, #xmlel{name = <<"disable">>, attrs = #{<<"xmlns">> => ?NS_PUSH}}},
           {invalid_jid, disable_el(<<"@@">>, undefined)},
           {empty_node, disable_el(?PUBSUB, <<>>)}],
    Results = [{Name, error_condition(iq(?ALICE, SID, <<"set">>, El))} || {Name, El} <- Bad],
    ?assertEqual([{Name, <<"bad-request">>} || {Name, _} <- Bad], Results).

%% Doc: enable without a form stores the bare pubsub JID, the node and an
%% empty form, puts the service in the session info and answers result.
enable_without_form_is_stored(_Config) ->
    SID = login(?ALICE),
    Reply = iq(?ALICE, SID, <<"set">>, enable_el(<<"pubsub.localhost/res">>, <<"n1">>, [])),
    ?assertEqual(<<"result">>, exml_query:attr(Reply, <<"type">>)),
    ?assertEqual([], Reply#xmlel.children),
    Expected = {jid:from_binary(?PUBSUB), <<"n1">>, #{}},
    ?assertEqual({ok, [Expected]}, services(?ALICE)),
    ?assertEqual({ok, Expected}, ejabberd_sm:get_info(jid:from_binary(?ALICE), publish_service)).

%% Doc: the fields of a publish-options form are stored with the node.
enable_with_form_is_stored(_Config) ->
    SID = login(?ALICE),
    Form = #{<<"secret">> => <<"s3cr3t">>, <<"endpoint">> => <<"https://push/x">>},
    ok = enable(?ALICE, SID, ?PUBSUB, <<"n1">>, Form),
    ?assertEqual({ok, [{jid:from_binary(?PUBSUB), <<"n1">>, Form}]}, services(?ALICE)).

%% Doc: enabling the same service and node again replaces the entry.
enable_again_replaces_the_same_node(_Config) ->
    SID = login(?ALICE),
    ok = enable(?ALICE, SID, ?PUBSUB, <<"n1">>, #{<<"k">> => <<"1">>}),
    ok = enable(?ALICE, SID, ?PUBSUB, <<"n1">>, #{<<"k">> => <<"2">>}),
    ?assertEqual({ok, [{jid:from_binary(?PUBSUB), <<"n1">>, #{<<"k">> => <<"2">>}}]},
                 services(?ALICE)).

%% Doc: disable with a node removes that node only.
disable_one_node_keeps_the_others(_Config) ->
    SID = login(?ALICE),
    ok = enable(?ALICE, SID, ?PUBSUB, <<"n1">>, #{}),
    ok = enable(?ALICE, SID, ?PUBSUB, <<"n2">>, #{}),
    ok = disable(?ALICE, SID, ?PUBSUB, <<"n1">>),
    ?assertEqual({ok, [{jid:from_binary(?PUBSUB), <<"n2">>, #{}}]}, services(?ALICE)).

%% Doc: disable without a node removes every node of that service only.
disable_without_node_removes_every_node_of_the_service(_Config) ->
    SID = login(?ALICE),
    Other = <<"other.localhost">>,
    ok = enable(?ALICE, SID, ?PUBSUB, <<"n1">>, #{}),
    ok = enable(?ALICE, SID, ?PUBSUB, <<"n2">>, #{}),
    ok = enable(?ALICE, SID, Other, <<"n3">>, #{}),
    ok = disable(?ALICE, SID, ?PUBSUB, undefined),
    ?assertEqual({ok, [{jid:from_binary(Other), <<"n3">>, #{}}]}, services(?ALICE)).

%% Doc: disable removes the service from the info of every session of the
%% user (this one and another), and leaves other services there.
session_info_is_updated_in_this_and_other_sessions(_Config) ->
    Phone = <<"alice@localhost/phone">>,
    Laptop = <<"alice@localhost/laptop">>,
    PhoneSID = login(Phone),
    LaptopSID = login(Laptop),
    ok = enable(Phone, PhoneSID, ?PUBSUB, <<"n1">>, #{}),
    ok = enable(Laptop, LaptopSID, ?PUBSUB, <<"n2">>, #{}),
    ?assertMatch({ok, {_, <<"n1">>, _}}, session_info(Phone)),
    ?assertMatch({ok, {_, <<"n2">>, _}}, session_info(Laptop)),
    ok = disable(Phone, PhoneSID, ?PUBSUB, <<"n2">>),
    ?assertMatch({ok, {_, <<"n1">>, _}}, session_info(Phone)),
    ?assertEqual({error, not_set}, session_info(Laptop)),
    ok = disable(Laptop, LaptopSID, ?PUBSUB, undefined),
    ?assertEqual({error, not_set}, session_info(Phone)).

%%====================================================================
%% publish
%%====================================================================

%% Doc: a chat message to an offline user who enabled push makes one pubsub
%% publish IQ from the recipient's domain to the service: the node, an item
%% with the summary form (message-count from the unread-count hook, the
%% sender's bare JID, the body), fields in this order; no publish-options
%% when the enable form was empty.
offline_chat_message_publishes_exact_iq(Config) ->
    add_unread_count_handler(7),
    enable_offline(?BOB, ?PUBSUB, <<"bob-node">>, #{}),
    deliver(<<"Alice@Localhost/Phone">>, ?BOB, <<"chat">>, <<"Hi Bob">>),
    [{From, To, IQ}] = ep_pubsub:wait_for_publishes(?config(pubsub, Config), 1, ?WAIT_MS),
    ?assertEqual(<<"localhost">>, jid:to_binary(From)),
    ?assertEqual(?PUBSUB, jid:to_binary(To)),
    ?assertEqual(<<"set">>, exml_query:attr(IQ, <<"type">>)),
    Publish = exml_query:path(IQ, [{element_with_ns, <<"pubsub">>, ?NS_PUBSUB},
                                   {element, <<"publish">>}]),
    ?assertEqual(<<"bob-node">>, exml_query:attr(Publish, <<"node">>)),
    Form = exml_query:path(Publish, [{element, <<"item">>},
                                     {element_with_ns, <<"notification">>, ?NS_PUSH},
                                     {element_with_ns, <<"x">>, ?NS_XDATA}]),
    ?assertEqual(<<"submit">>, exml_query:attr(Form, <<"type">>)),
    ?assertEqual([{<<"FORM_TYPE">>, [<<"urn:xmpp:push:summary">>]},
                  {<<"message-count">>, [<<"7">>]},
                  {<<"last-message-sender">>, [<<"alice@localhost">>]},
                  {<<"last-message-body">>, [<<"Hi Bob">>]}],
                 form_fields(Form)),
    ?assertEqual(undefined, exml_query:path(IQ, [{element, <<"pubsub">>},
                                                 {element, <<"publish-options">>}])),
    wait_count(mod_event_pusher_push_published, 1).

%% Doc: for groupchat the sender is the occupant's full JID, prepared as
%% jid:to_lower/1 does (user and server lowercased, the nick kept); without an unread-count handler message-count is 1.
groupchat_sender_is_the_occupant_full_jid(Config) ->
    enable_offline(?BOB, ?PUBSUB, <<"n">>, #{}),
    deliver(<<"Room@muc.localhost/Nick">>, ?BOB, <<"groupchat">>, <<"hello room">>),
    [{_, _, IQ}] = ep_pubsub:wait_for_publishes(?config(pubsub, Config), 1, ?WAIT_MS),
    Fields = summary_fields(IQ),
    ?assertEqual([<<"room@muc.localhost/Nick">>],
                 proplists:get_value(<<"last-message-sender">>, Fields)),
    ?assertEqual([<<"1">>], proplists:get_value(<<"message-count">>, Fields)).

%% Doc: the enable form travels as publish-options (a submit form of the
%% pubsub#publish-options type).
publish_options_carry_the_enable_form(Config) ->
    Form = #{<<"secret">> => <<"abc">>},
    enable_offline(?BOB, ?PUBSUB, <<"n">>, Form),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"x">>),
    [{_, _, IQ}] = ep_pubsub:wait_for_publishes(?config(pubsub, Config), 1, ?WAIT_MS),
    Options = exml_query:path(IQ, [{element, <<"pubsub">>}, {element, <<"publish-options">>},
                                   {element_with_ns, <<"x">>, ?NS_XDATA}]),
    ?assertEqual(<<"submit">>, exml_query:attr(Options, <<"type">>)),
    ?assertEqual([{<<"FORM_TYPE">>, [?NS_PUBSUB_PUB_OPTIONS]}, {<<"secret">>, [<<"abc">>]}],
                 form_fields(Options)).

%% Doc: a user who never enabled push gets no notification.
nothing_is_published_when_not_enabled(Config) ->
    deliver(?ALICE, ?BOB, <<"chat">>, <<"x">>),
    assert_no_publish(Config).

%% Doc: a recipient with an available session is not notified.
nothing_is_published_when_recipient_is_online(Config) ->
    SID = login(?BOB_PHONE),
    ok = enable(?BOB_PHONE, SID, ?PUBSUB, <<"n">>, #{}),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"x">>),
    assert_no_publish(Config).

%% Doc: after disable the node gets nothing.
nothing_is_published_after_disable(Config) ->
    SID = login(?BOB_PHONE),
    ok = enable(?BOB_PHONE, SID, ?PUBSUB, <<"n">>, #{}),
    ok = disable(?BOB_PHONE, SID, ?PUBSUB, <<"n">>),
    logout(?BOB_PHONE, SID),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"x">>),
    assert_no_publish(Config).

%% Doc: remove_user drops the user's subscriptions.
nothing_is_published_after_user_removal(Config) ->
    enable_offline(?BOB, ?PUBSUB, <<"n">>, #{}),
    ok = ejabberd_auth:remove_user(jid:from_binary(?BOB)),
    ?assertEqual({ok, []}, services(?BOB)),
    ok = ejabberd_auth:set_users(all),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"x">>),
    assert_no_publish(Config).

%% Doc: remove_domain drops every subscription of the domain's users, and
%% only those.
nothing_is_published_after_domain_removal(Config) ->
    enable_offline(?BOB, ?PUBSUB, <<"n">>, #{}),
    Other = jid:from_binary(<<"carol@other.example">>),
    ok = mod_event_pusher_push_backend:enable(?HT, Other, jid:from_binary(?PUBSUB), <<"n">>, #{}),
    _ = mongoose_hooks:remove_domain(?HT, <<"localhost">>),
    ?assertEqual({ok, []}, services(?BOB)),
    ?assertMatch({ok, [_]}, mod_event_pusher_push_backend:get_publish_services(?HT, Other)),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"x">>),
    assert_no_publish(Config).

%% Doc: a message without a body (or an empty one) is skipped and counted.
nothing_is_published_for_a_message_without_body(Config) ->
    enable_offline(?BOB, ?PUBSUB, <<"n">>, #{}),
    deliver(?ALICE, ?BOB, <<"chat">>, undefined),
    deliver(?ALICE, ?BOB, <<"chat">>, <<>>),
    assert_no_publish(Config),
    wait_count(mod_event_pusher_push_skipped, 2).

%% Doc: an error reply of type cancel disables the node (storage) and is
%% counted; the next message publishes nothing.
cancel_error_disables_the_node(Config) ->
    PubSub = ?config(pubsub, Config),
    ok = ep_pubsub:set_reply(PubSub, {error, cancel}),
    enable_offline(?BOB, ?PUBSUB, <<"n">>, #{}),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"x">>),
    [_] = ep_pubsub:wait_for_publishes(PubSub, 1, ?WAIT_MS),
    ok = ep_wait:until(fun() -> services(?BOB) =:= {ok, []} end, ?WAIT_MS),
    wait_count(mod_event_pusher_push_disabled, 1),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"y">>),
    assert_publish_count(Config, 1).

%% Doc: wait and modify errors are counted as failures and keep the node.
wait_and_modify_errors_do_not_disable_the_node(Config) ->
    PubSub = ?config(pubsub, Config),
    enable_offline(?BOB, ?PUBSUB, <<"n">>, #{}),
    ok = ep_pubsub:set_reply(PubSub, {error, wait}),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"1">>),
    [_] = ep_pubsub:wait_for_publishes(PubSub, 1, ?WAIT_MS),
    wait_count(mod_event_pusher_push_failed, 1),
    ok = ep_pubsub:set_reply(PubSub, {error, modify}),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"2">>),
    [_, _] = ep_pubsub:wait_for_publishes(PubSub, 2, ?WAIT_MS),
    wait_count(mod_event_pusher_push_failed, 2),
    ?assertMatch({ok, [_]}, services(?BOB)),
    ?assertEqual(0, count(mod_event_pusher_push_disabled)).

%% Doc: a publish left unanswered times out (here after 300 ms), is
%% counted as a failure and keeps the node.
timeout_does_not_disable_the_node(Config) ->
    PubSub = ?config(pubsub, Config),
    ok = ep_pubsub:set_reply(PubSub, no_reply),
    enable_offline(?BOB, ?PUBSUB, <<"n">>, #{}),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"x">>),
    [_] = ep_pubsub:wait_for_publishes(PubSub, 1, ?WAIT_MS),
    wait_count(mod_event_pusher_push_failed, 1),
    [#{reason := timeout}] = mongoose_instrument:recorded(mod_event_pusher_push_failed, ?LABELS),
    ?assertMatch({ok, [_]}, services(?BOB)).

%% Doc: the hook returns while the service has not answered, and the IQ
%% was routed by another process (a pool worker), not the user's.
hook_returns_before_the_service_replies(Config) ->
    PubSub = ?config(pubsub, Config),
    ok = ep_pubsub:set_reply(PubSub, no_reply),
    enable_offline(?BOB, ?PUBSUB, <<"n">>, #{}),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"x">>),
    %% deliver/4 returned; nothing has been answered yet.
    ?assertEqual(0, count(mod_event_pusher_push_published)),
    [_] = ep_pubsub:wait_for_publishes(PubSub, 1, ?WAIT_MS),
    [Router] = ep_pubsub:routing_pids(PubSub),
    ?assertNotEqual(self(), Router).

%% Doc: when a second hook sees the same stanza (same accumulator), the
%% service notified by the first is not notified again.
one_notification_per_message_when_several_hooks_see_it(Config) ->
    enable_offline(?BOB, ?PUBSUB, <<"n">>, #{}),
    Alice = jid:from_binary(?ALICE),
    Bob = jid:from_binary(?BOB),
    {ok, {_, _, Acc1, Packet}} =
        ep_test_host:filter_local_packet(Alice, Bob, ep_test_host:message(Bob, <<"chat">>, <<"x">>)),
    {ok, _} = gen_hook:run_fold(filter_local_packet, ?HT, {Alice, Bob, Acc1, Packet}, #{}),
    [_] = ep_pubsub:wait_for_publishes(?config(pubsub, Config), 1, ?WAIT_MS),
    assert_publish_count(Config, 1).

%% Doc: records written in MongooseIM's shape (an existing table) are read.
subscriptions_in_mongooseim_record_shape_are_read(Config) ->
    _ = mnesia:delete_table(push_subscription),
    {atomic, ok} = mnesia:create_table(push_subscription,
                                       [{disc_copies, [node()]}, {type, bag},
                                        {attributes, [user_jid, pubsub_jid, pubsub_node, form]}]),
    Record = {push_subscription, {<<"bob">>, <<"localhost">>}, jid:from_binary(?PUBSUB),
              <<"legacy-node">>, #{<<"secret">> => <<"old">>}},
    ok = mnesia:dirty_write(Record),
    ok = ep_test_host:boot(push_toml("")),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"x">>),
    [{_, _, IQ}] = ep_pubsub:wait_for_publishes(?config(pubsub, Config), 1, ?WAIT_MS),
    ?assertEqual(<<"legacy-node">>,
                 exml_query:path(IQ, [{element, <<"pubsub">>}, {element, <<"publish">>},
                                      {attr, <<"node">>}])).

%%====================================================================
%% plugins
%%====================================================================

%% Doc: with the enhanced plugin, a message left unacknowledged by a session
%% in resume state notifies the service that session enabled, at once
%% (the session is still there, so the defaults would not notify).
enhanced_plugin_notifies_unacknowledged_message_at_once(Config) ->
    SID = login(?BOB_PHONE),
    ok = enable(?BOB_PHONE, SID, ?PUBSUB, <<"n">>, #{}),
    Message = ep_test_host:with_from_to(
                ep_test_host:message(jid:from_binary(?BOB), <<"chat">>, <<"are you there">>),
                jid:from_binary(?ALICE), jid:from_binary(?BOB_PHONE)),
    {ok, _} = ep_test_host:unacknowledged_message(jid:from_binary(?BOB_PHONE), Message),
    [{_, _, IQ}] = ep_pubsub:wait_for_publishes(?config(pubsub, Config), 1, ?WAIT_MS),
    ?assertEqual([<<"are you there">>],
                 proplists:get_value(<<"last-message-body">>, summary_fields(IQ))).

%% Doc: the enhanced plugin's should_publish is asked even when the store
%% holds nothing for the user (as in MongooseIM): the service in the
%% session is notified. remove_user clears the store, not the sessions.
enhanced_plugin_notifies_the_session_service_with_nothing_stored(Config) ->
    SID = login(?BOB_PHONE),
    ok = enable(?BOB_PHONE, SID, ?PUBSUB, <<"n">>, #{}),
    ok = ejabberd_auth:remove_user(jid:from_binary(?BOB)),
    ok = ejabberd_auth:set_users(all),
    ?assertEqual({ok, []}, services(?BOB)),
    Message = ep_test_host:with_from_to(
                ep_test_host:message(jid:from_binary(?BOB), <<"chat">>, <<"still there?">>),
                jid:from_binary(?ALICE), jid:from_binary(?BOB_PHONE)),
    {ok, _} = ep_test_host:unacknowledged_message(jid:from_binary(?BOB_PHONE), Message),
    [{_, _, IQ}] = ep_pubsub:wait_for_publishes(?config(pubsub, Config), 1, ?WAIT_MS),
    ?assertEqual([<<"still there?">>],
                 proplists:get_value(<<"last-message-body">>, summary_fields(IQ))).

%% Doc: only chat and groupchat messages name a sender: an unacknowledged
%% headline notifies nobody (MongooseIM's handler fails on it).
unacknowledged_headline_is_not_notified(Config) ->
    SID = login(?BOB_PHONE),
    ok = enable(?BOB_PHONE, SID, ?PUBSUB, <<"n">>, #{}),
    Message = ep_test_host:with_from_to(
                ep_test_host:message(jid:from_binary(?BOB), <<"headline">>, <<"news">>),
                jid:from_binary(?ALICE), jid:from_binary(?BOB_PHONE)),
    {ok, _} = ep_test_host:unacknowledged_message(jid:from_binary(?BOB_PHONE), Message),
    assert_no_publish(Config).

%% Doc: the hints plugin skips a message with a no-store hint.
hints_plugin_skips_no_store(Config) ->
    enable_offline(?BOB, ?PUBSUB, <<"n">>, #{}),
    Bob = jid:from_binary(?BOB),
    NoStore = #xmlel{name = <<"no-store">>, attrs = #{<<"xmlns">> => ?NS_HINTS}},
    {ok, _} = ep_test_host:filter_local_packet(jid:from_binary(?ALICE), Bob,
                                               ep_test_host:message(Bob, <<"chat">>, <<"x">>,
                                                                    [NoStore])),
    assert_no_publish(Config).

%% Doc: a bodiless message with a store hint and a Jingle Message element
%% notifies with the sender, the Jingle action and the session id.
hints_plugin_notifies_jingle_call(Config) ->
    enable_offline(?BOB, ?PUBSUB, <<"n">>, #{}),
    Bob = jid:from_binary(?BOB),
    Store = #xmlel{name = <<"store">>, attrs = #{<<"xmlns">> => ?NS_HINTS}},
    Propose = #xmlel{name = <<"propose">>, attrs = #{<<"xmlns">> => <<"urn:xmpp:jingle-message:0">>,
                                                     <<"id">> => <<"call-1">>}},
    {ok, _} = ep_test_host:filter_local_packet(jid:from_binary(<<"Alice@localhost/phone">>), Bob,
                                               ep_test_host:message(Bob, <<"chat">>, undefined,
                                                                    [Propose, Store])),
    [{_, _, IQ}] = ep_pubsub:wait_for_publishes(?config(pubsub, Config), 1, ?WAIT_MS),
    ?assertEqual([{<<"message-sender">>, [<<"alice@localhost">>]},
                  {<<"jingle-message">>, [<<"propose">>]},
                  {<<"jingle-session-id">>, [<<"call-1">>]}],
                 summary_fields(IQ)).

%% Doc: a plugin exporting only should_publish/3 is used for it; the
%% defaults prepare and publish (here: an online recipient is notified).
custom_plugin_with_only_should_publish(Config) ->
    SID = login(?BOB_PHONE),
    ok = enable(?BOB_PHONE, SID, ?PUBSUB, <<"n">>, #{}),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"hi">>),
    [{_, _, IQ}] = ep_pubsub:wait_for_publishes(?config(pubsub, Config), 1, ?WAIT_MS),
    ?assertEqual([<<"hi">>], proplists:get_value(<<"last-message-body">>, summary_fields(IQ))).

%%====================================================================
%% virtual pubsub hosts
%%====================================================================

%% Doc: for a service on a virtual pubsub host no IQ is routed; the
%% push_notifications hook runs with the summary form and the enable form.
virtual_pubsub_host_runs_push_notifications_hook(Config) ->
    add_push_notifications_handler(ok),
    Form = #{<<"service">> => <<"apns">>, <<"device_id">> => <<"d1">>},
    enable_offline(?BOB, <<"virtual.localhost">>, <<"n">>, Form),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"hey">>),
    receive
        {push_notifications, HostType, Acc, Params} ->
            ?assertEqual(?HT, HostType),
            ?assertEqual(<<"virtual.localhost">>,
                         jid:to_binary(mongoose_acc:get(push_notifications, pubsub_jid, Acc))),
            ?assertEqual(#{options => Form,
                           notification_forms => [#{<<"message-count">> => <<"1">>,
                                                    <<"last-message-sender">> => <<"alice@localhost">>,
                                                    <<"last-message-body">> => <<"hey">>}]},
                         maps:with([options, notification_forms], Params))
    after ?WAIT_MS ->
            ct:fail(push_notifications_not_run)
    end,
    assert_no_publish(Config),
    ?assertMatch({ok, [_]}, services(?BOB)).

%% Doc: {error, device_not_registered} from the hook disables the node.
device_not_registered_disables_the_node(_Config) ->
    add_push_notifications_handler({error, device_not_registered}),
    enable_offline(?BOB, <<"push.example.com">>, <<"n">>, #{}),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"hey">>),
    ok = ep_wait:until(fun() -> services(?BOB) =:= {ok, []} end, ?WAIT_MS),
    wait_count(mod_event_pusher_push_disabled, 1).

%%====================================================================
%% privacy options (ours)
%%====================================================================

%% Doc: body and sender omitted: the summary form holds the message count
%% only; the enable form still travels as publish-options.
privacy_omit_leaves_body_and_sender_out_of_the_publish_iq(Config) ->
    enable_offline(?BOB, ?PUBSUB, <<"n">>, #{<<"secret">> => <<"abc">>}),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"secret plans">>),
    [{_, _, IQ}] = ep_pubsub:wait_for_publishes(?config(pubsub, Config), 1, ?WAIT_MS),
    ?assertEqual([{<<"message-count">>, [<<"1">>]}], summary_fields(IQ)),
    ?assertNotEqual(undefined, exml_query:path(IQ, [{element, <<"pubsub">>},
                                                    {element, <<"publish-options">>}])).

%% Doc: body replaced: the fixed text stands in the body, the sender stays.
privacy_replace_puts_the_fixed_text_in_the_publish_iq(Config) ->
    enable_offline(?BOB, ?PUBSUB, <<"n">>, #{}),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"secret plans">>),
    [{_, _, IQ}] = ep_pubsub:wait_for_publishes(?config(pubsub, Config), 1, ?WAIT_MS),
    ?assertEqual([{<<"message-count">>, [<<"1">>]},
                  {<<"last-message-sender">>, [<<"alice@localhost">>]},
                  {<<"last-message-body">>, [<<"New message">>]}],
                 summary_fields(IQ)).

%% Doc: the push_notifications hook (a virtual pubsub host, e.g.
%% MongoosePush) gets the same redacted fields.
privacy_applies_to_the_push_notifications_hook(_Config) ->
    add_push_notifications_handler(ok),
    enable_offline(?BOB, <<"virtual.localhost">>, <<"n">>, #{}),
    deliver(?ALICE, ?BOB, <<"chat">>, <<"secret plans">>),
    receive
        {push_notifications, _HostType, _Acc, #{notification_forms := Forms}} ->
            ?assertEqual([#{<<"message-count">> => <<"1">>,
                            <<"last-message-body">> => <<"You have a message">>}], Forms)
    after ?WAIT_MS ->
            ct:fail(push_notifications_not_run)
    end.

%% Doc: sender omitted also leaves out the hints plugin's `message-sender'
%% of a Jingle call notification.
privacy_omit_sender_leaves_out_the_jingle_sender(Config) ->
    enable_offline(?BOB, ?PUBSUB, <<"n">>, #{}),
    Propose = #xmlel{name = <<"propose">>,
                     attrs = #{<<"xmlns">> => <<"urn:xmpp:jingle-message:0">>,
                               <<"id">> => <<"call-1">>}},
    Store = #xmlel{name = <<"store">>, attrs = #{<<"xmlns">> => <<"urn:xmpp:hints">>}},
    Bob = jid:from_binary(?BOB),
    {ok, _} = ep_test_host:filter_local_packet(jid:from_binary(?ALICE), Bob,
                                               ep_test_host:message(Bob, <<"chat">>, undefined,
                                                                    [Propose, Store])),
    [{_, _, IQ}] = ep_pubsub:wait_for_publishes(?config(pubsub, Config), 1, ?WAIT_MS),
    ?assertEqual([{<<"jingle-message">>, [<<"propose">>]},
                  {<<"jingle-session-id">>, [<<"call-1">>]}],
                 summary_fields(IQ)).

%% Doc: bad privacy values are rejected at parse time, naming the option.
privacy_options_are_validated(_Config) ->
    Error = fun(Lines) ->
                    try ep_test_host:boot(push_toml(privacy_toml(Lines))) of
                        ok -> ct:fail({accepted, Lines})
                    catch
                        error:{config_error, _, [#{toml_path := Path} | _]} -> Path
                    end
            end,
    Section = "modules.mod_event_pusher.push.privacy",
    ?assertEqual(Section ++ ".body", Error("  body = \"hide\"\n")),
    ?assertEqual(Section ++ ".sender", Error("  sender = \"replace\"\n")),
    ?assertEqual(Section ++ ".body_text", Error("  body = \"replace\"\n  body_text = \"\"\n")),
    ?assertEqual(Section, Error("  body = \"replace\"\n")),
    ?assertEqual(Section, Error("  body_text = \"x\"\n")),
    ?assertEqual(Section, Error("  colour = \"red\"\n")).

%%====================================================================
%% Hook handlers
%%====================================================================

-spec unread_count_handler(mongoose_acc:t(), map(), map()) -> {ok, mongoose_acc:t()}.
unread_count_handler(Acc, _Params, #{count := Count}) ->
    {ok, mongoose_acc:set(inbox, unread_count, Count, Acc)}.

-spec push_notifications_handler(term(), map(), map()) -> {ok, term()}.
push_notifications_handler(Acc, Params, #{pid := Pid, result := Result, host_type := HT}) ->
    Pid ! {push_notifications, HT, Acc, Params},
    {ok, Result}.

add_unread_count_handler(Count) ->
    add_handlers([{inbox_unread_count, ?HT, fun ?MODULE:unread_count_handler/3,
                   #{count => Count}, 50}]).

add_push_notifications_handler(Result) ->
    add_handlers([{push_notifications, ?HT, fun ?MODULE:push_notifications_handler/3,
                   #{pid => self(), result => Result}, 50}]).

add_handlers(Handlers) ->
    persistent_term:put({?MODULE, handlers}, Handlers),
    ok = gen_hook:add_handlers(Handlers),
    _ = gen_hook:reload_hooks(),
    ok.

test_handlers() ->
    persistent_term:get({?MODULE, handlers}, []).

%%====================================================================
%% Helpers: sessions and IQs
%%====================================================================

%% An available session (priority 0) of FullJID; the case process stands
%% for its c2s and receives what is routed to it.
login(FullJID) ->
    JID = jid:from_binary(FullJID),
    SID = ejabberd_sm:make_new_sid(),
    _ = ejabberd_sm:open_session(?HT, SID, JID, 0, #{}),
    put(sessions, [{JID, SID} | get_sessions()]),
    SID.

logout(FullJID, SID) ->
    JID = jid:from_binary(FullJID),
    _ = ejabberd_sm:close_session(new_acc(JID, JID, undefined), SID, JID, normal, #{}),
    put(sessions, get_sessions() -- [{JID, SID}]),
    ok.

get_sessions() ->
    case get(sessions) of
        undefined -> [];
        L -> L
    end.

close_sessions() ->
    [catch ejabberd_sm:close_session(new_acc(JID, JID, undefined), SID, JID, normal, #{})
     || {JID, SID} <- get_sessions()],
    erase(sessions),
    ok.

%% Enables the node for User from a short-lived session, then closes it:
%% the user is offline afterwards.
enable_offline(User, PubSub, Node, Form) ->
    Full = <<User/binary, "/setup">>,
    SID = login(Full),
    ok = enable(Full, SID, PubSub, Node, Form),
    logout(Full, SID).

enable(User, SID, PubSub, Node, Form) ->
    Fields = [{K, [V]} || {K, V} <- maps:to_list(Form)],
    Forms = case Fields of
                [] -> [];
                _ -> [form_el(<<"submit">>, ?NS_PUBSUB_PUB_OPTIONS, Fields)]
            end,
    expect_result(iq(User, SID, <<"set">>, enable_el(PubSub, Node, Forms))).

disable(User, SID, PubSub, Node) ->
    expect_result(iq(User, SID, <<"set">>, disable_el(PubSub, Node))).

expect_result(Reply) ->
    case exml_query:attr(Reply, <<"type">>) of
        <<"result">> -> ok;
        _ -> {unexpected_reply, Reply}
    end.

%% Sends the IQ from the user's session to the user's bare JID, as a
%% client does, and returns the reply routed back to the session.
iq(FullJID, SID, Type, SubEl) ->
    From = jid:from_binary(FullJID),
    To = jid:to_bare(From),
    Id = integer_to_binary(erlang:unique_integer([positive])),
    El = #xmlel{name = <<"iq">>, attrs = #{<<"type">> => Type, <<"id">> => Id,
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

enable_el(PubSub, Node, Children) ->
    #xmlel{name = <<"enable">>,
           attrs = #{<<"xmlns">> => ?NS_PUSH, <<"jid">> => PubSub, <<"node">> => Node},
           children = Children}.

disable_el(PubSub, undefined) ->
    #xmlel{name = <<"disable">>, attrs = #{<<"xmlns">> => ?NS_PUSH, <<"jid">> => PubSub}};
disable_el(PubSub, Node) ->
    #xmlel{name = <<"disable">>,
           attrs = #{<<"xmlns">> => ?NS_PUSH, <<"jid">> => PubSub, <<"node">> => Node}}.

form_el(Type, FormType, Fields) ->
    #xmlel{name = <<"x">>, attrs = #{<<"xmlns">> => ?NS_XDATA, <<"type">> => Type},
           children = [field_el(<<"FORM_TYPE">>, [FormType], <<"hidden">>)
                       | [field_el(Var, Values, undefined) || {Var, Values} <- Fields]]}.

field_el(Var, Values, Type) ->
    Attrs = case Type of
                undefined -> #{<<"var">> => Var};
                _ -> #{<<"var">> => Var, <<"type">> => Type}
            end,
    #xmlel{name = <<"field">>, attrs = Attrs,
           children = [#xmlel{name = <<"value">>, children = [#xmlcdata{content = V}]}
                       || V <- Values]}.

error_condition(Reply) ->
    <<"error">> = exml_query:attr(Reply, <<"type">>),
    Error = exml_query:subelement(Reply, <<"error">>),
    [Condition | _] = [Name || #xmlel{name = Name} <- Error#xmlel.children],
    Condition.

session_info(FullJID) ->
    ejabberd_sm:get_info(jid:from_binary(FullJID), publish_service).

services(User) ->
    mod_event_pusher_push_backend:get_publish_services(?HT, jid:to_bare(jid:from_binary(User))).

%%====================================================================
%% Helpers: messages, publishes, counters
%%====================================================================

%% The router delivers a message of Type from From to the user To (bare).
deliver(From, To, Type, Body) ->
    ToJID = jid:from_binary(To),
    {ok, _} = ep_test_host:filter_local_packet(jid:from_binary(From), ToJID,
                                               ep_test_host:message(ToJID, Type, Body)),
    ok.

form_fields(Form) ->
    [{exml_query:attr(F, <<"var">>), exml_query:paths(F, [{element, <<"value">>}, cdata])}
     || F <- exml_query:subelements(Form, <<"field">>)].

summary_fields(IQ) ->
    Form = exml_query:path(IQ, [{element, <<"pubsub">>}, {element, <<"publish">>},
                                {element, <<"item">>}, {element, <<"notification">>},
                                {element, <<"x">>}]),
    [F || {Var, _} = F <- form_fields(Form), Var =/= <<"FORM_TYPE">>].

assert_no_publish(Config) ->
    assert_publish_count(Config, 0).

%% Nothing more than N publishes arrives while the case watches.
assert_publish_count(Config, N) ->
    PubSub = ?config(pubsub, Config),
    Deadline = erlang:monotonic_time(millisecond) + ?QUIET_MS,
    quiet_loop(PubSub, N, Deadline).

quiet_loop(PubSub, N, Deadline) ->
    ?assertEqual(N, length(ep_pubsub:publishes(PubSub))),
    case erlang:monotonic_time(millisecond) >= Deadline of
        true -> ok;
        false -> receive after 20 -> quiet_loop(PubSub, N, Deadline) end
    end.

outcome_events() ->
    [mod_event_pusher_push_published, mod_event_pusher_push_skipped,
     mod_event_pusher_push_failed, mod_event_pusher_push_disabled].

count(Event) ->
    length(mongoose_instrument:recorded(Event, ?LABELS)).

wait_count(Event, N) ->
    _ = ep_wait:value(fun() -> count(Event) end, N, ?WAIT_MS, #{name => Event}),
    ok.

clear_table() ->
    case lists:member(push_subscription, mnesia:system_info(tables)) of
        true -> {atomic, ok} = mnesia:clear_table(push_subscription), ok;
        false -> ok
    end.
