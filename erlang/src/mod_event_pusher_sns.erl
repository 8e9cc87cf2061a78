%% @doc The sns backend of the event pusher: presence changes and chat and
%% groupchat messages sent by local users become notifications on AWS SNS
%% topics (doc/compatibility.md §6).
%%
%% The plugin module (user GUIDs, message attributes) runs here, in the
%% calling process; the notification is then handed to this host type's Rust
%% SNS pool (`mod_event_pusher_sns_pool') and the hook returns at once:
%% publishing, batching and retries happen in Rust, and their results come
%% back to the pool's owner as instrumentation events and logs.
-module(mod_event_pusher_sns).

%% No `-behaviour(gen_mod)': see mod_event_pusher.

-include("mongoose.hrl").
-include("jlib.hrl").
-include("mongoose_config_spec.hrl").
-include("mod_event_pusher_events.hrl").

%% gen_mod callbacks
-export([start/2, stop/1, hooks/1, config_spec/0, instrumentation/1, supported_features/0]).

%% Hook handler
-export([push_event/3]).

-callback user_guid(UserJID :: jid:jid()) -> user_guid().
-callback message_attributes(TopicARN :: topic_arn(), UserJID :: jid:jid(),
                             IsOnline :: boolean()) -> attributes().
-callback message_attributes(TopicARN :: topic_arn(), From :: jid:jid(), To :: jid:jid(),
                             MessageType :: message_type(), Packet :: exml:element()) ->
    attributes().

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

%%--------------------------------------------------------------------
%% gen_mod callbacks
%%--------------------------------------------------------------------

%% @doc Starts this host type's SNS pool; fails, with the reason, if the Rust
%% pool does not start.
-spec start(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
start(HostType, _Opts) ->
    mod_event_pusher_sns_pool:start(HostType).

%% @doc Stops the pool after it delivered what it holds (bounded drain).
-spec stop(mongooseim:host_type()) -> ok.
stop(HostType) ->
    mod_event_pusher_sns_pool:stop(HostType).

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
               {<<"publish_batching">>, #option{type = boolean}}]),
    #section{items = Items,
             required = Required,
             defaults = #{<<"plugin_module">> => mod_event_pusher_sns_defaults,
                          <<"pool_size">> => 100,
                          <<"publish_retry_count">> => 2,
                          <<"publish_retry_time_ms">> => 50}}.

%% @doc (ours) `mod_event_pusher_sns_published': `count' and `time' (µs) for
%% each notification SNS accepted, `failed' for each failed attempt,
%% `dropped' for each notification given up, `requests' for the HTTP
%% requests made to SNS (a batch of up to 10 notifications is one).
-spec instrumentation(mongooseim:host_type()) -> [mongoose_instrument:spec()].
instrumentation(HostType) ->
    [{mod_event_pusher_sns_pool:metric(), #{host_type => HostType},
      #{metrics => #{count => spiral, time => histogram, failed => spiral,
                     dropped => spiral, requests => spiral}}}].

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
            mod_event_pusher_sns_pool:count_dropped(HostType)
    end,
    {ok, HookAcc}.

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
            Attributes = Plugin:message_attributes(TopicARN, UserJID, IsOnline),
            mod_event_pusher_sns_pool:publish(HostType, TopicARN, Fields, Metadata, Attributes);
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
            Attributes = Plugin:message_attributes(TopicARN, From, To, MessageType, Packet),
            mod_event_pusher_sns_pool:publish(HostType, TopicARN, Fields, Metadata, Attributes)
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
