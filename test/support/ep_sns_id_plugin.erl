%% @doc A `plugin_module' for mod_event_pusher_sns tests that puts the
%% event's ID in a message attribute of its own (`event_pusher_id'), through
%% the optional `event_id_attributes/2' callback; otherwise the default plugin.
-module(ep_sns_id_plugin).

-behaviour(mod_event_pusher_sns).

-export([user_guid/1, message_attributes/3, message_attributes/5, event_id_attributes/2]).

user_guid(Jid) ->
    mod_event_pusher_sns_defaults:user_guid(Jid).

message_attributes(Arn, Jid, Online) ->
    mod_event_pusher_sns_defaults:message_attributes(Arn, Jid, Online).

message_attributes(Arn, From, To, Type, Packet) ->
    mod_event_pusher_sns_defaults:message_attributes(Arn, From, To, Type, Packet).

%% @doc The ID as a String attribute, prefixed so a test sees the plugin's format.
-spec event_id_attributes(mod_event_pusher_sns:topic_arn(), binary()) ->
          mod_event_pusher_sns:attributes().
event_id_attributes(_Arn, EventId) ->
    #{"event_pusher_id" => "ev:" ++ binary_to_list(EventId)}.
