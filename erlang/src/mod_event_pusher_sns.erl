%% @doc The sns backend of the event pusher: presence changes and chat and
%% groupchat messages sent by local users become notifications on AWS SNS
%% topics (doc/compatibility.md §6).
%%
%% The plugin module (user GUIDs, message attributes) runs here, in the
%% calling process; the notification is then handed to this host type's Rust
%% SNS pool and the hook returns at once: publishing, batching and retries
%% happen in Rust, and their results come back to the pool's owner, which
%% calls handle_pool_result/2 here (instrumentation events and logs).
%%
%% SNS takes its connection options from this module, not from
%% `outgoing_pools': each host type has its own pool, built from them by
%% `mongoose_event_pusher_nif_config'.
-module(mod_event_pusher_sns).

%% No `-behaviour(gen_mod)': see mod_event_pusher.

-include("mongoose.hrl").
-include("mongoose_config_spec.hrl").
-include("mod_event_pusher_events.hrl").

%% The push_event handler, what became of its notifications (called by
%% mongoose_event_pusher_pool_owner), the pool's counters, and the gen_mod
%% callbacks
-export([push_event/3, handle_pool_result/2, stats/1,
         start/2, stop/1, hooks/1, config_spec/0, instrumentation/1, supported_features/0]).

-callback user_guid(UserJID :: jid:jid()) -> user_guid().
-callback message_attributes(TopicARN :: topic_arn(), UserJID :: jid:jid(),
                             IsOnline :: boolean()) -> attributes().
-callback message_attributes(TopicARN :: topic_arn(), From :: jid:jid(), To :: jid:jid(),
                             MessageType :: message_type(), Packet :: exml:element()) ->
    attributes().
%% (ours) The event's ID (36 bytes, a UUIDv7; the same on every retry, and
%% SNS's `MessageDeduplicationId' on a FIFO topic): attributes to add to the
%% notification's (they win on a name clash). Without it the ID is not in
%% the notification on a standard topic (doc/sns.md).
-callback event_id_attributes(TopicARN :: topic_arn(), EventId :: binary()) -> attributes().
-optional_callbacks([event_id_attributes/2]).

%% What plugins return as a user's id; a charlist is sent as its UTF-8 text.
-type user_guid() :: binary() | string().
%% `arn:aws:sns:<region>:<account_id>:<topic>', a string as in MongooseIM.
-type topic_arn() :: string().
%% The `<topic>' part of an ARN, as configured.
-type topic() :: string().
-type message_type() :: pm | muc.
%% SNS message attributes by name: a charlist value is a `String', a binary a
%% `Binary', a number a `Number'.
-type attributes() :: #{string() | binary() => string() | binary() | number()}.
-export_type([user_guid/0, topic_arn/0, topic/0, message_type/0, attributes/0]).

%% Context of one notification, carried by the Rust pool with it.
-type ctx() :: #{host_type := mongooseim:host_type(), topic_arn := binary()}.
-type outcome() :: {published, TimeUs :: non_neg_integer(), Payload :: binary()}
                 | {error, Reason :: binary(), TimeUs :: non_neg_integer()}
                 | {dropped, atom()}.
-type attribute() :: mongoose_event_pusher_nif:sns_attribute().

-define(METRIC, mod_event_pusher_sns_published).
%% The pool's tag (MongooseIM names its SNS worker pool so).
-define(POOL_TAG, pusher_sns).
%% The owner's process dictionary: the pool's `requests' counter as last
%% reported, to emit the increase.
-define(REQUESTS_SEEN, {?MODULE, requests_seen}).

%%--------------------------------------------------------------------
%% gen_mod callbacks
%%--------------------------------------------------------------------

%% @doc Starts this host type's SNS pool; fails, naming the host type and
%% the reason (never the options), if the Rust pool does not start.
-spec start(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
start(HostType, _Opts) ->
    case mongoose_event_pusher_pool_hold:acquire(?MODULE, sns, HostType, ?POOL_TAG) of
        {ok, _Pool, _Scope} ->
            ok;
        {error, Error} ->
            mongoose_event_pusher_pool_hold:release(?MODULE, HostType),
            Reason = case Error of
                         #{what := event_pusher_pool_start_failed, reason := R} -> R;
                         _ -> Error
                     end,
            error(#{what => event_pusher_sns_pool_start_failed, host_type => HostType,
                    reason => Reason})
    end.

%% @doc Stops the pool after it delivered what it holds (bounded drain).
-spec stop(mongooseim:host_type()) -> ok.
stop(HostType) ->
    mongoose_event_pusher_pool_hold:release(?MODULE, HostType).

%% @doc (ours) `mod_event_pusher_sns_published': `count' and `time' (µs) for
%% each notification SNS accepted, `failed' for each failed attempt,
%% `dropped' for each notification given up, `requests' for the HTTP
%% requests made to SNS (a batch of up to 10 notifications is one).
-spec instrumentation(mongooseim:host_type()) -> [mongoose_instrument:spec()].
instrumentation(HostType) ->
    [{?METRIC, #{host_type => HostType},
      #{metrics => #{count => spiral, time => histogram, failed => spiral,
                     dropped => spiral, requests => spiral}}}].

