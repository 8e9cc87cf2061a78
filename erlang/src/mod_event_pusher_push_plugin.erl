%% @doc The plugin flow of mod_event_pusher_push and the behaviour a plugin
%% implements. Every callback is optional: the configured `plugin_module'
%% answers the callbacks it exports, the defaults plugin the others.
-module(mod_event_pusher_push_plugin).

-export([init/2, prepare_notification/2, should_publish/3, publish_notification/4,
         default_plugin_module/0]).

-type push_payload() :: [{binary(), binary()}].
-export_type([push_payload/0]).

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

%% @doc Loads the plugin, so that a misspelt module fails the start.
-spec init(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
init(_HostType, #{plugin_module := PluginModule}) ->
    {module, PluginModule} = code:ensure_loaded(PluginModule),
    ok.

-spec prepare_notification(mongoose_acc:t(), mod_event_pusher:event()) -> push_payload() | skip.
prepare_notification(Acc, Event) ->
    (plugin(Acc, prepare_notification, 2)):prepare_notification(Acc, Event).

-spec should_publish(mongoose_acc:t(), mod_event_pusher:event(),
                     [mod_event_pusher_push:publish_service()]) ->
          [mod_event_pusher_push:publish_service()].
should_publish(Acc, Event, Services) ->
    (plugin(Acc, should_publish, 3)):should_publish(Acc, Event, Services).

%% @doc An empty list of services publishes nothing and calls no plugin.
-spec publish_notification(mongoose_acc:t(), mod_event_pusher:event(), push_payload(),
                           [mod_event_pusher_push:publish_service()]) -> mongoose_acc:t().
publish_notification(Acc, _Event, _Payload, []) ->
    mod_event_pusher_push:count(mongoose_acc:host_type(Acc), skipped, #{reason => no_services}),
    Acc;
publish_notification(Acc, Event, Payload, Services) ->
    (plugin(Acc, publish_notification, 4)):publish_notification(Acc, Event, Payload, Services).

-spec default_plugin_module() -> module().
default_plugin_module() ->
    mod_event_pusher_push_plugin_defaults.

%% The configured plugin if it exports Name/Arity, else the defaults.
-spec plugin(mongoose_acc:t(), atom(), arity()) -> module().
plugin(Acc, Name, Arity) ->
    Module = gen_mod:get_module_opt(mongoose_acc:host_type(Acc), mod_event_pusher_push,
                                    plugin_module),
    case erlang:function_exported(Module, Name, Arity) of
        true -> Module;
        false -> default_plugin_module()
    end.
