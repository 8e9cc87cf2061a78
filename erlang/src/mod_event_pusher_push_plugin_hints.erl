%% @doc Push plugin honouring message processing hints (XEP-0334) on top of
%% the enhanced plugin: `<no-store/>' never notifies; a bodiless message
%% with `<store/>' notifies when a processor recognises it (today: a Jingle
%% Message Initiation element, i.e. an incoming call).
-module(mod_event_pusher_push_plugin_hints).
-behaviour(mod_event_pusher_push_plugin).

-include("jlib.hrl").
-include("mod_event_pusher_events.hrl").

-export([should_publish/3, prepare_notification/2]).

-define(JINGLE_MESSAGE_NS, <<"urn:xmpp:jingle-message:0">>).

-spec should_publish(mongoose_acc:t(), mod_event_pusher:event(),
                     [mod_event_pusher_push:publish_service()]) ->
          [mod_event_pusher_push:publish_service()].
should_publish(Acc, Event, Services) ->
    mod_event_pusher_push_plugin_enhanced:should_publish(Acc, Event, Services).

-spec prepare_notification(mongoose_acc:t(), mod_event_pusher:event()) ->
          mod_event_pusher_push_plugin:push_payload() | skip.
prepare_notification(Acc, Event) ->
    {From, _To, Packet} = mongoose_acc:packet(Acc),
    case has_hint(Packet, <<"no-store">>) of
        true ->
            skip;
        false ->
            case mod_event_pusher_push_plugin_defaults:prepare_notification(Acc, Event) of
                skip -> bodiless_notification(From, Packet);
                Payload -> Payload
            end
    end.

%% The defaults skipped it, so it has no (non-empty) body: only a message
%% the sender asked to store, and that a processor recognises, notifies.
bodiless_notification(From, Packet) ->
    case has_hint(Packet, <<"store">>) andalso processed_fields(Packet, processors()) of
        false -> skip;
        skip -> skip;
        Fields -> [{<<"message-sender">>, jid:to_bare_binary(jid:to_lower(From))} | Fields]
    end.

%% Add a fun here to notify another kind of bodiless message.
processors() ->
    [fun jingle_message_fields/1].

processed_fields(_Packet, []) ->
    skip;
processed_fields(Packet, [Processor | Rest]) ->
    case Processor(Packet) of
        skip -> processed_fields(Packet, Rest);
        Fields -> Fields
    end.

jingle_message_fields(Packet) ->
    case exml_query:subelement_with_ns(Packet, ?JINGLE_MESSAGE_NS) of
        #xmlel{name = Action, attrs = #{<<"id">> := Id}} ->
            [{<<"jingle-message">>, Action}, {<<"jingle-session-id">>, Id}];
        _ ->
            skip
    end.

has_hint(Packet, Name) ->
    exml_query:subelement_with_name_and_ns(Packet, Name, ?NS_HINTS) =/= undefined.
