%% @doc (ours) Webhooks of mod_event_pusher_http (doc/http.md, "Webhooks")
%% against a real HTTP server: events chosen by name, JSON bodies of schema
%% version 1, Standard Webhooks signatures checked by an implementation that
%% is not ours (the `standardwebhooks' package, test/support/ep_webhook_verify.py),
%% the config errors, and that a secret appears in no log, error or stat.
-module(mod_event_pusher_http_webhooks_SUITE).

-include("ep_suite.hrl").

-import(ep_config_check, [general/0, modules/2, the_error/2]).

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([each_event_name_selects_exactly_its_events/1,
         json_body_matches_the_schema_for_every_event_type/1,
         metadata_of_a_push_event_filter_appears_in_the_json_body/1,
         recipient_offline_filter_posts_only_offline_deliveries/1,
         webhook_options_without_events_keep_mongooseim_rule/1,
         form_format_sends_mongooseim_body_for_chosen_events/1,
         one_event_has_one_id_for_every_handler/1]).
-export([signed_request_verifies_with_standardwebhooks/1,
         tampered_body_or_old_timestamp_fails_verification/1,
         two_secrets_give_two_signatures_both_valid/1]).
-export([webhook_options_are_parsed_with_their_defaults/1,
         handler_without_webhook_options_parses_as_in_mongooseim/1,
         unknown_event_name_is_rejected/1,
         callback_module_with_webhook_options_is_rejected/1,
         malformed_secret_is_rejected_without_showing_it/1,
         unreadable_secret_file_is_rejected/1,
         malformed_secret_file_is_rejected_without_showing_it/1,
         signing_entry_needs_exactly_one_of_secret_and_secret_file/1,
         form_format_for_presence_events_is_rejected/1]).
-export([secret_appears_in_no_log_line_error_or_stat/1]).
-export([log/2]).

-define(HANDLERS, "modules.mod_event_pusher.http.handlers").
-define(WAIT_MS, 5000).
-define(METRIC, mod_event_pusher_http_sent).
-define(VERIFY, "ep_webhook_verify.py").
-define(EVENTS, [chat_in, chat_out, groupchat_in, groupchat_out, presence_online,
                 presence_offline, unacknowledged_message]).
%% Fixed test secrets (the secrets case makes its own at run time).
-define(SECRET_A, <<"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw">>).
-define(SECRET_B, <<"whsec_QkVNQ3lLZ0x1dXp5Wm9yVzRzYk1JZk5oc2dxYUJ6SGo=">>).

%%====================================================================
%% Setup
%%====================================================================

all() ->
    [{group, events}, {group, signing}, {group, config}, {group, secrets}].

groups() ->
    [{events, [], [each_event_name_selects_exactly_its_events,
                   json_body_matches_the_schema_for_every_event_type,
                   metadata_of_a_push_event_filter_appears_in_the_json_body,
                   recipient_offline_filter_posts_only_offline_deliveries,
                   webhook_options_without_events_keep_mongooseim_rule,
                   form_format_sends_mongooseim_body_for_chosen_events,
                   one_event_has_one_id_for_every_handler]},
     {signing, [], [signed_request_verifies_with_standardwebhooks,
                    tampered_body_or_old_timestamp_fails_verification,
                    two_secrets_give_two_signatures_both_valid]},
     {config, [parallel], [webhook_options_are_parsed_with_their_defaults,
                           handler_without_webhook_options_parses_as_in_mongooseim,
                           unknown_event_name_is_rejected,
                           callback_module_with_webhook_options_is_rejected,
                           malformed_secret_is_rejected_without_showing_it,
                           unreadable_secret_file_is_rejected,
                           malformed_secret_file_is_rejected_without_showing_it,
                           signing_entry_needs_exactly_one_of_secret_and_secret_file,
                           form_format_for_presence_events_is_rejected]},
     {secrets, [], [secret_appears_in_no_log_line_error_or_stat]}].

init_per_suite(Config) ->
    %% The sources, not the build dir: the script is not compiled.
    Suite = proplists:get_value(source, ?MODULE:module_info(compile)),
    Script = find_script(filename:join([filename:dirname(Suite), "support", ?VERIFY])),
    Python = os:getenv("PYTHON", "python3"),
    case os:cmd(Python ++ " -c 'import standardwebhooks' 2>&1 && echo ok") of
        "ok\n" -> ok;
        Out -> ct:fail({standardwebhooks_not_installed, Out})
    end,
    [{verify_cmd, Python ++ " " ++ Script} | Config].

end_per_suite(_Config) ->
    ok.

init_per_testcase(Case, Config) ->
    case setup(Case) of
        no_node ->
            Config;
        HandlersToml ->
            {ok, Sink} = ep_http_sink:start(),
            ok = start_log_capture(),
            Toml = [ep_test_host:general_toml(), pool_toml(Sink),
                    "[modules.mod_event_pusher.http]\n", HandlersToml(Config)],
            ok = ep_test_host:boot(Toml),
            case Case of
                secret_appears_in_no_log_line_error_or_stat ->
                    instrument_helper:start([{?METRIC, labels()}]);
                _ ->
                    ok
            end,
            [{sink, Sink} | Config]
    end.

end_per_testcase(Case, Config) ->
    case ?config(sink, Config) of
        undefined ->
            ok;
        Sink ->
            _ = logger:remove_handler(?MODULE),
            _ = ep_filter_module:remove(ep_test_host:host_type()),
            close_sessions(),
            ep_test_host:shutdown(),
            case Case of
                secret_appears_in_no_log_line_error_or_stat -> instrument_helper:stop();
                _ -> ok
            end,
            ep_http_sink:stop(Sink)
    end.

%% The handlers' TOML of each case that boots a node, as a fun of Config.
setup(each_event_name_selects_exactly_its_events) ->
    fixed([handler([{path, atom_to_list(E)}, {events, [E]}, {format, "json"}]) || E <- ?EVENTS]);
setup(json_body_matches_the_schema_for_every_event_type) ->
    fixed(handler([{path, "all"}, {events, ?EVENTS}, {format, "json"}]));
setup(metadata_of_a_push_event_filter_appears_in_the_json_body) ->
    fixed(handler([{path, "all"}, {events, ?EVENTS}, {format, "json"}]));
setup(recipient_offline_filter_posts_only_offline_deliveries) ->
    fixed(handler([{path, "offline"}, {events, [chat_out]}, {only_if_recipient_offline, true},
                   {format, "json"}]));
setup(webhook_options_without_events_keep_mongooseim_rule) ->
    fixed(handler([{path, "default"}, {format, "json"}]));
setup(form_format_sends_mongooseim_body_for_chosen_events) ->
    fixed(handler([{path, "form"}, {events, [chat_out]}, {format, "form"}]));
setup(one_event_has_one_id_for_every_handler) ->
    fixed([handler([{path, "one"}, {events, [chat_in]}, {format, "json"}]),
           handler([{path, "two"}, {events, [chat_in]}, {format, "json"},
                    {signing, [{secret, ?SECRET_A}]}])]);
setup(Case) when Case =:= signed_request_verifies_with_standardwebhooks;
                 Case =:= tampered_body_or_old_timestamp_fails_verification ->
    fixed(handler([{path, "signed"}, {events, [chat_in]}, {format, "json"},
                   {signing, [{secret, ?SECRET_A}]}]));
setup(two_secrets_give_two_signatures_both_valid) ->
    fun(Config) ->
            File = write_priv(Config, "secret_b", [?SECRET_B, "\n"]),
            handler([{path, "rotated"}, {events, [chat_in]}, {format, "json"},
                     {signing, [{secret, ?SECRET_A}, {secret_file, File}]}])
    end;
setup(secret_appears_in_no_log_line_error_or_stat) ->
    fun(Config) ->
            Secret = secret(Config),
            File = write_priv(Config, "secret_file", Secret),
            [handler([{path, "inline"}, {events, ?EVENTS}, {format, "json"},
                      {signing, [{secret, Secret}]}]),
             handler([{path, "file"}, {events, [chat_in]}, {signing, [{secret_file, File}]}])]
    end;
setup(_ConfigCase) ->
    no_node.

fixed(Toml) ->
    fun(_Config) -> Toml end.

%%====================================================================
%% Events
%%====================================================================

each_event_name_selects_exactly_its_events(doc) ->
    ["Each event name sends exactly its events: one handler per name gets one request, "
     "and messages of other types, without a body, or presence stanzas reach none"];
each_event_name_selects_exactly_its_events(Config) ->
    %% What no event name selects
    Room = ep_test_host:jid(<<"room@muc.localhost">>),
    _ = [{ok, _} = ep_test_host:user_send_message(alice(), ep_test_host:message(bob(), T, B))
         || {T, B} <- [{<<"headline">>, <<"h">>}, {<<"normal">>, <<"n">>}, {undefined, <<"u">>},
                       {<<"chat">>, <<>>}, {<<"chat">>, undefined}, {<<"error">>, <<"e">>}]],
    {ok, _} = ep_test_host:filter_local_packet(alice(), bob(), ep_test_host:presence(undefined)),
    {ok, _} = ep_test_host:user_send_message(alice(), ep_test_host:message(Room, <<"groupchat">>, <<>>)),
    fire_every_event(),
    Requests = all_requests(Config, length(?EVENTS)),
    Got = lists:sort([{Path, maps:get(<<"event">>, json(R))} || R = #{path := Path} <- Requests]),
    ?assertEqual(lists:sort([{<<"/", (atom_to_binary(E))/binary>>, atom_to_binary(E)}
                             || E <- ?EVENTS]), Got).

json_body_matches_the_schema_for_every_event_type(doc) ->
    ["The JSON body of every event type has the documented fields and values (schema 1)"];
json_body_matches_the_schema_for_every_event_type(Config) ->
    Before = os:system_time(millisecond),
    fire_every_event(),
    Requests = all_requests(Config, length(?EVENTS)),
    After = os:system_time(millisecond),
    Alice = <<"alice@localhost/phone">>, Bob = <<"bob@localhost/laptop">>,
    Room = <<"room@muc.localhost">>,
    Expected = #{<<"chat_in">> => {<<"chat">>, <<"in">>, Alice, Bob, <<"hello in">>},
                 <<"chat_out">> => {<<"chat">>, <<"out">>, Alice, Bob, <<"hello out">>},
                 <<"groupchat_in">> => {<<"groupchat">>, <<"in">>, Alice, Room, <<"to room">>},
                 <<"groupchat_out">> => {<<"groupchat">>, <<"out">>, <<Room/binary, "/alice">>,
                                         Bob, <<"from room">>},
                 <<"presence_online">> => {<<"presence">>, null, Alice, null, null},
                 <<"presence_offline">> => {<<"presence">>, null, Alice, null, null},
                 <<"unacknowledged_message">> => {<<"unacknowledged_message">>, null, Alice, Bob,
                                                  <<"unacked">>}},
    Bodies = [{json(R), R} || R <- Requests],
    ?assertEqual(lists:sort(maps:keys(Expected)),
                 lists:sort([maps:get(<<"event">>, B) || {B, _} <- Bodies])),
    [begin
         {Type, Dir, From, To, Text} = maps:get(Event, Expected),
         ?assertEqual(lists:sort([<<"schema_version">>, <<"id">>, <<"event">>, <<"type">>,
                                  <<"direction">>, <<"from">>, <<"to">>, <<"body">>,
                                  <<"timestamp">>, <<"metadata">>]),
                      lists:sort(maps:keys(B))),
         ?assertMatch(#{<<"schema_version">> := 1, <<"type">> := Type, <<"direction">> := Dir,
                        <<"from">> := From, <<"to">> := To, <<"body">> := Text,
                        <<"metadata">> := #{}}, B),
         #{<<"id">> := Id, <<"timestamp">> := Ts} = B,
         ?assert(Ts >= Before andalso Ts =< After),
         ?assertMatch({match, _}, re:run(Id, "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-"
                                              "[89ab][0-9a-f]{3}-[0-9a-f]{12}$")),
         ?assertEqual(<<"application/json">>, ep_http_sink:header(<<"content-type">>, R)),
         %% Not signed: no Standard Webhooks headers
         ?assertEqual(undefined, ep_http_sink:header(<<"webhook-signature">>, R))
     end || {B = #{<<"event">> := Event}, R} <- Bodies],
    %% Every event has its own ID
    Ids = [maps:get(<<"id">>, B) || {B, _} <- Bodies],
    ?assertEqual(length(Ids), length(lists:usort(Ids))).

metadata_of_a_push_event_filter_appears_in_the_json_body(doc) ->
    ["Metadata added by a push_event filter module is the body's `metadata' object"];
metadata_of_a_push_event_filter_appears_in_the_json_body(Config) ->
    ok = ep_filter_module:add(ep_test_host:host_type()),
    Pass = #xmlel{name = <<"ep-pass">>},
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(bob(), <<"chat">>, <<"dropped by the filter">>)),
    {ok, _} = ep_test_host:user_send_message(
                alice(), ep_test_host:message(bob(), <<"chat">>, <<"marked">>, [Pass])),
    {ok, _} = ep_test_host:user_available(alice()),
    Bodies = [B || {_, B} <- lists:sort([{maps:get(<<"event">>, B), B}
                                         || B <- [json(R) || R <- all_requests(Config, 2)]])],
    ?assertMatch([#{<<"event">> := <<"chat_in">>, <<"body">> := <<"marked">>,
                    <<"metadata">> := #{<<"filtered_by">> := <<"ep_filter_module">>,
                                        <<"kind">> := <<"marked_message">>, <<"version">> := 1}},
                  #{<<"event">> := <<"presence_online">>,
                    <<"metadata">> := #{<<"filtered_by">> := <<"ep_filter_module">>,
                                        <<"kind">> := <<"status">>, <<"version">> := 1}}],
                 Bodies).

