%% @doc Turns MongooseIM hooks into event pusher events.
%%
%% Every handler returns `{ok, _}' with the packet unchanged; what the backends
%% stored in the accumulator's `event_pusher' namespace while handling the event
%% is copied back into the original accumulator as permanent fields (the push
%% backend uses them to avoid notifying the same service twice).
-module(mod_event_pusher_hook_translator).

-include("jlib.hrl").
-include("mod_event_pusher_events.hrl").

%% API
-export([add_hooks/1, delete_hooks/1]).

%% Hook handlers
-export([filter_local_packet/3,
         user_send_message/3,
         user_present/3,
         user_not_present/3,
         unacknowledged_message/3]).

-type chat_type() :: chat | groupchat | headline | normal.

%%--------------------------------------------------------------------
%% API
%%--------------------------------------------------------------------

-spec add_hooks(mongooseim:host_type()) -> ok.
add_hooks(HostType) ->
    gen_hook:add_handlers(hooks(HostType)).

-spec delete_hooks(mongooseim:host_type()) -> ok.
delete_hooks(HostType) ->
    gen_hook:delete_handlers(hooks(HostType)).

%%--------------------------------------------------------------------
%% Hook handlers
%%--------------------------------------------------------------------

%% @doc Every stanza delivered locally (rooms included) is an `out' event.
-spec filter_local_packet(FilterAcc, map(), map()) -> {ok, FilterAcc} when
      FilterAcc :: {jid:jid(), jid:jid(), mongoose_acc:t(), exml:element()}.
filter_local_packet({From, To, Acc, Packet}, _Params, _Extra) ->
    NewAcc = case chat_type(Acc) of
                 false -> Acc;
                 Type -> push_chat_event(Acc, Type, out, From, To, Packet)
             end,
    {ok, {From, To, NewAcc, Packet}}.

%% @doc A stanza sent by a local user is an `in' event; the sender is the
%% accumulator's `from_jid' (a client's stanza has no `from' attribute).
-spec user_send_message(mongoose_acc:t(), map(), map()) -> {ok, mongoose_acc:t()}.
user_send_message(Acc, _Params, _Extra) ->
    NewAcc = case {mongoose_acc:packet(Acc), chat_type(Acc)} of
                 {undefined, _} -> Acc;
                 {_, false} -> Acc;
                 {{From, To, Packet}, Type} -> push_chat_event(Acc, Type, in, From, To, Packet)
             end,
    {ok, NewAcc}.

-spec user_present(mongoose_acc:t(), #{jid := jid:jid()}, map()) -> {ok, mongoose_acc:t()}.
user_present(Acc, #{jid := JID}, _Extra) ->
    {ok, push(Acc, #user_status_event{jid = JID, status = online})}.

-spec user_not_present(mongoose_acc:t(), #{jid := jid:jid()}, map()) -> {ok, mongoose_acc:t()}.
user_not_present(Acc, #{jid := JID}, _Extra) ->
    {ok, push(Acc, #user_status_event{jid = JID, status = offline})}.

-spec unacknowledged_message(mongoose_acc:t(), #{jid := jid:jid()}, map()) ->
          {ok, mongoose_acc:t()}.
unacknowledged_message(Acc, #{jid := JID}, _Extra) ->
    {ok, push(Acc, #unack_msg_event{to = JID})}.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec hooks(mongooseim:host_type()) -> [gen_hook:hook_tuple()].
hooks(HostType) ->
    [{filter_local_packet, HostType, fun ?MODULE:filter_local_packet/3, #{}, 80},
     {user_send_message, HostType, fun ?MODULE:user_send_message/3, #{}, 90},
     {user_available, HostType, fun ?MODULE:user_present/3, #{}, 90},
     {unset_presence, HostType, fun ?MODULE:user_not_present/3, #{}, 90},
     {unacknowledged_message, HostType, fun ?MODULE:unacknowledged_message/3, #{}, 90}].

-spec push_chat_event(mongoose_acc:t(), chat_type(), in | out,
                      jid:jid(), jid:jid(), exml:element()) -> mongoose_acc:t().
push_chat_event(Acc, Type, Direction, From, To, Packet) ->
    push(Acc, #chat_event{type = Type, direction = Direction,
                          from = From, to = To, packet = Packet}).

-spec push(mongoose_acc:t(), mod_event_pusher:event()) -> mongoose_acc:t().
push(Acc, Event) ->
    ResultAcc = mod_event_pusher:push_event(Acc, Event),
    %% Only the `event_pusher' namespace travels back: the original accumulator
    %% stays authoritative for everything else.
    Fields = mongoose_acc:get(event_pusher, ResultAcc),
    mongoose_acc:set_permanent(event_pusher, Fields, Acc).

%% The stanza's `type' attribute; no type means `normal', anything not a
%% message type (error, get, ...) yields no event.
-spec chat_type(mongoose_acc:t()) -> chat_type() | false.
chat_type(Acc) ->
    case mongoose_acc:stanza_type(Acc) of
        undefined -> normal;
        <<"normal">> -> normal;
        <<"chat">> -> chat;
        <<"groupchat">> -> groupchat;
        <<"headline">> -> headline;
        _Other -> false
    end.
