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
should_publish(Acc, Event, Services) when is_record(Event, unack_msg_event) ->
    session_service(Acc, Event#unack_msg_event.to, Services);
should_publish(Acc, Event, Services) ->
    mod_event_pusher_push_plugin_defaults:should_publish(Acc, Event, Services).

%% The stored services do not matter here: only the one this session
%% enabled, unless this stanza already notified it.
session_service(Acc, SessionJID, _Stored) ->
    Enabled = mod_event_pusher_push_sessions:enabled_by(SessionJID),
    AlreadySent = mongoose_acc:get(event_pusher, published_services, [], Acc),
    [Own || {ok, Own} <- [Enabled], not lists:member(Own, AlreadySent)].
