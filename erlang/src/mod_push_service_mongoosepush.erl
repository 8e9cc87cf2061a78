%% @doc Sends push notifications to MongoosePush: handles the
%% `push_notifications' hook (run by the push backend for services on virtual
%% pubsub hosts, and by the legacy pubsub node plugin) and POSTs one JSON
%% body per notification through the Rust HTTP pool of `pool_name'.
%%
%% Two callers, two contracts (doc/compatibility.md §8):
%% - Acc `ok' (the pubsub node plugin turns the result into an IQ reply): the
%%   handler returns `ok', `{error, device_not_registered}' or another error;
%%   the calling process waits in `receive' (bounded by the pool's
%%   `call_timeout') for the pool owner to report the outcome.
%% - Acc a mongoose_acc (the event pusher, i.e. a user's process): (ours) the
%%   requests are queued and the hook returns at once; the pool owner handles
%%   the outcome later, and a 410 disables the node from there.
-module(mod_push_service_mongoosepush).

%% No `-behaviour(gen_mod)': see mod_event_pusher.

%% The push_notifications handler, the results of its requests (called by
%% mongoose_event_pusher_pool_owner), the body (exported for tests and the
%% benchmark), and the gen_mod callbacks
-export([push_notifications/3, handle_pool_result/2, make_notification/2, make_notification/3,
         start/2, stop/1, hooks/1, config_spec/0, instrumentation/1, supported_features/0]).

-include("mongoose.hrl").
-include("jlib.hrl").
-include("mongoose_config_spec.hrl").

%% What the pool owner needs for one request; it travels through the NIF
%% and back (term_to_binary), so it stays small.
-record(ctx, {host_type :: mongooseim:host_type(),
              %% an alias of the waiting caller (Acc `ok'), else undefined
              reply_to :: reference() | undefined,
              %% (ours) the node to disable on a 410 when nobody waits:
              %% {BareUser, PubSubJID, EnableForm}
              device :: {jid:jid(), jid:jid(), #{binary() => binary()}} | undefined,
              path :: binary()}).
-type ctx() :: #ctx{}.
-type result() :: ok | {error, term()}.
-export_type([ctx/0]).

-define(SENT_METRIC, mod_push_service_mongoosepush_sent).
-define(SETTINGS(HostType), {?MODULE, settings, HostType}).
%% (ours) Retries after a connection error, a timeout or a 5xx, and the first
%% wait in ms (doubled each time, plus jitter). MongooseIM does not retry.
-define(MAX_RETRIES, 2).
-define(RETRY_BASE_MS, 100).
%% MongooseIM's default `call_timeout' of a pool.
-define(DEFAULT_CALL_TIMEOUT, 5000).
-define(HEADERS, [{<<"content-type">>, <<"application/json">>}]).
%% The options MongooseIM copies verbatim into the body; `tags' is left out
%% on purpose (it would let a user pick MongoosePush's pools).
-define(OPTIONAL_KEYS, [<<"mode">>, <<"priority">>, <<"topic">>,
                        <<"mutable_content">>, <<"time_to_live">>]).

%%--------------------------------------------------------------------
%% gen_mod callbacks
%%--------------------------------------------------------------------

%% @doc Acquires the http pool. As in MongooseIM a missing pool does not fail
%% the start: a warning is logged and each notification fails with
%% `pool_not_started'.
-spec start(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
start(HostType, Opts = #{pool_name := PoolName, api_version := ApiVersion}) ->
    case mongoose_event_pusher_pool_hold:acquire(?MODULE, http, HostType, PoolName) of
        {ok, _Pool, _Scope} ->
            ok;
        {error, Reason} ->
            ?LOG_WARNING(#{what => push_service_pool_unavailable,
                           host_type => HostType, pool_name => PoolName,
                           reason => Reason,
                           text => <<"Push notifications fail until the module "
                                     "is restarted with this pool configured">>})
    end,
    persistent_term:put(?SETTINGS(HostType),
                        #{pool_name => PoolName, api_version => ApiVersion,
                          call_timeout => call_timeout(HostType, PoolName),
                          delivery => mod_event_pusher_http_delivery:delivery(Opts)}).

