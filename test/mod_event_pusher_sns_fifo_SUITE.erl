%% @doc mod_event_pusher_sns and FIFO topics (ours, doc/sns.md), against
%% moto with a FIFO SQS queue subscribed to each FIFO topic: SNS's
%% `MessageGroupId' is the user's bare JID and `MessageDeduplicationId' the
%% event's ID, as SQS reports them on the messages it delivers, each user's
%% events in order, with and without batching; a plugin's
%% `event_id_attributes/2' puts the same ID in an attribute of its own.
-module(mod_event_pusher_sns_fifo_SUITE).

-include("ep_suite.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([fifo_topic_gets_bare_jid_groups_and_event_id_deduplication/1,
         fifo_topic_keeps_each_users_order_without_batching/1,
         plugin_puts_the_event_id_in_an_attribute_of_its_own/1,
         a_bad_group_is_badarg_and_leaves_the_pool_working/1]).

-define(WAIT_MS, 10000).

all() ->
    [fifo_topic_gets_bare_jid_groups_and_event_id_deduplication,
     fifo_topic_keeps_each_users_order_without_batching,
     plugin_puts_the_event_id_in_an_attribute_of_its_own,
     a_bad_group_is_badarg_and_leaves_the_pool_working].

init_per_suite(Config) ->
    ok = ep_sns:start(),
    Config.

end_per_suite(_Config) ->
    ep_sns:stop().

init_per_testcase(Case, Config) ->
    Topic = ep_sns:named_topic(["ep-fifo-", integer_to_list(erlang:unique_integer([positive])),
                                "-", os:getpid(), ".fifo"], #{}),
    Extra = case Case of
                fifo_topic_keeps_each_users_order_without_batching ->
                    [{publish_batching, "false"}];
                plugin_puts_the_event_id_in_an_attribute_of_its_own ->
                    [{plugin_module, "\"ep_sns_id_plugin\""}];
                _ ->
                    [{publish_batching, "true"}]
            end,
    ok = ep_test_host:boot([ep_test_host:general_toml(), module_toml(Topic, Extra)]),
    [{topic, Topic} | Config].

end_per_testcase(_Case, Config) ->
    ep_test_host:shutdown(),
    ep_sns:delete_topic(?config(topic, Config)).

module_toml(#{name := Name}, ExtraOpts) ->
    Opts = [{presence_updates_topic, quote(Name)},
            {sns_host, quote(ep_sns:endpoint())},
            {region, quote(ep_sns:region())},
            {access_key_id, quote("AKIDEPSNSFIFO")},
            {secret_access_key, quote("EpSnsFifoSecret")},
            {account_id, quote(ep_sns:account_id())} | ExtraOpts],
    ["[modules.mod_event_pusher.sns]\n",
     [["  ", atom_to_list(K), " = ", V, "\n"] || {K, V} <- Opts]].

quote(S) -> ["\"", S, "\""].

%%====================================================================
%% Cases
%%====================================================================

fifo_topic_gets_bare_jid_groups_and_event_id_deduplication(doc) ->
    ["On a .fifo topic each notification arrives with MessageGroupId = the user's bare "
     "JID and MessageDeduplicationId = a fresh event ID, each user's in order"];
fifo_topic_gets_bare_jid_groups_and_event_id_deduplication(Config) ->
    Got = presence_storm(Config),
    assert_groups_and_order(Got).

fifo_topic_keeps_each_users_order_without_batching(doc) ->
    ["Without batching (one Publish each) a FIFO topic still gets each user's "
     "notifications in order with their IDs"];
fifo_topic_keeps_each_users_order_without_batching(Config) ->
    assert_groups_and_order(presence_storm(Config)).

plugin_puts_the_event_id_in_an_attribute_of_its_own(doc) ->
    ["A plugin exporting event_id_attributes/2 gets the event ID: its attribute carries "
     "the same ID SNS deduplicates by"];
plugin_puts_the_event_id_in_an_attribute_of_its_own(Config) ->
    {ok, _} = ep_test_host:user_available(ep_test_host:jid(<<"alice@localhost/a">>)),
    [#{attributes := Attrs, system := System}] =
        ep_sns:wait_for_messages(?config(topic, Config), 1, ?WAIT_MS),
    #{<<"MessageDeduplicationId">> := Id} = System,
    ?assertEqual(#{<<"event_pusher_id">> => {<<"String">>, <<"ev:", Id/binary>>}}, Attrs).

a_bad_group_is_badarg_and_leaves_the_pool_working(doc) ->
    ["sns_publish with a Group that is not a UTF-8 binary or undefined raises badarg; "
     "a good job on the same pool arrives with its group"];
a_bad_group_is_badarg_and_leaves_the_pool_working(Config) ->
    #{topic_arn := Arn} = ?config(topic, Config),
    Pool = mongoose_event_pusher_pool_hold:pool(sns, <<"localhost">>, pusher_sns),
    Ctx = #{host_type => <<"localhost">>, topic_arn => Arn},
    Job = fun(Group) -> {{mod_event_pusher_sns, Ctx}, Arn, #{n => 1}, #{}, [],
                         mongoose_event_pusher_event_id:new(), Group} end,
    [?assertError(badarg, mongoose_event_pusher_nif:sns_publish(Pool, Job(Group)))
     || Group <- [42, other, <<255, 254>>, "alice"]],
    ok = mongoose_event_pusher_nif:sns_publish(Pool, Job(<<"carol@localhost">>)),
    [#{json := Json, system := System}] =
        ep_sns:wait_for_messages(?config(topic, Config), 1, ?WAIT_MS),
    ?assertEqual(#{<<"n">> => 1}, Json),
    ?assertEqual(<<"carol@localhost">>, maps:get(<<"MessageGroupId">>, System)).

%%====================================================================
%% Helpers
%%====================================================================

%% Alice (two resources, mixed case) and Bob go online and offline,
%% interleaved: 8 notifications; every one read from the queue.
presence_storm(Config) ->
    Steps = [{<<"Alice@LocalHost/a">>, on}, {<<"bob@localhost/b">>, on},
             {<<"alice@localhost/a2">>, off}, {<<"bob@localhost/b">>, off},
             {<<"alice@localhost/a">>, on}, {<<"bob@localhost/b2">>, on},
             {<<"alice@localhost/a">>, off}, {<<"bob@localhost/b">>, off}],
    [step(ep_test_host:jid(J), What) || {J, What} <- Steps],
    ep_sns:wait_for_messages(?config(topic, Config), length(Steps), ?WAIT_MS).

step(Jid, on) -> {ok, _} = ep_test_host:user_available(Jid);
step(Jid, off) -> {ok, _} = ep_test_host:unset_presence(Jid, <<"bye">>).

assert_groups_and_order(Got) ->
    ?assertEqual(8, length(Got)),
    Ids = [maps:get(<<"MessageDeduplicationId">>, S) || #{system := S} <- Got],
    ?assertEqual(8, length(lists:usort(Ids))),
    [?assertEqual(User, maps:get(<<"MessageGroupId">>, System))
     || #{system := System, json := #{<<"user_id">> := User}} <- Got],
    %% UUIDv7 IDs made during this case (not before it, not reused).
    Now = erlang:system_time(millisecond),
    [?assert(Now - mongoose_event_pusher_event_id:unix_ms(Id) < 60000) || Id <- Ids],
    Presence = fun(User) -> [P || #{json := #{<<"user_id">> := U, <<"present">> := P}} <- Got,
                                  U =:= User] end,
    ?assertEqual([true, false, true, false], Presence(<<"alice@localhost">>)),
    ?assertEqual([true, false, true, false], Presence(<<"bob@localhost">>)).