-spec hooks(mongooseim:host_type()) -> [gen_hook:hook_tuple()].
hooks(HostType) ->
    [{push_event, HostType, fun ?MODULE:push_event/3, #{}, 50}].

%% @doc MongooseIM's options (string values stay strings), with the five
%% connection options non-empty, plus `publish_batching' (ours, a boolean
%% without a config default so that MongooseIM's configs keep their
%% processed options; absent means true).
-spec config_spec() -> mongoose_config_spec:config_section().
config_spec() ->
    Required = [<<"sns_host">>, <<"region">>, <<"access_key_id">>, <<"secret_access_key">>,
                <<"account_id">>],
    Topics = [<<"presence_updates_topic">>, <<"pm_messages_topic">>, <<"muc_messages_topic">>],
    Items = maps:from_list(
              [{Key, #option{type = string}} || Key <- Topics] ++
              [{Key, #option{type = string, validate = non_empty}} || Key <- Required] ++
              [{<<"plugin_module">>, #option{type = atom, validate = module}},
               {<<"pool_size">>, #option{type = integer, validate = positive}},
               {<<"publish_retry_count">>, #option{type = integer, validate = non_negative}},
               {<<"publish_retry_time_ms">>, #option{type = integer, validate = non_negative}},
               {<<"publish_batching">>, #option{type = boolean}},
               %% (ours) the pool's disk spool: doc/durability.md
               {<<"spool">>, mongoose_event_pusher_spool:config_spec()}]),
    #section{items = Items,
             required = Required,
             defaults = #{<<"plugin_module">> => mod_event_pusher_sns_defaults,
                          <<"pool_size">> => 100,
                          <<"publish_retry_count">> => 2,
                          <<"publish_retry_time_ms">> => 50}}.

-spec supported_features() -> [atom()].
supported_features() ->
    [dynamic_domains].

%%--------------------------------------------------------------------
%% Hook handler
%%--------------------------------------------------------------------

%% @doc Presence changes and `in' chat and groupchat messages with a body
%% are published when their topic is configured; everything else is skipped.
%% A failing plugin is logged and counted as a dropped notification.
-spec push_event(mod_event_pusher:push_event_acc(), mod_event_pusher:push_event_params(),
                 map()) -> {ok, mod_event_pusher:push_event_acc()}.
push_event(HookAcc, #{event := Event}, #{host_type := HostType}) ->
    %% Only what a notification needs: the credentials stay out of every
    %% stack frame (and so out of any crash report) on this path.
    Opts = maps:with([presence_updates_topic, pm_messages_topic, muc_messages_topic,
                      plugin_module, region, account_id],
                     gen_mod:get_module_opts(HostType, ?MODULE)),
    try
        handle_event(HostType, Opts, Event, maps:get(metadata, HookAcc, #{}))
    catch
        Class:Reason:Stacktrace ->
            ?LOG_ERROR(#{what => sns_notification_failed, host_type => HostType,
                         plugin_module => maps:get(plugin_module, Opts, undefined),
                         class => Class, reason => Reason, stacktrace => Stacktrace,
                         text => <<"mod_event_pusher_sns could not build a notification">>}),
            count_dropped(HostType)
    end,
    {ok, HookAcc}.

%%--------------------------------------------------------------------
%% Pool results
%%--------------------------------------------------------------------

%% @doc Reports one outcome of a notification: accepted by SNS, one failed
%% attempt (retried in Rust while retries remain), or given up.
-spec handle_pool_result(ctx(), outcome()) -> ok.
handle_pool_result(#{host_type := HostType}, {published, TimeUs, _Payload}) ->
    execute(HostType, #{count => 1, time => TimeUs}),
    report_requests(HostType);
handle_pool_result(Ctx = #{host_type := HostType}, {error, Reason, _TimeUs}) ->
    ?LOG_WARNING((log_meta(Ctx))#{what => sns_publish_failed, reason => Reason,
                                  text => <<"An SNS publish attempt failed">>}),
    execute(HostType, #{failed => 1}),
    report_requests(HostType);
handle_pool_result(Ctx, {dropped, Reason}) ->
    dropped(Ctx, Reason).

%% @doc The counters of HostType's pool (the NIF's, plus `requests').
-spec stats(mongooseim:host_type()) -> {ok, map()} | {error, not_started}.
stats(HostType) ->
    case mongoose_event_pusher_pool_hold:pool(sns, HostType, ?POOL_TAG) of
        undefined -> {error, not_started};
        Pool -> {ok, mongoose_event_pusher_nif:pool_stats(Pool)}
    end.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec handle_event(mongooseim:host_type(), gen_mod:module_opts(), mod_event_pusher:event(),
                   mod_event_pusher:metadata()) -> ok.
handle_event(HostType, Opts, #user_status_event{jid = UserJID, status = Status}, Metadata) ->
    case Opts of
        #{presence_updates_topic := Topic, plugin_module := Plugin} ->
            IsOnline = Status =:= online,
            TopicARN = topic_arn(Opts, Topic),
            Fields = #{user_id => user_guid(Plugin, UserJID), present => IsOnline},
            EventId = mongoose_event_pusher_event_id:new(),
            Attributes = with_event_id(Plugin, TopicARN, EventId,
                                       Plugin:message_attributes(TopicARN, UserJID, IsOnline)),
            publish(HostType, TopicARN, Fields, Metadata, Attributes, {EventId, UserJID});
        #{} ->
            ok
    end;
handle_event(HostType, Opts, #chat_event{direction = in, from = From, to = To, packet = Packet},
             Metadata) ->
    MessageType = message_type(Packet),
    case {topic(MessageType, Opts), exml_query:subelement(Packet, <<"body">>)} of
        {undefined, _} ->
            ok;
        {_, undefined} ->
            ok;
        {Topic, BodyEl} ->
            #{plugin_module := Plugin} = Opts,
            TopicARN = topic_arn(Opts, Topic),
            Fields = #{from_user_id => user_guid(Plugin, From),
                       to_user_id => user_guid(Plugin, To),
                       message => exml_query:cdata(BodyEl)},
            EventId = mongoose_event_pusher_event_id:new(),
            Attributes = with_event_id(Plugin, TopicARN, EventId,
                                       Plugin:message_attributes(TopicARN, From, To,
                                                                 MessageType, Packet)),
            %% The sender is the local user (direction `in').
            publish(HostType, TopicARN, Fields, Metadata, Attributes, {EventId, From})
    end;
handle_event(_HostType, _Opts, _Event, _Metadata) ->
    ok.

%% As MongooseIM decides it: from the stanza's type, not the event's.
-spec message_type(exml:element()) -> message_type() | undefined.
message_type(Packet) ->
    StanzaType = exml_query:attr(Packet, <<"type">>, <<>>),
    maps:get(StanzaType, #{<<"chat">> => pm, <<"groupchat">> => muc}, undefined).

-spec topic(message_type() | undefined, gen_mod:module_opts()) -> topic() | undefined.
topic(pm, #{pm_messages_topic := Topic}) -> Topic;
topic(muc, #{muc_messages_topic := Topic}) -> Topic;
topic(_, _Opts) -> undefined.

-spec topic_arn(gen_mod:module_opts(), topic()) -> topic_arn().
topic_arn(#{region := Region, account_id := AccountId}, Topic) ->
    lists:append(["arn:aws:sns:", Region, ":", AccountId, ":", Topic]).

%% A charlist GUID (MongooseIM's plugins may return one) goes into the JSON
%% as its text.
-spec user_guid(module(), jid:jid()) -> binary() | term().
user_guid(Plugin, JID) ->
    case Plugin:user_guid(JID) of
        GUID when is_list(GUID) -> unicode:characters_to_binary(GUID);
        GUID -> GUID
    end.

%%--------------------------------------------------------------------
%% Publishing
%%--------------------------------------------------------------------

%% (ours) The plugin's attributes for the event's ID, if it has the callback.
-spec with_event_id(module(), topic_arn(), binary(), attributes()) -> attributes().
with_event_id(Plugin, TopicARN, EventId, Attributes) ->
    case erlang:function_exported(Plugin, event_id_attributes, 2) of
        true -> maps:merge(Attributes, Plugin:event_id_attributes(TopicARN, EventId));
        false -> Attributes
    end.

%% Queues one notification in HostType's pool and returns at once. A
%% notification the pool does not take (overloaded, closed, not started) is
%% logged and counted as dropped. The user's bare JID is the
%% `MessageGroupId' on a FIFO topic (the Rust pool decides by the ARN).
-spec publish(mongooseim:host_type(), topic_arn(), map(),
              mod_event_pusher:metadata(), attributes(), {binary(), jid:jid()}) -> ok.
publish(HostType, TopicARN, Fields, Metadata, Attributes, {EventId, UserJID}) ->
    ArnBin = unicode:characters_to_binary(TopicARN),
    Ctx = #{host_type => HostType, topic_arn => ArnBin},
    case mongoose_event_pusher_pool_hold:pool(sns, HostType, ?POOL_TAG) of
        undefined ->
            dropped(Ctx, pool_not_started);
        Pool ->
            Job = {{?MODULE, Ctx}, ArnBin, Fields, Metadata, encode_attributes(Ctx, Attributes),
                   EventId, jid:to_bare_binary(UserJID)},
            case mongoose_event_pusher_nif:sns_publish(Pool, Job) of
                ok -> ok;
                {error, Reason} -> dropped(Ctx, Reason)
            end
    end.

%% Counts a notification given up before it reached the pool (the
%% caller logged why).
-spec count_dropped(mongooseim:host_type()) -> ok.
count_dropped(HostType) ->
    execute(HostType, #{dropped => 1}).

%% Attribute values typed as MongooseIM's SNS client (erlcloud) types them:
%% a charlist is a String, a binary a Binary, a number a Number. Anything
%% else is left out with a warning rather than failing the notification.
-spec encode_attributes(ctx(), attributes()) -> [attribute()].
encode_attributes(Ctx, Attributes) ->
    lists:filtermap(fun({Name, Value}) -> encode_attribute(Ctx, Name, Value) end,
                    lists:sort(maps:to_list(Attributes))).

-spec encode_attribute(ctx(), term(), term()) -> {true, attribute()} | false.
encode_attribute(Ctx, Name, Value) ->
    case {text(Name), typed_value(Value)} of
        {NameBin, {_Type, _Bin} = Typed} when is_binary(NameBin) ->
            {true, {NameBin, Typed}};
        _ ->
            ?LOG_WARNING((log_meta(Ctx))#{what => sns_message_attribute_invalid,
                                          name => Name, value => Value,
                                          text => <<"The plugin's message attribute is left out: "
                                                    "names are strings, values strings, "
                                                    "binaries or numbers">>}),
            false
    end.

-spec typed_value(term()) -> {string | binary | number, binary()} | error.
typed_value(Value) when is_binary(Value) ->
    {binary, Value};
typed_value(Value) when is_integer(Value) ->
    {number, integer_to_binary(Value)};
typed_value(Value) when is_float(Value) ->
    {number, float_to_binary(Value, [short])};
typed_value(Value) when is_list(Value) ->
    case text(Value) of
        Bin when is_binary(Bin) -> {string, Bin};
        error -> error
    end;
typed_value(_Value) ->
    error.

-spec text(term()) -> binary() | error.
text(Bin) when is_binary(Bin) ->
    Bin;
text(List) when is_list(List) ->
    try unicode:characters_to_binary(List) of
        Bin when is_binary(Bin) -> Bin;
        _ -> error
    catch
        error:badarg -> error
    end;
text(_) ->
    error.

-spec dropped(ctx(), atom()) -> ok.
dropped(Ctx = #{host_type := HostType}, Reason) ->
    mongoose_event_pusher_drop_log:log(
      warning, {?MODULE, HostType},
      (log_meta(Ctx))#{what => sns_notification_dropped, reason => Reason,
                       text => <<"mod_event_pusher_sns gave up a notification">>}),
    count_dropped(HostType).

-spec log_meta(ctx()) -> map().
log_meta(#{host_type := HostType, topic_arn := TopicARN}) ->
    #{host_type => HostType, topic_arn => TopicARN}.

%% Runs in the owner process: the pool's request counter is read as results
%% arrive (every request ends in at least one result) and its increase
%% emitted, so `requests' needs no message of its own from Rust.
-spec report_requests(mongooseim:host_type()) -> ok.
report_requests(HostType) ->
    case stats(HostType) of
        {ok, Stats} ->
            Requests = maps:get(requests, Stats, 0),
            Seen = case get(?REQUESTS_SEEN) of
                       undefined -> 0;
                       N -> N
                   end,
            case Requests > Seen of
                true ->
                    put(?REQUESTS_SEEN, Requests),
                    execute(HostType, #{requests => Requests - Seen});
                false ->
                    ok
            end;
        {error, not_started} ->
            ok
    end.

-spec execute(mongooseim:host_type(), mongoose_instrument:measurements()) -> ok.
execute(HostType, Measurements) ->
    mongoose_event_pusher_pool_owner:instrument(?METRIC, #{host_type => HostType}, Measurements).
