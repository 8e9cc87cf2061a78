%% @doc Push plugin honouring message processing hints (XEP-0334) on top of
%% the enhanced plugin: `<no-store/>' never notifies; a bodiless message
%% marked `<store/>' notifies only when it starts or changes a call (a Jingle
%% Message Initiation element).
-module(mod_event_pusher_push_plugin_hints).
-behaviour(mod_event_pusher_push_plugin).

-include("jlib.hrl").

-export([should_publish/3, prepare_notification/2]).

-define(JMI_NS, <<"urn:xmpp:jingle-message:0">>).

-spec should_publish(mongoose_acc:t(), mod_event_pusher:event(),
                     [mod_event_pusher_push:publish_service()]) ->
          [mod_event_pusher_push:publish_service()].
should_publish(Acc, Event, Services) ->
    mod_event_pusher_push_plugin_enhanced:should_publish(Acc, Event, Services).

%% @doc As the defaults plugin for a message with a body; a call summary
%% for a stored bodiless call message; `skip' for the rest.
-spec prepare_notification(mongoose_acc:t(), mod_event_pusher:event()) ->
          mod_event_pusher_push_plugin:push_payload() | skip.
prepare_notification(Acc, Event) ->
    {Sender, _Recipient, Message} = mongoose_acc:packet(Acc),
    Hinted = fun(Hint) -> hinted(Message, Hint) end,
    case Hinted(<<"no-store">>) of
        true ->
            skip;
        false ->
            Default = mod_event_pusher_push_plugin_defaults:prepare_notification(Acc, Event),
            case {Default, Hinted(<<"store">>) andalso call_element(Message)} of
                {skip, {call, Action, CallId}} ->
                    [{<<"message-sender">>, jid:to_binary(jid:to_lower(jid:to_bare(Sender)))},
                     {<<"jingle-message">>, Action},
                     {<<"jingle-session-id">>, CallId}];
                {skip, _NotACall} ->
                    skip;
                {WithBody, _} ->
                    WithBody
            end
    end.

%% The first child in the Jingle Message namespace, when it carries the
%% session id that every such element has.
call_element(Message) ->
    Jingle = exml_query:subelement_with_ns(Message, ?JMI_NS),
    CallId = exml_query:attr(Jingle, <<"id">>),
    if
        Jingle =:= undefined; CallId =:= undefined -> false;
        true -> {call, Jingle#xmlel.name, CallId}
    end.

hinted(Message, Hint) ->
    exml_query:subelement_with_name_and_ns(Message, Hint, ?NS_HINTS) =/= undefined.
