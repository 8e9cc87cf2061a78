%% @doc Push plugin for clients using stream management: a message left
%% unacknowledged by a session in resume state notifies, at once, the
%% service that very session enabled. Other events go to the defaults plugin.
-module(mod_event_pusher_push_plugin_enhanced).
-behaviour(mod_event_pusher_push_plugin).

-include("mod_event_pusher_events.hrl").

-export([should_publish/3]).

-spec should_publish(mongoose_acc:t(), mod_event_pusher:event(),
                     [mod_event_pusher_push:publish_service()]) ->
          [mod_event_pusher_push:publish_service()].
should_publish(Acc, #unack_msg_event{to = SessionJID}, _StoredServices) ->
    Notified = mongoose_acc:get(event_pusher, published_services, [], Acc),
    case mod_event_pusher_push_sessions:enabled_by(SessionJID) of
        none -> [];
        {ok, Own} -> [Own || not lists:member(Own, Notified)]
    end;
should_publish(Acc, Other, Services) ->
    mod_event_pusher_push_plugin_defaults:should_publish(Acc, Other, Services).
