%% @doc Where event pusher events come from: five server hooks, each
%% subscribed with one table row, all served by `translate/3'.
%%
%% A row names the hook, its priority and the kind of source it is; the kind
%% travels in the handler's Extra map, so one function serves every hook.
%% Whatever a hook delivers, the handler answers `{ok, SameShape}' and the
%% stanza is never touched. Backends may leave notes in the accumulator's
%% `event_pusher' namespace while they handle an event; those notes are
%% kept, as permanent fields, in the accumulator the hook goes on with (the
%% push backend reads them to skip services it already notified).
-module(mod_event_pusher_hook_translator).

-include("mod_event_pusher_events.hrl").

%% Subscriptions, for mod_event_pusher's hooks/1
-export([hook_handlers/1]).

%% The single hook handler
-export([translate/3]).

-type source() :: routed_stanza | sent_stanza | became_available | became_unavailable
                | left_unacknowledged.
-type message_type() :: chat | groupchat | headline | normal.

%%--------------------------------------------------------------------
%% Subscriptions
%%--------------------------------------------------------------------

%% {Hook, Priority, Source}. Local delivery runs at 80, the c2s hooks at 90.
-spec sources() -> [{gen_hook:hook_name(), pos_integer(), source()}].
sources() ->
    [{user_available, 90, became_available},
     {unset_presence, 90, became_unavailable},
     {unacknowledged_message, 90, left_unacknowledged},
     {user_send_message, 90, sent_stanza},
     {filter_local_packet, 80, routed_stanza}].

%% @doc The gen_hook handlers of one host type, one per source.
-spec hook_handlers(mongooseim:host_type()) -> [gen_hook:hook_tuple()].
hook_handlers(HostType) ->
    [{Hook, HostType, fun ?MODULE:translate/3, #{event_source => Source}, Priority}
     || {Hook, Priority, Source} <- sources()].

%%--------------------------------------------------------------------
%% The hook handler
%%--------------------------------------------------------------------

%% @doc Turns one hook run into at most one event and returns the hook's
%% accumulator in the shape it came in.
-spec translate(HookAcc, map(), #{event_source := source(), atom() => term()}) ->
          {ok, HookAcc} when HookAcc :: term().
translate(HookAcc, Params, #{event_source := Source}) ->
    {ok, on(Source, HookAcc, Params)}.

%% filter_local_packet's accumulator is the routing tuple; the stanza goes
%% to a local recipient (a user or a room), so the event points `out'.
-spec on(source(), term(), map()) -> term().
on(routed_stanza, {From, To, Acc, Stanza}, _Params) ->
    {From, To, on_stanza(Acc, out, From, To, Stanza), Stanza};
%% user_send_message: the sender is the accumulator's `from_jid' (the client
%% leaves `from' out of its stanzas), the direction `in'.
on(sent_stanza, Acc, _Params) ->
    case mongoose_acc:packet(Acc) of
        {From, To, Stanza} -> on_stanza(Acc, in, From, To, Stanza);
        undefined -> Acc
    end;
on(became_available, Acc, #{jid := Jid}) ->
    publish(Acc, #user_status_event{jid = Jid, status = online});
on(became_unavailable, Acc, #{jid := Jid}) ->
    publish(Acc, #user_status_event{jid = Jid, status = offline});
on(left_unacknowledged, Acc, #{jid := Jid}) ->
    publish(Acc, #unack_msg_event{to = Jid}).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% Any element qualifies (presences too: the name is not looked at); only
%% the `type' attribute decides, through the accumulator's stanza type.
-spec on_stanza(mongoose_acc:t(), in | out, jid:jid(), jid:jid(), exml:element()) ->
          mongoose_acc:t().
on_stanza(Acc, Direction, From, To, Stanza) ->
    case message_type(mongoose_acc:stanza_type(Acc)) of
        none ->
            Acc;
        Type ->
            publish(Acc, #chat_event{type = Type, direction = Direction,
                                     from = From, to = To, packet = Stanza})
    end.

%% A stanza without `type' is a normal message; types that are not message
%% types (error, get, set, result, ...) make no event.
-spec message_type(binary() | undefined) -> message_type() | none.
message_type(undefined) -> normal;
message_type(<<"chat">>) -> chat;
message_type(<<"groupchat">>) -> groupchat;
message_type(<<"headline">>) -> headline;
message_type(<<"normal">>) -> normal;
message_type(_NotAMessageType) -> none.

%% Runs the push_event hook; of the accumulator it returns only the
%% `event_pusher' namespace is taken over, the rest stays as the hook had it.
-spec publish(mongoose_acc:t(), mod_event_pusher:event()) -> mongoose_acc:t().
publish(Acc, Event) ->
    Handled = mod_event_pusher:push_event(Acc, Event),
    Notes = mongoose_acc:get(event_pusher, Handled),
    mongoose_acc:set_permanent(event_pusher, Notes, Acc).
