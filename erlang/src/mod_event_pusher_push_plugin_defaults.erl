%% @doc The default push plugin (doc/compatibility.md §7): an offline recipient of a
%% message with a body gets a summary (message count, sender, body), sent by
%% `mod_event_pusher_push_publish'.
-module(mod_event_pusher_push_plugin_defaults).
-behaviour(mod_event_pusher_push_plugin).

-include("jlib.hrl").
-include("mod_event_pusher_events.hrl").

-export([prepare_notification/2, should_publish/3, publish_notification/4]).

%% Where the services already notified for this stanza are kept (several
%% hooks may see one message).
-define(SENT_NS, event_pusher).
-define(SENT_KEY, published_services).

%%--------------------------------------------------------------------
%% Plugin callbacks
%%--------------------------------------------------------------------

%% @doc For chat events to a recipient who is offline and may exist, the
%% services not yet notified of this stanza; nothing otherwise.
-spec should_publish(mongoose_acc:t(), mod_event_pusher:event(),
                     [mod_event_pusher_push:publish_service()]) ->
          [mod_event_pusher_push:publish_service()].
should_publish(Acc, Event, Services) ->
    case Event of
        #chat_event{to = To} ->
            HostType = mongoose_acc:host_type(Acc),
            Wanted = user_may_exist(HostType, To) andalso ejabberd_sm:is_offline(To),
            [S || Wanted, S <- Services, not lists:member(S, sent_to(Acc))];
        _ ->
            []
    end.

%% @doc The summary fields of the accumulator's message, in the order of
%% doc/compatibility.md §7; `skip' when it has no body or an empty one.
-spec prepare_notification(mongoose_acc:t(), mod_event_pusher:event()) ->
          mod_event_pusher_push_plugin:push_payload() | skip.
prepare_notification(Acc, _Event) ->
    {Sender, Recipient, Message} = mongoose_acc:packet(Acc),
    Text = exml_query:path(Message, [{element, <<"body">>}, cdata], <<>>),
    Type = exml_query:attr(Message, <<"type">>),
    if
        Text =:= <<>> ->
            skip;
        %% Only these name a sender (MongooseIM's handler crashes on any
        %% other type, e.g. an unacknowledged headline: nothing is sent).
        Type =/= <<"chat">>, Type =/= <<"groupchat">> ->
            skip;
        true ->
            Count = messages_waiting(Acc, Recipient),
            [{<<"message-count">>, integer_to_binary(Count)},
             {<<"last-message-sender">>, who_wrote(Sender, Type)},
             {<<"last-message-body">>, Text}]
    end.

%% @doc Sends to each service, then notes them in the accumulator so that
%% this stanza does not notify them again.
-spec publish_notification(mongoose_acc:t(), mod_event_pusher:event(),
                           mod_event_pusher_push_plugin:push_payload(),
                           [mod_event_pusher_push:publish_service()]) -> mongoose_acc:t().
publish_notification(Acc, _Event, Payload, Services) ->
    ok = mod_event_pusher_push_publish:send(Acc, Payload, Services),
    mongoose_acc:append(?SENT_NS, ?SENT_KEY, Services, Acc).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% An auth backend that cannot answer does not stop the notification.
-spec user_may_exist(mongooseim:host_type(), jid:jid()) -> boolean().
user_may_exist(HostType, User) ->
    try
        ejabberd_auth:does_user_exist(HostType, User, stored)
    catch
        _:_ -> true
    end.

sent_to(Acc) ->
    Default = [],
    mongoose_acc:get(?SENT_NS, ?SENT_KEY, Default, Acc).

%% The inbox (if any) knows the unread count; a lone message is 1.
-spec messages_waiting(mongoose_acc:t(), jid:jid()) -> integer().
messages_waiting(Acc, Recipient) ->
    case mongoose_acc:get(inbox, unread_count, none,
                          mongoose_hooks:inbox_unread_count(Acc, Recipient)) of
        none -> 1;
        Unread -> Unread
    end.

%% In a room the sender is the occupant (full JID, the nick); in a chat
%% the bare JID. Lowercased either way.
-spec who_wrote(jid:jid(), binary()) -> binary().
who_wrote(Sender, <<"groupchat">>) ->
    jid:to_binary(jid:to_lower(Sender));
who_wrote(Sender, <<"chat">>) ->
    jid:to_binary(jid:to_lower(jid:to_bare(Sender))).