recipient_offline_filter_posts_only_offline_deliveries(doc) ->
    ["With only_if_recipient_offline, a chat message routed to a user without a session is "
     "posted; routed to a user with an available session it is not"];
recipient_offline_filter_posts_only_offline_deliveries(Config) ->
    Bob = ep_test_host:jid(<<"bob@localhost">>),
    %% Bob has no session: the router runs filter_local_packet, then the
    %% session manager finds nobody to deliver to (offline delivery).
    _ = ejabberd_router:route(alice(), Bob, chat_to(Bob, <<"while offline">>)),
    [Offline] = all_requests(Config, 1),
    ?assertMatch(#{<<"event">> := <<"chat_out">>, <<"body">> := <<"while offline">>,
                   <<"to">> := <<"bob@localhost">>}, json(Offline)),
    login(bob()),
    _ = ejabberd_router:route(alice(), Bob, chat_to(Bob, <<"while online">>)),
    receive {route, _} -> ok after ?WAIT_MS -> ct:fail(message_not_delivered) end,
    logout(bob()),
    _ = ejabberd_router:route(alice(), Bob, chat_to(Bob, <<"offline again">>)),
    Requests = all_requests(Config, 2),
    ?assertEqual([<<"while offline">>, <<"offline again">>],
                 [maps:get(<<"body">>, json(R)) || R <- Requests]).