-spec stop(mongooseim:host_type()) -> ok.
stop(HostType) ->
    _ = persistent_term:erase(?SETTINGS(HostType)),
    mongoose_event_pusher_pool_hold:release(?MODULE, HostType).

-spec hooks(mongooseim:host_type()) -> [gen_hook:hook_tuple()].
hooks(HostType) ->
    [{push_notifications, HostType, fun ?MODULE:push_notifications/3, #{}, 10}].

%% @doc MongooseIM's options. `max_http_connections' is accepted and
%% validated; (ours) the bound on concurrent requests is the pool's
%% `workers' (see doc/mongoosepush.md).
-spec config_spec() -> mongoose_config_spec:config_section().
config_spec() ->
    Options = [{<<"pool_name">>, #option{type = atom, validate = pool_name}, undefined},
               {<<"api_version">>,
                #option{type = binary, validate = {enum, [<<"v2">>, <<"v3">>]}}, <<"v3">>},
               {<<"max_http_connections">>,
                #option{type = integer, validate = non_negative}, 100}]
        %% (ours) retry_on_timeout, max_age, retry_after_max: no default in
        %% the parsed config, so an existing one parses unchanged.
        ++ [{Key, Spec, none} || {Key, Spec} <- mod_event_pusher_http_delivery:config_items()],
    %% (ours) the disk spool of its http pool: doc/durability.md
    Spool = {<<"spool">>, mongoose_event_pusher_spool:config_spec()},
    #section{items = maps:from_list([Spool | [{Key, Spec} || {Key, Spec, _} <- Options]]),
             defaults = maps:from_list([{Key, Default} || {Key, _, Default} <- Options,
                                                          Default =/= none])}.

-spec supported_features() -> [atom()].
supported_features() ->
    [dynamic_domains].

%% @doc (ours) One event per notification: `count' and `response_time' for
%% each final HTTP response (with `response_code'), `failure_count' for each
%% notification not delivered (non-2xx, connection error, dropped).
-spec instrumentation(mongooseim:host_type()) -> [mongoose_instrument:spec()].
instrumentation(HostType) ->
    [{?SENT_METRIC, #{host_type => HostType},
      #{metrics => #{count => spiral, response_time => histogram, failure_count => spiral}}}].

%%--------------------------------------------------------------------
%% Hook handler
%%--------------------------------------------------------------------

-spec push_notifications(Acc, Params, map()) -> {ok, Acc | result()} when
      Acc :: ok | mongoose_acc:t(),
      Params :: #{notification_forms := [#{binary() => binary()}],
                  options := #{binary() => binary()}}.
push_notifications(Acc, #{notification_forms := Forms,
                          options := Options = #{<<"device_id">> := DeviceId}},
                   #{host_type := HostType}) ->
    Settings = #{api_version := ApiVersion} = settings(HostType),
    Path = <<ApiVersion/binary, "/notification/", DeviceId/binary>>,
    case Acc of
        ok ->
            Ctx = #ctx{host_type = HostType, path = Path},
            {ok, send_and_wait(Forms, Options, Ctx, Settings, ok)};
        _ ->
            Ctx = #ctx{host_type = HostType, path = Path, device = device(Acc, Options)},
            {ok, submit_all(Forms, Options, Ctx, Settings, Acc)}
    end;
push_notifications(Acc, #{options := Options}, #{host_type := HostType}) ->
    %% MongooseIM's handler has no clause for this: the hook logs the crash
    %% and goes on with the accumulator unchanged. So do we, without a crash.
    ?LOG_ERROR(#{what => push_notifications_no_device_id, host_type => HostType,
                 options => maps:keys(Options),
                 text => <<"The enable form has no device_id: nothing is sent">>}),
    {ok, Acc}.

%%--------------------------------------------------------------------
%% Pool results
%%--------------------------------------------------------------------

%% @doc Runs in the pool's owner: logs and counts the outcome of one request,
%% answers the caller waiting for it, or disables the node on a 410.
-spec handle_pool_result(ctx(), Outcome) -> ok when
      Outcome :: {response, 100..599, non_neg_integer()}
               | {error, binary(), non_neg_integer()}
               | {timeout, non_neg_integer()}
               | {dropped, atom()}.
handle_pool_result(Ctx = #ctx{host_type = HostType}, {response, Status, TimeUs}) ->
    Result = status_result(Ctx, Status),
    Failure = case Result of
                  ok -> #{};
                  _ -> #{failure_count => 1}
              end,
    execute(HostType, Failure#{count => 1, response_time => TimeUs,
                               response_code => integer_to_binary(Status)}),
    finish(Ctx, Result);
handle_pool_result(Ctx = #ctx{host_type = HostType, path = Path}, {error, Reason, _TimeUs}) ->
    ?LOG_ERROR(#{what => connection_error, host_type => HostType, path => Path,
                 reason => Reason,
                 text => <<"Unable to send push notification to MongoosePush">>}),
    execute(HostType, #{failure_count => 1}),
    finish(Ctx, {error, Reason});
handle_pool_result(Ctx = #ctx{host_type = HostType, path = Path}, {timeout, _TimeUs}) ->
    %% (ours) Sent, no answer in time: MongoosePush may have pushed it
    %% (outcome unknown), so it is not a drop; a failure, as in MongooseIM.
    ?LOG_WARNING(#{what => push_send_timeout, host_type => HostType, path => Path,
                   outcome => unknown,
                   text => <<"MongoosePush did not answer in time; "
                             "the notification may have been pushed">>}),
    execute(HostType, #{failure_count => 1}),
    finish(Ctx, {error, timeout});
handle_pool_result(#ctx{host_type = HostType, path = Path}, {dropped, retries_exhausted}) ->
    %% Its last attempt was reported (and counted) just before.
    ?LOG_WARNING(#{what => push_send_gave_up, host_type => HostType, path => Path,
                   reason => retries_exhausted});
handle_pool_result(Ctx = #ctx{host_type = HostType, path = Path}, {dropped, Reason}) ->
    ?LOG_WARNING(#{what => push_send_gave_up, host_type => HostType, path => Path,
                   reason => Reason}),
    execute(HostType, #{failure_count => 1}),
    %% A caller that got its answer already has no alias left: dropped.
    finish(Ctx, {error, Reason}).

%%--------------------------------------------------------------------
%% The body
%%--------------------------------------------------------------------

%% @doc The JSON MongoosePush gets for one notification form and the enable
%% form's options (the same for v2 and v3). Crashes when the options have no
%% `service', a non-silent notification lacks a body or sender, or
%% `message-count' is not an integer: the caller logs `make_notification_failed'.
-spec make_notification(#{binary() => binary()}, #{binary() => binary()}) -> binary().
make_notification(Notification, Options) ->
    make_notification(Notification, Options, []).

%% @doc (ours) `Omitted': the fields mod_event_pusher_push's privacy options
%% left out. An alert lacking one of those gets it empty (MongoosePush
%% requires a title and a body) and no `tag'; any other missing field fails
%% the alert, as in MongooseIM.
-spec make_notification(#{binary() => binary()}, #{binary() => binary()}, [binary()]) ->
          binary().
make_notification(Notification, Options, Omitted) ->
    Params = maps:merge(#{service => maps:get(<<"service">>, Options)},
                        maps:with(?OPTIONAL_KEYS, Options)),
    Fields = count_as_integer(Notification),
    Content = case Options of
                  #{<<"silent">> := <<"true">>} ->
                      #{data => Fields};
                  _ ->
                      Sender = alert_field(<<"last-message-sender">>, Fields, Omitted),
                      Alert0 = #{body => alert_field(<<"last-message-body">>, Fields, Omitted),
                                 title => Sender,
                                 badge => maps:get(<<"message-count">>, Fields)},
                      Alert = case Sender of
                                  <<>> -> Alert0;
                                  _ -> Alert0#{tag => Sender}
                              end,
                      #{alert => maps:merge(Alert, maps:with([<<"click_action">>, <<"sound">>],
                                                             Options))}
              end,
    mongoose_event_pusher_json:encode(maps:merge(Params, Content)).

-spec alert_field(binary(), map(), [binary()]) -> binary().
alert_field(Key, Fields, Omitted) ->
    case maps:find(Key, Fields) of
        {ok, Value} -> Value;
        error ->
            case lists:member(Key, Omitted) of
                true -> <<>>;
                false -> error({missing_field, Key})
            end
    end.

%% (ours) The fields the host type's push privacy options leave out.
-spec omitted_fields(mongooseim:host_type()) -> [binary()].
omitted_fields(HostType) ->
    Privacy = gen_mod:get_module_opt(HostType, mod_event_pusher_push, privacy, #{}),
    [<<"last-message-body">> || maps:get(body, Privacy, keep) =:= omit]
        ++ [<<"last-message-sender">> || maps:get(sender, Privacy, keep) =:= omit].

%% MongoosePush wants the count as a number; the form carries text.
-spec count_as_integer(#{binary() => binary()}) -> #{binary() => binary() | integer()}.
count_as_integer(#{<<"message-count">> := Count} = Fields) when is_binary(Count) ->
    Fields#{<<"message-count">> := binary_to_integer(Count)};
count_as_integer(Fields) ->
    Fields.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec settings(mongooseim:host_type()) -> map().
settings(HostType) ->
    persistent_term:get(?SETTINGS(HostType)).

%% Acc `ok': one request at a time, as MongooseIM does; a 410 ends the
%% round (the device is gone), another error is remembered and the rest are
%% still sent.
-spec send_and_wait([map()], map(), ctx(), map(), result()) -> result().
send_and_wait([Form | Forms], Options, Ctx, Settings, Result) ->
    case send_one(Form, Options, Ctx, Settings) of
        ok -> send_and_wait(Forms, Options, Ctx, Settings, Result);
        {error, device_not_registered} = Error -> Error;
        {error, _} = Error -> send_and_wait(Forms, Options, Ctx, Settings, Error)
    end;
send_and_wait([], _Options, _Ctx, _Settings, Result) ->
    Result.

-spec send_one(map(), map(), ctx(), map()) -> result().
send_one(Form, Options, Ctx, Settings = #{call_timeout := Timeout}) ->
    %% An alias with `reply': the first answer deactivates it, so a late one
    %% (after a timeout, or a drop after the answer) never reaches the caller.
    Alias = alias([reply]),
    case build_and_submit(Form, Options, Ctx#ctx{reply_to = Alias}, Settings) of
        ok ->
            receive
                {?MODULE, Alias, Result} -> Result
            after Timeout ->
                    unalias(Alias),
                    receive
                        {?MODULE, Alias, Result} -> Result
                    after 0 ->
                            ?LOG_ERROR(#{what => push_send_failed, reason => timeout,
                                         host_type => Ctx#ctx.host_type, path => Ctx#ctx.path}),
                            {error, timeout}
                    end
            end;
        {error, _} = Error ->
            unalias(Alias),
            Error
    end.

%% Acc a mongoose_acc: every request is queued; an error known at once
%% (a body that cannot be built, no pool, a full queue) becomes the result.
-spec submit_all([map()], map(), ctx(), map(), mongoose_acc:t() | result()) ->
          mongoose_acc:t() | result().
submit_all([Form | Forms], Options, Ctx, Settings, Result) ->
    case build_and_submit(Form, Options, Ctx, Settings) of
        ok -> submit_all(Forms, Options, Ctx, Settings, Result);
        {error, _} = Error -> submit_all(Forms, Options, Ctx, Settings, Error)
    end;
submit_all([], _Options, _Ctx, _Settings, Result) ->
    Result.

-spec build_and_submit(map(), map(), ctx(), map()) -> ok | {error, term()}.
build_and_submit(Form, Options, Ctx = #ctx{host_type = HostType, path = Path},
                 #{pool_name := PoolName, delivery := Delivery}) ->
    try make_notification(Form, Options, omitted_fields(HostType)) of
        Body ->
            submit(mongoose_event_pusher_pool_hold:pool(http, HostType, PoolName),
                   {{?MODULE, Ctx}, Path, ?HEADERS, Body, ?MAX_RETRIES, ?RETRY_BASE_MS,
                    mongoose_event_pusher_event_id:new(), Delivery},
                   Ctx)
    catch
        Class:Reason:Stacktrace ->
            ?LOG_ERROR(#{what => make_notification_failed, host_type => HostType,
                         text => <<"Error making push notification">>,
                         notification => Form, options => Options,
                         class => Class, reason => Reason, stacktrace => Stacktrace}),
            {error, make_notification_failed}
    end.

-spec submit(mongoose_event_pusher_pool_owner:pool_ref() | undefined, tuple(), ctx()) ->
          ok | {error, term()}.
submit(undefined, _Request, #ctx{host_type = HostType, path = Path}) ->
    mongoose_event_pusher_drop_log:log(error, {?MODULE, HostType},
                                       #{what => push_send_failed, host_type => HostType,
                                         path => Path, reason => pool_not_started}),
    execute(HostType, #{failure_count => 1}),
    {error, pool_not_started};
submit(Pool, Request, #ctx{host_type = HostType, path = Path}) ->
    try mongoose_event_pusher_nif:http_submit(Pool, Request) of
        ok ->
            ok;
        {error, Reason} ->
            mongoose_event_pusher_drop_log:log(error, {?MODULE, HostType},
                                               #{what => push_send_failed, host_type => HostType,
                                                 path => Path, reason => Reason}),
            execute(HostType, #{failure_count => 1}),
            {error, Reason}
    catch
        error:badarg ->
            %% e.g. a device id no request line can carry
            ?LOG_ERROR(#{what => push_send_failed, host_type => HostType, path => Path,
                         reason => invalid_request}),
            execute(HostType, #{failure_count => 1}),
            {error, invalid_request}
    end.

%% MongooseIM's reading of a final status, with its logs.
-spec status_result(ctx(), 100..599) -> result().
status_result(_Ctx, Status) when Status >= 200, Status < 300 ->
    ok;
status_result(#ctx{host_type = HostType, path = Path}, 410) ->
    ?LOG_WARNING(#{what => push_send_failed, host_type => HostType, path => Path,
                   code => 410, reason => device_not_registered,
                   text => <<"Unable to send push notification. Device not registered.">>}),
    {error, device_not_registered};
status_result(#ctx{host_type = HostType, path = Path}, 429) ->
    %% (ours) retried (after its Retry-After) until the retries ran out.
    ?LOG_ERROR(#{what => push_send_failed, host_type => HostType, path => Path, code => 429,
                 reason => too_many_requests,
                 text => <<"Unable to send push notification. MongoosePush keeps "
                           "answering 429 too_many_requests">>}),
    {error, {invalid_status_code, 429}};
status_result(#ctx{host_type = HostType, path = Path}, Status) when Status >= 400, Status < 500 ->
    ?LOG_ERROR(#{what => push_send_failed, host_type => HostType, path => Path, code => Status,
                 text => <<"Unable to send push notification. Possible API mismatch">>}),
    {error, {invalid_status_code, Status}};
status_result(#ctx{host_type = HostType, path = Path}, Status) ->
    ?LOG_ERROR(#{what => push_send_failed, host_type => HostType, path => Path, code => Status,
                 text => <<"Unable to send push notification">>}),
    {error, {invalid_status_code, Status}}.

-spec finish(ctx(), result()) -> ok.
finish(#ctx{reply_to = Alias}, Result) when is_reference(Alias) ->
    Alias ! {?MODULE, Alias, Result},
    ok;
finish(Ctx = #ctx{device = Device}, {error, device_not_registered}) when Device =/= undefined ->
    disable_device(Ctx);
finish(_Ctx, _Result) ->
    ok.

%% Who to disable if MongoosePush later answers 410: the recipient and the
%% virtual pubsub JID the push backend put in the accumulator.
-spec device(mongoose_acc:t(), map()) -> {jid:jid(), jid:jid(), map()} | undefined.
device(Acc, Options) ->
    case {mongoose_acc:to_jid(Acc),
          mongoose_acc:get(push_notifications, pubsub_jid, undefined, Acc)} of
        {#jid{} = To, #jid{} = PubSub} -> {jid:to_bare(To), PubSub, Options};
        _ -> undefined
    end.

%% The hook does not say which node the options came from; the node to
%% disable is the user's node(s) on that service enabled with these options
%% (they name the device).
-spec disable_device(ctx()) -> ok.
disable_device(#ctx{host_type = HostType, device = {User, PubSub, Options}}) ->
    try mod_event_pusher_push_backend:get_publish_services(HostType, User) of
        {ok, Services} ->
            LPubSub = jid:to_lower(PubSub),
            Nodes = [Node || {P, Node, Form} <- Services,
                             jid:to_lower(P) =:= LPubSub, Form =:= Options],
            lists:foreach(fun(Node) -> disable_node(HostType, User, PubSub, Node) end, Nodes);
        {error, Reason} ->
            ?LOG_ERROR(#{what => push_node_disable_failed, host_type => HostType,
                         pubsub_jid => jid:to_binary(PubSub), reason => Reason})
    catch
        Class:Reason ->
            ?LOG_ERROR(#{what => push_node_disable_failed, host_type => HostType,
                         pubsub_jid => jid:to_binary(PubSub), class => Class, reason => Reason})
    end.

-spec disable_node(mongooseim:host_type(), jid:jid(), jid:jid(), binary()) -> ok.
disable_node(HostType, User, PubSub, Node) ->
    Details = #{pubsub_jid => jid:to_binary(PubSub), node => Node},
    ?LOG_WARNING(Details#{what => push_node_disabled, host_type => HostType,
                          user => jid:to_binary(User), reason => device_not_registered}),
    case mod_event_pusher_push:disable_node(HostType, User, PubSub, Node) of
        ok -> ok;
        {error, Reason} ->
            ?LOG_ERROR(Details#{what => push_node_disable_failed, host_type => HostType,
                                reason => Reason})
    end,
    try mod_event_pusher_push:count(HostType, disabled, Details)
    catch error:_ -> ok
    end.

%% The `call_timeout' of the outgoing pool serving this host type.
-spec call_timeout(mongooseim:host_type(), atom()) -> pos_integer().
call_timeout(HostType, PoolName) ->
    Pools = mongoose_config:get_opt({outgoing_pools, HostType}, [])
        ++ mongoose_config:get_opt(outgoing_pools, []),
    case [Opts || #{type := http, tag := Tag, opts := Opts} <- Pools, Tag =:= PoolName] of
        [#{call_timeout := Timeout} | _] -> Timeout;
        _ -> ?DEFAULT_CALL_TIMEOUT
    end.

-spec execute(mongooseim:host_type(), mongoose_instrument:measurements()) -> ok.
execute(HostType, Measurements) ->
    mongoose_event_pusher_pool_owner:instrument(?SENT_METRIC, #{host_type => HostType}, Measurements).
