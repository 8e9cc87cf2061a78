%% @doc The RabbitMQ backend of the event pusher (doc/compatibility.md §5).
%%
%% At start it acquires the shared Rust pool of `[outgoing_pools.rabbit.event_pusher]'
%% and declares every configured exchange through it, waiting for the broker's
%% answer. The `push_event' handler turns presence and (group)chat events into
%% a routing key and the body's fields and hands them to the pool, which
%% encodes the JSON and publishes; the user's process never waits for the
%% broker. Outcomes come back to the pool's owner, which calls
%% handle_pool_result/2 and handle_pool_event/2 here: they emit MongooseIM's
%% `wpool_*_rabbit_*' instrumentation events and log failures.
-module(mod_event_pusher_rabbit).

%% No `-behaviour(gen_mod)': see mod_event_pusher.

-include("mongoose.hrl").
-include("mongoose_config_spec.hrl").
-include("mod_event_pusher_events.hrl").

%% The push_event handler, the outcomes of its publishes and the pool's
%% connection events (called by mongoose_event_pusher_pool_owner), and the
%% gen_mod callbacks (MongooseIM's rabbit backend declares no
%% instrumentation of its own: its events are the rabbit wpool's)
-export([push_event/3, handle_pool_result/2, handle_pool_event/2,
         start/2, stop/1, hooks/1, config_spec/0, supported_features/0]).

-type exchange_key() :: presence_exchange | chat_msg_exchange | groupchat_msg_exchange.
-type exchange_opts() :: #{name := binary(), type := binary(), durable := boolean(),
                           sent_topic => binary(), recv_topic => binary()}.