webhook_options_without_events_keep_mongooseim_rule(doc) ->
    ["A handler with webhook options but no `events' sends what MongooseIM's default "
     "callback sends: chat messages sent by a user, with a body"];
webhook_options_without_events_keep_mongooseim_rule(Config) ->
    {ok, _} = ep_test_host:filter_local_packet(
                alice(), bob(), ep_test_host:message(bob(), <<"chat">>, <<"out">>)),
    {ok, _} = ep_test_host:user_available(alice()),
    {ok, _} = ep_test_host:user_send_message(alice(), ep_test_host:message(bob(), <<"chat">>, <<>>)),
    send_chat(<<"sentinel">>),
    [R] = all_requests(Config, 1),
    ?assertMatch(#{<<"event">> := <<"chat_in">>, <<"body">> := <<"sentinel">>}, json(R)).

form_format_sends_mongooseim_body_for_chosen_events(doc) ->
    ["format = \"form\" sends MongooseIM's form body, here for chat messages delivered to a user"];
form_format_sends_mongooseim_body_for_chosen_events(Config) ->
    send_chat(<<"not chosen">>),
    {ok, _} = ep_test_host:filter_local_packet(
                alice(), bob(), ep_test_host:message(bob(), <<"chat">>, <<"a b&c">>)),
    [R = #{body := Body}] = all_requests(Config, 1),
    ?assertEqual(<<"author=alice&server=localhost&receiver=bob&message=a+b%26c">>, Body),
    ?assertEqual(<<"application/x-www-form-urlencoded">>, ep_http_sink:header(<<"content-type">>, R)).

one_event_has_one_id_for_every_handler(doc) ->
    ["Two handlers sending the same event send the same event ID (body and webhook-id)"];
one_event_has_one_id_for_every_handler(Config) ->
    send_chat(<<"twice">>),
    [One, Two] = lists:sort(fun(#{path := A}, #{path := B}) -> A =< B end, all_requests(Config, 2)),
    #{<<"id">> := Id} = json(One),
    ?assertMatch(#{<<"id">> := Id}, json(Two)),
    ?assertEqual(Id, ep_http_sink:header(<<"webhook-id">>, Two)).

%%====================================================================
%% Signing
%%====================================================================

signed_request_verifies_with_standardwebhooks(doc) ->
    ["A signed request carries webhook-id (the body's id), webhook-timestamp and one v1 "
     "signature, and the standardwebhooks package verifies it"];
signed_request_verifies_with_standardwebhooks(Config) ->
    Before = erlang:system_time(second),
    send_chat(<<"signed">>),
    [R] = all_requests(Config, 1),
    #{<<"id">> := Id} = json(R),
    ?assertEqual(Id, ep_http_sink:header(<<"webhook-id">>, R)),
    Ts = binary_to_integer(ep_http_sink:header(<<"webhook-timestamp">>, R)),
    ?assert(Ts >= Before andalso Ts =< erlang:system_time(second)),
    ?assertMatch([<<"v1,", _/binary>>],
                 binary:split(ep_http_sink:header(<<"webhook-signature">>, R), <<" ">>, [global])),
    [#{<<"ok">> := true, <<"payload">> := Payload}] = verify(Config, [{?SECRET_A, R}]),
    ?assertEqual(json(R), Payload),
    %% A key that did not sign it does not verify it
    [#{<<"ok">> := false}] = verify(Config, [{?SECRET_B, R}]).

tampered_body_or_old_timestamp_fails_verification(doc) ->
    ["A changed body, or a timestamp older than the verifier's tolerance, fails verification"];
tampered_body_or_old_timestamp_fails_verification(Config) ->
    send_chat(<<"pay 10">>),
    [R = #{body := Body}] = all_requests(Config, 1),
    Tampered = R#{body := binary:replace(Body, <<"pay 10">>, <<"pay 99">>)},
    Old = with_header(R, <<"webhook-timestamp">>,
                      integer_to_binary(erlang:system_time(second) - 3600)),
    [#{<<"ok">> := true}, #{<<"ok">> := false, <<"error">> := NoMatch},
     #{<<"ok">> := false, <<"error">> := TooOld}] =
        verify(Config, [{?SECRET_A, R}, {?SECRET_A, Tampered}, {?SECRET_A, Old}]),
    ?assertMatch({match, _}, re:run(NoMatch, "signature", [caseless])),
    ?assertMatch({match, _}, re:run(TooOld, "too old", [caseless])).

two_secrets_give_two_signatures_both_valid(doc) ->
    ["Two secrets (one inline, one from a file) sign every request: two space-separated "
     "signatures, each verified with its own secret"];
two_secrets_give_two_signatures_both_valid(Config) ->
    send_chat(<<"rotating">>),
    [R] = all_requests(Config, 1),
    Signatures = binary:split(ep_http_sink:header(<<"webhook-signature">>, R), <<" ">>, [global]),
    ?assertMatch([<<"v1,", _/binary>>, <<"v1,", _/binary>>], Signatures),
    ?assertEqual(2, length(lists:usort(Signatures))),
    [#{<<"ok">> := true}, #{<<"ok">> := true}] = verify(Config, [{?SECRET_A, R}, {?SECRET_B, R}]),
    %% Each signature alone verifies with its own secret only
    [S1, S2] = Signatures,
    [#{<<"ok">> := true}, #{<<"ok">> := false}, #{<<"ok">> := true}, #{<<"ok">> := false}] =
        verify(Config, [{?SECRET_A, with_header(R, <<"webhook-signature">>, S1)},
                        {?SECRET_B, with_header(R, <<"webhook-signature">>, S1)},
                        {?SECRET_B, with_header(R, <<"webhook-signature">>, S2)},
                        {?SECRET_A, with_header(R, <<"webhook-signature">>, S2)}]).

%%====================================================================
%% Config
%%====================================================================

webhook_options_are_parsed_with_their_defaults(doc) ->
    ["Webhook options are parsed; those not given get their defaults, and the signing "
     "keys are sealed in a fun"];
webhook_options_are_parsed_with_their_defaults(Config) ->
    [H1, H2] = handlers(Config, [handler([{events, [chat_out, presence_online]},
                                          {only_if_recipient_offline, true},
                                          {format, "json"},
                                          {signing, [{secret, ?SECRET_A}]}]),
                                 handler([{path, "x"}, {format, "json"}])]),
    #{signing := Keys} = H1,
    ?assertEqual(#{pool_name => http_pool, path => <<>>,
                   callback_module => mod_event_pusher_http_defaults,
                   events => [chat_out, presence_online], only_if_recipient_offline => true,
                   format => json, signing => Keys}, H1),
    ?assert(is_function(Keys, 0)),
    ?assertEqual([base64:decode(<<"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw">>)], Keys()),
    ?assertEqual(#{pool_name => http_pool, path => <<"x">>,
                   callback_module => mod_event_pusher_http_defaults,
                   events => [chat_in], only_if_recipient_offline => false,
                   format => json, signing => none}, H2).

handler_without_webhook_options_parses_as_in_mongooseim(doc) ->
    ["A handler without webhook options parses to MongooseIM's handler map, nothing added"];
handler_without_webhook_options_parses_as_in_mongooseim(Config) ->
    ?assertEqual([#{pool_name => http_pool, path => <<"n">>,
                    callback_module => mod_event_pusher_http_defaults}],
                 handlers(Config, [handler([{path, "n"}])])).

unknown_event_name_is_rejected(doc) ->
    ["An unknown event name is rejected with the path of `events'"];
unknown_event_name_is_rejected(Config) ->
    ?assertMatch(#{toml_path := ?HANDLERS ".events", reason := validate_enum_failed,
                   value := chat_sideways},
                 handler_error(Config, [{events, [chat_in, chat_sideways]}])),
    ?assertMatch(#{toml_path := ?HANDLERS ".events"}, handler_error(Config, [{events, []}])).

callback_module_with_webhook_options_is_rejected(doc) ->
    ["A custom callback_module together with webhook options is rejected"];
callback_module_with_webhook_options_is_rejected(Config) ->
    [?assertMatch(#{toml_path := ?HANDLERS, reason := webhook_options_with_callback_module,
                    callback_module := ep_http_custom_callback, webhook_options := [Key]},
                  handler_error(Config, [{callback_module, "ep_http_custom_callback"}, Opt]))
     || {Key, _} = Opt <- [{events, [chat_in]}, {only_if_recipient_offline, false},
                           {format, "json"}, {signing, [{secret, ?SECRET_A}]}]].

malformed_secret_is_rejected_without_showing_it(doc) ->
    ["A secret that is not whsec_ and the base64 of 24 to 64 bytes is rejected with the path "
     "of `secret', and the error does not show it"];
malformed_secret_is_rejected_without_showing_it(Config) ->
    Bad = [<<"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw">>,                      % no prefix
           <<"whsec_">>,
           <<"whsec_MfKQ9r8GKYqrTwjUPD8ILPZ!o2LaLaSw">>,                % not base64
           <<"whsec_c2hvcnQ=">>,                                        % 5 bytes
           <<"whsec_", (base64:encode(binary:copy(<<"k">>, 65)))/binary>>], % 65 bytes
    [begin
         Error = handler_error(Config, [{signing, [{secret, S}]}]),
         ?assertMatch(#{toml_path := ?HANDLERS ".signing.secret",
                        reason := invalid_webhook_secret}, Error),
         assert_not_shown(S, Error)
     end || S <- Bad].

unreadable_secret_file_is_rejected(doc) ->
    ["A secret file that cannot be read is rejected with the path of `secret_file'"];
unreadable_secret_file_is_rejected(Config) ->
    Missing = filename:join(?config(priv_dir, Config), "no_such_secret"),
    ?assertMatch(#{toml_path := ?HANDLERS ".signing.secret_file",
                   reason := webhook_secret_file_unreadable, file := _},
                 handler_error(Config, [{signing, [{secret_file, Missing}]}])).

malformed_secret_file_is_rejected_without_showing_it(doc) ->
    ["A secret file whose text is not a whsec_ secret is rejected, not showing the text"];
malformed_secret_file_is_rejected_without_showing_it(Config) ->
    Text = <<"whsec_c2hvcnQ=">>,
    File = write_priv(Config, "short_secret", Text),
    Error = handler_error(Config, [{signing, [{secret_file, File}]}]),
    ?assertMatch(#{toml_path := ?HANDLERS ".signing.secret_file",
                   reason := invalid_webhook_secret}, Error),
    assert_not_shown(Text, Error).

signing_entry_needs_exactly_one_of_secret_and_secret_file(doc) ->
    ["A signing entry with both secret and secret_file is rejected with the path of `signing'"];
signing_entry_needs_exactly_one_of_secret_and_secret_file(Config) ->
    File = write_priv(Config, "ok_secret", ?SECRET_B),
    Error = handler_error(Config, [{signing, [[{secret, ?SECRET_A}, {secret_file, File}]]}]),
    ?assertMatch(#{toml_path := ?HANDLERS ".signing", reason := invalid_signing_entry}, Error),
    assert_not_shown(?SECRET_A, Error).

form_format_for_presence_events_is_rejected(doc) ->
    ["The form body is for messages: presence events with format \"form\" are rejected"];
form_format_for_presence_events_is_rejected(Config) ->
    ?assertMatch(#{toml_path := ?HANDLERS, reason := form_format_for_non_message_events,
                   events := [presence_online]},
                 handler_error(Config, [{events, [chat_in, presence_online]}])).

%%====================================================================
%% Secrets
%%====================================================================

secret_appears_in_no_log_line_error_or_stat(doc) ->
    ["With a known secret, events, a retried 500, a failed request and a rejected config "
     "leave the secret in no log line (captured and CT's), error or stat"];
secret_appears_in_no_log_line_error_or_stat(Config) ->
    Secret = secret(Config),
    Sink = ?config(sink, Config),
    ok = logger:set_primary_config(level, all),
    try
        ok = ep_http_sink:queue_statuses(Sink, any, [500]),
        fire_every_event(),
        _ = all_requests(Config, length(?EVENTS) + 2),
        ok = ep_http_sink:down(Sink),
        send_chat(<<"lost">>),
        instrument_helper:wait_and_assert(?METRIC, labels(),
                                          fun(M) -> maps:get(failure_count, M, 0) =:= 1 end),
        %% A config error next to the secret, and one of a near miss of it
        Error1 = handler_error(Config, [{callback_module, "ep_http_custom_callback"},
                                        {signing, [{secret, Secret}]}]),
        Error2 = handler_error(Config, [{signing, [{secret, <<Secret/binary, "!">>}]}]),
        Stats = ep_test_host:http_pool_stats(http_pool),
        Instrumented = instrument_helper:select(?METRIC, labels()),
        Logs = captured_logs(),
        ?assert(length(Logs) > 10),
        [assert_not_shown(Secret, T) || T <- [Error1, Error2, Stats, Instrumented, Logs,
                                              mongoose_config:get_opts()]]
    after
        ok = logger:set_primary_config(level, notice)
    end,
    %% What common_test wrote for this run so far (its logs of every case,
    %% where the logger's events also go), but not the files cases wrote to
    %% their priv_dir (the secret file itself is one).
    RunDir = filename:dirname(string:trim(?config(priv_dir, Config), trailing, "/")),
    Files = [F || F <- filelib:wildcard(filename:join(RunDir, "**/*")),
                  filelib:is_regular(F),
                  not lists:prefix(?config(priv_dir, Config), F)],
    ?assert(length(Files) > 3),
    [begin
         {ok, Text} = file:read_file(F),
         ?assertEqual(nomatch, binary:match(Text, needles(Secret)), F)
     end || F <- Files].

%%====================================================================
%% Helpers: events
%%====================================================================

%% One event of each name, in ?EVENTS order.
fire_every_event() ->
    Room = ep_test_host:jid(<<"room@muc.localhost">>),
    RoomAlice = ep_test_host:jid(<<"room@muc.localhost/alice">>),
    {ok, _} = ep_test_host:user_send_message(alice(), ep_test_host:message(bob(), <<"chat">>, <<"hello in">>)),
    {ok, _} = ep_test_host:filter_local_packet(
                alice(), bob(), ep_test_host:message(bob(), <<"chat">>, <<"hello out">>)),
    {ok, _} = ep_test_host:user_send_message(alice(), ep_test_host:message(Room, <<"groupchat">>, <<"to room">>)),
    {ok, _} = ep_test_host:filter_local_packet(
                RoomAlice, bob(), ep_test_host:message(bob(), <<"groupchat">>, <<"from room">>)),
    {ok, _} = ep_test_host:user_available(alice()),
    {ok, _} = ep_test_host:unset_presence(alice(), <<>>),
    Unacked = ep_test_host:with_from_to(ep_test_host:message(bob(), <<"chat">>, <<"unacked">>),
                                        alice(), bob()),
    {ok, _} = ep_test_host:unacknowledged_message(bob(), Unacked),
    ok.

send_chat(Text) ->
    {ok, _} = ep_test_host:user_send_message(alice(), ep_test_host:message(bob(), <<"chat">>, Text)),
    ok.

chat_to(To, Text) ->
    ep_test_host:message(To, <<"chat">>, Text).

login(Jid) ->
    SID = ejabberd_sm:make_new_sid(),
    _ = ejabberd_sm:open_session(ep_test_host:host_type(), SID, Jid, 0, #{}),
    put(sessions, [{Jid, SID} | sessions()]),
    ok.

logout(Jid) ->
    [begin
         Acc = ep_test_host:new_acc(J, J, ep_test_host:presence(<<"unavailable">>)),
         _ = ejabberd_sm:close_session(Acc, SID, J, normal, #{})
     end || {J, SID} <- sessions(), J =:= Jid],
    put(sessions, [S || S = {J, _} <- sessions(), J =/= Jid]),
    ok.

close_sessions() ->
    [logout(J) || {J, _} <- sessions()],
    ok.

sessions() ->
    case get(sessions) of
        undefined -> [];
        L -> L
    end.

%% Waits for N requests, then for the pool to be idle: the list is complete.
all_requests(Config, N) ->
    Sink = ?config(sink, Config),
    _ = ep_http_sink:wait_for_requests(Sink, N, ?WAIT_MS),
    ok = ep_test_host:wait_http_pool_idle(http_pool, ?WAIT_MS),
    Requests = ep_http_sink:requests(Sink),
    ?assertEqual(N, length(Requests), Requests),
    Requests.

json(#{body := Body}) ->
    jiffy:decode(Body, [return_maps, {null_term, null}]).

with_header(R = #{headers := Headers}, Name, Value) ->
    R#{headers := lists:keystore(Name, 1, Headers, {Name, Value})}.

labels() ->
    #{host_type => ep_test_host:host_type()}.

-include("ep_suite_users.hrl").

%%====================================================================
%% Helpers: verification with standardwebhooks
%%====================================================================

%% Verifies each {Secret, Request} with test/support/ep_webhook_verify.py.
%% The secrets go through a file in priv_dir, never a command line or a log.
verify(Config, Cases) ->
    Input = jiffy:encode(#{cases => [#{secret => Secret, body_b64 => base64:encode(Body),
                                       headers => maps:from_list(Headers)}
                                     || {Secret, #{body := Body, headers := Headers}} <- Cases]}),
    File = write_priv(Config, "verify_input.json", Input),
    Out = os:cmd(?config(verify_cmd, Config) ++ " " ++ File ++ " 2>&1"),
    try jiffy:decode(Out, [return_maps, {null_term, null}]) of
        Results when length(Results) =:= length(Cases) -> Results
    catch
        _:_ -> ct:fail({verifier_failed, Out})
    end.

find_script(Path) ->
    case filelib:is_regular(Path) of
        true -> Path;
        false -> ct:fail({verify_script_not_found, Path})
    end.

%%====================================================================
%% Helpers: config
%%====================================================================

pool_toml(Sink) ->
    ["[outgoing_pools.http.http_pool]\n",
     "  workers = 2\n",
     "  [outgoing_pools.http.http_pool.connection]\n",
     "    host = \"", ep_http_sink:url(Sink), "\"\n",
     "    request_timeout = 2000\n\n"].

%% One `[[modules.mod_event_pusher.http.handlers]]' table from {Key, Value}:
%% strings and binaries as TOML strings, atoms in lists as strings, signing
%% entries as inline tables.
handler(Opts) ->
    ["[[modules.mod_event_pusher.http.handlers]]\n",
     [["  ", atom_to_list(K), " = ", toml_value(K, V), "\n"] || {K, V} <- Opts]].

toml_value(signing, Entries) ->
    ["[", lists:join(", ", [["{", lists:join(", ", [[atom_to_list(K), " = ", toml_string(V)]
                                                    || {K, V} <- entry(E)]), "}"]
                            || E <- Entries]), "]"];
toml_value(_K, L) when is_list(L), L =/= [], is_atom(hd(L)) ->
    ["[", lists:join(", ", [toml_string(atom_to_list(A)) || A <- L]), "]"];
toml_value(_K, []) -> "[]";
toml_value(_K, B) when is_boolean(B) -> atom_to_list(B);
toml_value(_K, V) -> toml_string(V).

%% A signing entry: one {Key, Value} or a list of them.
entry(L) when is_list(L) -> L;
entry(KV) -> [KV].

%% A literal string: the values here hold no single quote.
toml_string(V) ->
    ["'", V, "'"].

handlers(Config, HandlersToml) ->
    #{mod_event_pusher_http := #{handlers := Handlers}} =
        modules(Config, ["[modules.mod_event_pusher.http]\n", HandlersToml]),
    Handlers.

handler_error(Config, Opts) ->
    the_error(Config, [general(), "[modules.mod_event_pusher.http]\n", handler(Opts)]).

write_priv(Config, Name, Data) ->
    Path = filename:join(?config(priv_dir, Config),
                         Name ++ "_" ++ integer_to_list(erlang:unique_integer([positive]))),
    ok = file:write_file(Path, Data),
    Path.

%% A secret made for this run, kept in a priv_dir file (not in Config,
%% which common_test may print).
secret(Config) ->
    File = filename:join(?config(priv_dir, Config), "run_secret"),
    case file:read_file(File) of
        {ok, Secret} ->
            Secret;
        {error, enoent} ->
            Secret = <<"whsec_", (base64:encode(crypto:strong_rand_bytes(32)))/binary>>,
            ok = file:write_file(File, Secret),
            Secret
    end.

%% The secret as text, its base64 part, and its key as Erlang prints a binary.
needles(<<"whsec_", B64/binary>> = Secret) ->
    Key = base64:decode(B64),
    Printed = lists:flatten(io_lib:format("~w", [Key])),
    [Secret, B64, list_to_binary(lists:sublist(Printed, 3, 40))].

assert_not_shown(Secret, Term) ->
    Text = iolist_to_binary(io_lib:format("~p ~w", [Term, Term])),
    Parts = case Secret of
                <<"whsec_", Rest/binary>> -> [Secret, Rest];
                _ -> [Secret]
            end,
    %% A part too short to tell from the error's own text is not looked for.
    [?assertEqual(nomatch, binary:match(Text, P), P) || P <- Parts, byte_size(P) >= 8],
    ok.

%%====================================================================
%% Helpers: logs
%%====================================================================

start_log_capture() ->
    _ = logger:remove_handler(?MODULE),
    put(captured_logs, []),
    ok = logger:add_handler(?MODULE, ?MODULE, #{level => all, config => #{pid => self()}}).

%% logger handler callback: every event, formatted as logger_formatter would.
log(Event, #{config := #{pid := Pid}}) ->
    Text = logger_formatter:format(Event, #{single_line => false, depth => unlimited,
                                            chars_limit => unlimited}),
    Pid ! {?MODULE, log, iolist_to_binary(Text)},
    ok.

captured_logs() ->
    receive
        {?MODULE, log, Text} -> [Text | captured_logs()]
    after 0 -> []
    end.
