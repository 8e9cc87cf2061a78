%% @doc Default plugin of `mod_event_pusher_sns': a user's GUID is their
%% lowercased bare JID, and notifications carry no message attributes.
%%
%% A deployment may name its own `plugin_module' implementing the
%% `mod_event_pusher_sns' behaviour to use other user ids or add attributes.
-module(mod_event_pusher_sns_defaults).

-behaviour(mod_event_pusher_sns).

-include("jlib.hrl").

-export([user_guid/1, message_attributes/3, message_attributes/5]).

%% @doc The bare JID, lowercased (`#jid{}' keeps the stringprepped, lowercase
%% parts in `luser' and `lserver').
-spec user_guid(jid:jid()) -> mod_event_pusher_sns:user_guid().
user_guid(#jid{} = UserJID) ->
    jid:to_bare_binary(UserJID).

%% @doc No attributes for presence notifications.
-spec message_attributes(mod_event_pusher_sns:topic_arn(), jid:jid(), boolean()) ->
          mod_event_pusher_sns:attributes().
message_attributes(_Arn, _Jid, _Online) ->
    none().

%% @doc No attributes for message notifications.
-spec message_attributes(mod_event_pusher_sns:topic_arn(), jid:jid(), jid:jid(),
                         mod_event_pusher_sns:message_type(), exml:element()) ->
          mod_event_pusher_sns:attributes().
message_attributes(_Arn, _Sender, _Recipient, _Kind, _Stanza) ->
    none().

%% SNS accepts an empty attribute map: the publish then carries no
%% MessageAttributes entries at all.
-spec none() -> mod_event_pusher_sns:attributes().
none() ->
    #{}.