%% What a result needs to name its instrumentation event: the pool's scope
%% (`global', or the host type of a host-type pool) and tag.
-type ctx() :: {global | mongooseim:host_type(), mongoose_event_pusher_pool_registry:tag()}.
-type failures() :: #{exchange_key() => #{name := binary(), reason := term()}}.
-export_type([exchange_key/0, exchange_opts/0, ctx/0]).

%% (ours) How long a returned mandatory message is retried by default.
-define(UNROUTABLE_RETRY_TIME_MS, 60000).
%% MongooseIM's rabbit backend always uses the pool of this tag.
-define(POOL_TAG, event_pusher).
%% How long the pool may take to connect and declare the exchanges; the
%% receive allows a little more for the answer itself.
-define(DECLARE_TIMEOUT_MS, 10000).
-define(DECLARE_MARGIN_MS, 5000).
%% The three exchange sections: option key, the exchange's default name, and
%% whether messages to it are routed by a per-direction topic.
-define(EXCHANGE_SECTIONS, [{presence_exchange, <<"presence">>, no_topics},
                            {chat_msg_exchange, <<"chat_msg">>, topics},
                            {groupchat_msg_exchange, <<"groupchat_msg">>, topics}]).

%%--------------------------------------------------------------------
%% gen_mod callbacks
%%--------------------------------------------------------------------

%% @doc Acquires the pool and declares the configured exchanges; a failure
%% releases the pool and fails the start (MongooseIM: creating_exchanges_failed).
%% (ours) A broker that cannot be reached is not a failure: the start goes on
%% (a warning is logged) and the pool declares the exchanges on its first
%% connection, before it publishes; MongooseIM's node does not boot then.
-spec start(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
start(HostType, Opts) ->
    case exchanges(Opts) of
        [] ->
            %% Nothing to declare or publish: no pool needed (as MongooseIM).
            ok;
        Exchanges ->
            persistent_term:put(wire_key(HostType), wire_options(Opts)),
            start_with_pool(HostType, Exchanges)
    end.

-spec start_with_pool(mongooseim:host_type(), [{exchange_key(), exchange_opts()}]) -> ok.
start_with_pool(HostType, Exchanges) ->
    {Pool, Scope} = acquire_pool(HostType, Exchanges),
    case declare_exchanges(Pool, Exchanges) of
        ok ->
            persistent_term:put(ctx_key(HostType), {Scope, ?POOL_TAG});
        {error, Failures} ->
            mongoose_event_pusher_pool_hold:release(?MODULE, HostType),
            error(#{what => creating_exchanges_failed, host_type => HostType,
                    failures => Failures})
    end.

-spec stop(mongooseim:host_type()) -> ok.
stop(HostType) ->
    mongoose_event_pusher_pool_hold:release(?MODULE, HostType),
    _ = persistent_term:erase(ctx_key(HostType)),
    _ = persistent_term:erase(wire_key(HostType)),
    ok.

-spec hooks(mongooseim:host_type()) -> [gen_hook:hook_tuple()].
hooks(HostType) ->
    [{push_event, HostType, fun ?MODULE:push_event/3, #{}, 50}].

-spec supported_features() -> [atom()].
supported_features() ->
    [dynamic_domains].

-spec config_spec() -> mongoose_config_spec:config_section().
config_spec() ->
    Sections = [{atom_to_binary(Key, utf8), exchange_section(DefaultName, Routing)}
                || {Key, DefaultName, Routing} <- ?EXCHANGE_SECTIONS],
    %% (ours, opt-in, no defaults: without them the options are MongooseIM's)
    Wire = [{<<"event_properties">>, #option{type = boolean}},
            {<<"persistent">>, #option{type = boolean}},
            {<<"mandatory">>, #option{type = boolean}},
            {<<"unroutable_retry_time_ms">>,
             #option{type = integer, validate = non_negative}}],
    %% (ours) the pool's disk spool: doc/durability.md
    Spool = {<<"spool">>, mongoose_event_pusher_spool:config_spec()},
    #section{items = maps:from_list([Spool | Sections ++ Wire])}.

%%--------------------------------------------------------------------
%% Hook handler
%%--------------------------------------------------------------------

-spec push_event(mod_event_pusher:push_event_acc(), mod_event_pusher:push_event_params(),
                 map()) -> {ok, mod_event_pusher:push_event_acc()}.
push_event(HookAcc, #{event := Event}, #{host_type := HostType}) ->
    case exchange_key(Event) of
        skip ->
            ok;
        Key ->
            case gen_mod:lookup_module_opt(HostType, ?MODULE, Key) of
                {ok, ExchangeOpts} ->
                    publish(HostType, Event, maps:get(metadata, HookAcc, #{}), ExchangeOpts);
                {error, not_found} ->
                    ok
            end
    end,
    {ok, HookAcc}.

%%--------------------------------------------------------------------
%% Pool results and events
%%--------------------------------------------------------------------

%% @doc One outcome of a publish: accepted by the broker (with confirms: acked;
%% without: written), nacked, unconfirmed in time, failed, or given up.
-spec handle_pool_result(ctx(), Outcome) -> ok when
      Outcome :: {published, non_neg_integer(), binary()}
               | {error, binary(), non_neg_integer(), binary()}
               | {dropped, atom()}.
handle_pool_result(Ctx, {published, TimeUs, Payload}) ->
    published(Ctx, #{count => 1, time => TimeUs, size => byte_size(Payload),
                     payload => Payload});
%% A failed attempt carries its message, as MongooseIM's `failed'/`timeout'
%% measurements do.
handle_pool_result(Ctx, {error, <<"confirm_timeout">> = Reason, _TimeUs, Payload}) ->
    ?LOG_ERROR((log_meta(Ctx))#{what => rabbit_message_sent_failed, reason => Reason,
                                text => <<"The broker did not confirm a message in time">>}),
    published(Ctx, #{timeout => 1, payload => Payload});
handle_pool_result(Ctx, {error, Reason, _TimeUs, Payload}) ->
    ?LOG_WARNING((log_meta(Ctx))#{what => rabbit_message_sent_failed, reason => Reason}),
    published(Ctx, #{failed => 1, payload => Payload});
handle_pool_result(Ctx, {dropped, Reason}) ->
    dropped(Ctx, Reason).

%% @doc A pool-level event: one of the pool's AMQP connections opened, closed
%% or failed to open.
-spec handle_pool_event(ctx(), {connection, opened | closed | {failed, binary()}}
                              | {unroutable, pos_integer(), binary(), binary(), binary()}) -> ok.
handle_pool_event(Ctx, {connection, opened}) ->
    ?LOG_INFO((log_meta(Ctx))#{what => rabbit_connection_established}),
    connections(Ctx, #{active => 1, opened => 1});
handle_pool_event(Ctx, {connection, closed}) ->
    %% A stop closes every connection too: not worth a warning. A lost
    %% connection shows as failed attempts (warnings) while it cannot reopen.
    ?LOG_INFO((log_meta(Ctx))#{what => rabbit_connection_closed}),
    connections(Ctx, #{active => -1, closed => 1});
handle_pool_event(Ctx, {connection, {failed, Reason}}) ->
    ?LOG_WARNING((log_meta(Ctx))#{what => rabbit_connection_failed, reason => Reason}),
    connections(Ctx, #{failed => 1});
%% (ours) Mandatory messages the broker returned since the last notice: at
%% most one notice per connection per second, with the first one's route.
handle_pool_event(Ctx, {unroutable, Count, Exchange, RoutingKey, ReplyText}) ->
    ?LOG_WARNING((log_meta(Ctx))#{what => rabbit_messages_unroutable, count => Count,
                                  exchange => Exchange, routing_key => RoutingKey,
                                  reason => ReplyText,
                                  text => <<"No queue took these mandatory messages; "
                                            "they are retried until their retry time ends">>});
handle_pool_event(Ctx, Event) ->
    ?LOG_WARNING((log_meta(Ctx))#{what => rabbit_unknown_pool_event, event => Event}).

%%--------------------------------------------------------------------
%% Config spec
%%--------------------------------------------------------------------

%% One exchange's section, built from {Key, Spec, Default} rows. The topics'
%% defaults derive from the exchange's default name, not from a configured
%% one: MongooseIM behaves so and consumers' bindings rely on it.
-spec exchange_section(binary(), topics | no_topics) -> mongoose_config_spec:config_section().
exchange_section(DefaultName, Routing) ->
    Rows = [{<<"name">>, non_empty_binary(), DefaultName},
            {<<"type">>, non_empty_binary(), <<"topic">>},
            {<<"durable">>, #option{type = boolean}, false}
            | topic_rows(DefaultName, Routing)],
    #section{items = maps:from_list([{Key, Spec} || {Key, Spec, _} <- Rows]),
             defaults = maps:from_list([{Key, Default} || {Key, _, Default} <- Rows])}.

-spec topic_rows(binary(), topics | no_topics) ->
          [{binary(), mongoose_config_spec:config_option(), binary()}].
topic_rows(_DefaultName, no_topics) ->
    [];
topic_rows(DefaultName, topics) ->
    [{<<"sent_topic">>, non_empty_binary(), <<DefaultName/binary, "_sent">>},
     {<<"recv_topic">>, non_empty_binary(), <<DefaultName/binary, "_recv">>}].

-spec non_empty_binary() -> mongoose_config_spec:config_option().
non_empty_binary() ->
    #option{type = binary, validate = non_empty}.

%%--------------------------------------------------------------------
%% Start: pool and exchanges
%%--------------------------------------------------------------------

%% Without the pool no exchange can be declared: the start fails as
%% MongooseIM's does then, each configured exchange failed with
%% `pool_not_started' (or why the configured pool could not start).
-spec acquire_pool(mongooseim:host_type(), [{exchange_key(), exchange_opts()}]) ->
          {mongoose_event_pusher_pool_owner:pool_ref(), global | mongooseim:host_type()}.
acquire_pool(HostType, Exchanges) ->
    case mongoose_event_pusher_pool_hold:acquire(?MODULE, rabbit, HostType, ?POOL_TAG) of
        {ok, Pool, Scope} ->
            {Pool, Scope};
        {error, Reason} ->
            mongoose_event_pusher_pool_hold:release(?MODULE, HostType),
            Why = case Reason of
                      #{what := event_pusher_pool_not_found} -> pool_not_started;
                      _ -> Reason
                  end,
            error(#{what => creating_exchanges_failed, host_type => HostType,
                    pool => <<"outgoing_pools.rabbit.event_pusher">>,
                    failures => maps:from_list([{Key, #{name => Name, reason => Why}}
                                                || {Key, #{name := Name}} <- Exchanges])})
    end.

%% The configured exchanges, in a fixed order.
-spec exchanges(gen_mod:module_opts()) -> [{exchange_key(), exchange_opts()}].
exchanges(Opts) ->
    [{Key, maps:get(Key, Opts)}
     || {Key, _DefaultName, _Routing} <- ?EXCHANGE_SECTIONS, maps:is_key(Key, Opts)].

-spec declare_exchanges(mongoose_event_pusher_pool_owner:pool_ref(),
                        [{exchange_key(), exchange_opts()}, ...]) -> ok | {error, failures()}.
declare_exchanges(Pool, Exchanges) ->
    %% Two keys may name the same exchange: declared once (a different type
    %% for the same name is the broker's to refuse).
    Declarations = lists:usort([{Name, Type, Durable}
                                || {_, #{name := Name, type := Type, durable := Durable}}
                                       <- Exchanges]),
    Ref = make_ref(),
    ok = mongoose_event_pusher_nif:rabbit_declare_exchanges(Pool, Ref, Declarations,
                                                            ?DECLARE_TIMEOUT_MS),
    receive
        {mongoose_event_pusher_nif, declared, Ref, ok} ->
            ok;
        {mongoose_event_pusher_nif, declared, Ref, {pending, Reason}} ->
            ?LOG_WARNING(#{what => rabbit_exchanges_declared_on_connect, reason => Reason,
                           exchanges => [Name || {Name, _, _} <- Declarations],
                           text => <<"The broker cannot be reached: the exchanges are "
                                     "declared when the pool connects">>}),
            ok;
        {mongoose_event_pusher_nif, declared, Ref, {error, Errors}} ->
            {error, failures(Exchanges, Errors)}
    after ?DECLARE_TIMEOUT_MS + ?DECLARE_MARGIN_MS ->
            {error, failures(Exchanges, [{Name, timeout} || {Name, _, _} <- Declarations])}
    end.

%% The broker's reason for each configured exchange whose declaration failed.
-spec failures([{exchange_key(), exchange_opts()}], [{binary(), term()}]) -> failures().
failures(Exchanges, Errors) ->
    maps:from_list([{Key, #{name => Name, reason => Reason}}
                    || {Key, #{name := Name}} <- Exchanges,
                       {FailedName, Reason} <- Errors, FailedName =:= Name]).

%%--------------------------------------------------------------------
%% Publishing
%%--------------------------------------------------------------------

-spec exchange_key(mod_event_pusher:event()) -> exchange_key() | skip.
exchange_key(Event) when is_record(Event, user_status_event) ->
    presence_exchange;
exchange_key(#chat_event{type = MessageType}) ->
    %% Other message types (normal, headline) are not pushed to RabbitMQ.
    proplists:get_value(MessageType, [{chat, chat_msg_exchange},
                                      {groupchat, groupchat_msg_exchange}], skip);
exchange_key(_OtherEvent) ->
    skip.

-spec publish(mongooseim:host_type(), #user_status_event{} | #chat_event{},
              mod_event_pusher:metadata(), exchange_opts()) -> ok.
publish(HostType, Event, Metadata, ExchangeOpts = #{name := Exchange}) ->
    case fields(Event) of
        skip ->
            ok;
        Fields ->
            RoutingKey = routing_key(Event, ExchangeOpts),
            submit(HostType, {Exchange, RoutingKey, Fields, Metadata})
    end.

%% The body's fields (the pool writes them as JSON with the metadata merged).
-spec fields(#user_status_event{} | #chat_event{}) -> [{atom(), binary() | boolean()}] | skip.
fields(#user_status_event{jid = Jid, status = Status}) ->
    [{user_id, full_jid(Jid)}, {present, Status =:= online}];
fields(#chat_event{from = From, to = To, packet = Packet}) ->
    case exml_query:path(Packet, [{element, <<"body">>}, cdata]) of
        undefined ->
            skip; % e.g. chat markers and chat states
        Body ->
            [{from_user_id, full_jid(From)}, {to_user_id, full_jid(To)}, {message, Body}]
    end.

-spec routing_key(#user_status_event{} | #chat_event{}, exchange_opts()) -> binary().
%% Presence goes by the user's bare JID alone; a message by its local user's
%% bare JID and the topic of its direction (sent by them, or received).
routing_key(#user_status_event{jid = Jid}, _Opts) ->
    bare_jid(Jid);
routing_key(#chat_event{direction = Direction, from = From, to = To}, Opts) ->
    {LocalUser, TopicOpt} = case Direction of
                                in -> {From, sent_topic};
                                out -> {To, recv_topic}
                            end,
    iolist_to_binary([bare_jid(LocalUser), $., maps:get(TopicOpt, Opts)]).

-spec full_jid(jid:jid()) -> binary().
full_jid(Jid) ->
    jid:to_binary(jid:to_lower(Jid)).

-spec bare_jid(jid:jid()) -> binary().
bare_jid(Jid) ->
    jid:to_binary(jid:to_lus(Jid)).

%% (ours) `{EventProperties, Persistent, false | RetryMs}' for the NIF, or
%% `none' when no wire option is set: the message then goes out as MongooseIM's.
-spec wire_options(gen_mod:module_opts()) -> none | {boolean(), boolean(), false | non_neg_integer()}.
wire_options(Opts) ->
    Properties = maps:get(event_properties, Opts, false),
    Persistent = maps:get(persistent, Opts, false),
    Mandatory = case maps:get(mandatory, Opts, false) of
                    true -> maps:get(unroutable_retry_time_ms, Opts, ?UNROUTABLE_RETRY_TIME_MS);
                    false -> false
                end,
    case {Properties, Persistent, Mandatory} of
        {false, false, false} -> none;
        Wire -> Wire
    end.

%% Hands the message to the pool: O(1), never waits. A full queue or a closed
%% pool is counted as a failed publish and logged.
-spec submit(mongooseim:host_type(), {binary(), binary(), list(), map()}) -> ok.
submit(HostType, {Exchange, RoutingKey, Fields, Metadata}) ->
    Ctx = persistent_term:get(ctx_key(HostType), {global, ?POOL_TAG}),
    Pool = mongoose_event_pusher_pool_hold:pool(rabbit, HostType, ?POOL_TAG),
    Result = case Pool of
                 undefined ->
                     {error, pool_not_started};
                 _ ->
                     try
                         mongoose_event_pusher_nif:rabbit_publish(
                           Pool, message({?MODULE, Ctx}, Exchange, RoutingKey, Fields,
                                         Metadata, persistent_term:get(wire_key(HostType), none)))
                     catch
                         %% Metadata a JSON body cannot hold (e.g. a nested
                         %% map from a user module), or a routing key longer
                         %% than AMQP's 255 bytes.
                         error:badarg -> {error, invalid_message}
                     end
             end,
    case Result of
        ok ->
            ok;
        {error, Reason} ->
            mongoose_event_pusher_drop_log:log(
              warning, {?MODULE, Ctx},
              (log_meta(Ctx))#{what => event_pusher_rabbit_dropped, reason => Reason,
                                          host_type => HostType, exchange => Exchange,
                                          routing_key => RoutingKey,
                                          text => <<"An event was not queued for RabbitMQ">>}),
            published(Ctx, #{failed => 1})
    end.

-spec message(term(), binary(), binary(), list(), map(), none | tuple()) -> tuple().
message(Tag, Exchange, RoutingKey, Fields, Metadata, none) ->
    {Tag, Exchange, RoutingKey, Fields, Metadata};
message(Tag, Exchange, RoutingKey, Fields, Metadata, Wire) ->
    {Tag, Exchange, RoutingKey, Fields, Metadata, Wire}.

%%--------------------------------------------------------------------
%% Instrumentation and logs
%%--------------------------------------------------------------------

%% Each failed attempt of a message given up after its retries was reported
%% already; a message dropped by a closing pool may have had none, so that
%% one counts as failed.
-spec dropped(ctx(), atom()) -> ok.
dropped(Ctx, Reason) ->
    mongoose_event_pusher_drop_log:log(
      warning, {?MODULE, Ctx},
      (log_meta(Ctx))#{what => event_pusher_rabbit_dropped, reason => Reason,
                       text => <<"The RabbitMQ pool gave up a message">>}),
    case Reason of
        retries_exhausted -> ok;
        _ -> published(Ctx, #{failed => 1})
    end.

%% MongooseIM's events of the rabbit wpool (mongoose_wpool_rabbit declares
%% them when the pool starts): `wpool_global_rabbit_*' for a global pool,
%% `wpool_rabbit_*' with a host_type label for a host type's pool.
-spec published(ctx(), mongoose_instrument:measurements()) -> ok.
published({global, _} = Ctx, Measurements) ->
    execute(wpool_global_rabbit_messages_published, Ctx, Measurements);
published(Ctx, Measurements) ->
    execute(wpool_rabbit_messages_published, Ctx, Measurements).

-spec connections(ctx(), mongoose_instrument:measurements()) -> ok.
connections({global, _} = Ctx, Measurements) ->
    execute(wpool_global_rabbit_connections, Ctx, Measurements);
connections(Ctx, Measurements) ->
    execute(wpool_rabbit_connections, Ctx, Measurements).

-spec execute(mongoose_instrument:event_name(), ctx(), mongoose_instrument:measurements()) -> ok.
execute(Event, Ctx, Measurements) ->
    mongoose_event_pusher_pool_owner:instrument(Event, labels(Ctx), Measurements).

-spec labels(ctx()) -> mongoose_instrument:labels().
labels({global, Tag}) -> #{pool_tag => Tag};
labels({HostType, Tag}) -> #{pool_tag => Tag, host_type => HostType}.

-spec log_meta(ctx()) -> map().
log_meta({Scope, Tag}) ->
    #{pool_scope => Scope, pool_tag => Tag}.

-spec ctx_key(mongooseim:host_type()) -> {module(), mongooseim:host_type()}.
ctx_key(HostType) ->
    {?MODULE, HostType}.

-spec wire_key(mongooseim:host_type()) -> {module(), wire, mongooseim:host_type()}.
wire_key(HostType) ->
    {?MODULE, wire, HostType}.
