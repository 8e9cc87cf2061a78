%% @doc The plugin flow of mod_event_pusher_push and the behaviour a plugin
%% implements. Every callback is optional: the configured `plugin_module'
%% answers the callbacks it exports, the defaults plugin the others.
-module(mod_event_pusher_push_plugin).

-include("mongoose.hrl").

-export([init/2, run/3, prepare_notification/2, should_publish/3, publish_notification/4,
         default_plugin_module/0]).

-type push_payload() :: [{binary(), binary()}].
-export_type([push_payload/0]).

-define(FALLBACK, mod_event_pusher_push_plugin_defaults).

%% Builds the notification's fields, or `skip' to send nothing.
-callback prepare_notification(Acc :: mongoose_acc:t(), Event :: mod_event_pusher:event()) ->
    push_payload() | skip.

%% Of the user's enabled services, those to notify.
-callback should_publish(Acc :: mongoose_acc:t(), Event :: mod_event_pusher:event(),
                         Services :: [mod_event_pusher_push:publish_service()]) ->
    [mod_event_pusher_push:publish_service()].

%% Sends the notification to each service (never called with none).
-callback publish_notification(Acc :: mongoose_acc:t(), Event :: mod_event_pusher:event(),
                               Payload :: push_payload(),
                               Services :: [mod_event_pusher_push:publish_service()]) ->
    mongoose_acc:t().

-optional_callbacks([prepare_notification/2, should_publish/3, publish_notification/4]).

%% @doc A plugin that cannot be loaded fails the module's start, naming it.
-spec init(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
init(HostType, Opts) ->
    Plugin = maps:get(plugin_module, Opts),
    case code:ensure_loaded(Plugin) of
        {module, Plugin} ->
            ok;
        {error, Why} ->
            error(#{what => push_plugin_not_loadable, host_type => HostType,
                    plugin_module => Plugin, reason => Why})
    end.

%% @doc The flow of doc/compatibility.md §7 for one event: prepare (`skip' ends it),
%% look up the recipient's services, keep those to notify, publish.
%% (ours) The prepared fields pass the `privacy' options first, so every
%% publish_notification (and what it sends) gets them redacted.
%% `skipped' is counted only for a recipient who enabled some service.
-spec run(mongoose_acc:t(), mod_event_pusher:event(), jid:jid()) -> mongoose_acc:t().
run(Acc, Event, BareRecipient) ->
    HostType = mongoose_acc:host_type(Acc),
    Prepared = redact(HostType, prepare_notification(Acc, Event)),
    Lookup = mod_event_pusher_push_backend:get_publish_services(HostType, BareRecipient),
    case {Prepared, Lookup} of
        {skip, {ok, [_ | _]}} ->
            mod_event_pusher_push:count(HostType, skipped, #{reason => prepare_notification}),
            Acc;
        {skip, _NoneOrUnknown} ->
            Acc;
        {_, {error, Reason}} ->
            ?LOG_ERROR(#{what => push_services_lookup_failed, host_type => HostType,
                         user => jid:to_binary(BareRecipient), reason => Reason}),
            mod_event_pusher_push:count(HostType, failed, #{reason => storage}),
            Acc;
        {Payload, {ok, Enabled}} ->
            %% Called with no stored service too, as in MongooseIM: a plugin
            %% may notify services it finds elsewhere (the enhanced plugin's
            %% session for an unacknowledged message).
            case should_publish(Acc, Event, Enabled) of
                [] when Enabled =:= [] ->
                    Acc;
                [] ->
                    mod_event_pusher_push:count(HostType, skipped, #{reason => no_services}),
                    Acc;
                Chosen ->
                    publish_notification(Acc, Event, Payload, Chosen)
            end
    end.

-spec prepare_notification(mongoose_acc:t(), mod_event_pusher:event()) -> push_payload() | skip.
prepare_notification(Acc, Event) ->
    call(Acc, prepare_notification, [Acc, Event]).

-spec should_publish(mongoose_acc:t(), mod_event_pusher:event(),
                     [mod_event_pusher_push:publish_service()]) ->
          [mod_event_pusher_push:publish_service()].
should_publish(Acc, Event, Services) ->
    call(Acc, should_publish, [Acc, Event, Services]).

%% @doc With no service to notify, no plugin is called.
-spec publish_notification(mongoose_acc:t(), mod_event_pusher:event(), push_payload(),
                           [mod_event_pusher_push:publish_service()]) -> mongoose_acc:t().
publish_notification(Acc, Event, Payload, Services) when Services =/= [] ->
    call(Acc, publish_notification, [Acc, Event, Payload, Services]);
publish_notification(Acc, _Event, _Payload, []) ->
    Acc.

%% The `privacy' options applied to prepared fields.
-spec redact(mongooseim:host_type(), push_payload() | skip) -> push_payload() | skip.
redact(_HostType, skip) ->
    skip;
redact(HostType, Payload) ->
    Opts = gen_mod:get_module_opts(HostType, mod_event_pusher_push),
    mod_event_pusher_push_privacy:redact(maps:get(privacy, Opts, #{body => keep, sender => keep}),
                                         Payload).

-spec default_plugin_module() -> module().
default_plugin_module() ->
    ?FALLBACK.

%% Calls the configured plugin when it exports the callback, else the
%% fallback plugin.
-spec call(mongoose_acc:t(), atom(), [term()]) -> term().
call(Acc, Callback, Args) ->
    Opts = gen_mod:get_module_opts(mongoose_acc:host_type(Acc), mod_event_pusher_push),
    Configured = maps:get(plugin_module, Opts),
    Module = case erlang:function_exported(Configured, Callback, length(Args)) of
                 true -> Configured;
                 false -> ?FALLBACK
             end,
    erlang:apply(Module, Callback, Args).
