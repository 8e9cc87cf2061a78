%% @doc What the sessions of a user remember about push: the service a
%% session enabled, kept in its info under `publish_service' (the key
%% MongooseIM uses, read by the enhanced plugin).
-module(mod_event_pusher_push_sessions).

-include("session.hrl").

-export([remember/3, forget/3, enabled_by/1]).

-define(INFO_KEY, publish_service).

%% @doc Notes in the current session (the IQ's origin) the service it enabled.
-spec remember(mongoose_acc:t(), jid:jid(), mod_event_pusher_push:publish_service()) -> ok.
remember(Acc, SessionJID, Service) ->
    %% An IQ that did not come from a c2s session has no session to note.
    [ejabberd_sm:store_info(SessionJID, SID, ?INFO_KEY, Service)
     || SID <- [mongoose_acc:get(c2s, origin_sid, undefined, Acc)], SID =/= undefined],
    ok.

%% @doc Drops the note from every session of the user that points at the
%% service's node (at any node of it when Node is undefined).
-spec forget(jid:jid(), jid:jid(), mod_event_pusher_push:pubsub_node() | undefined) -> ok.
forget(User, PubSub, Node) ->
    Owner = jid:to_bare(User),
    Affected = [{jid:replace_resource(Owner, Res), SID}
                || #session{sid = SID, usr = {_, _, Res}, info = Info}
                       <- ejabberd_sm:get_raw_sessions(Owner),
                   points_at(maps:get(?INFO_KEY, Info, none), PubSub, Node)],
    _ = [ejabberd_sm:remove_info(JID, SID, ?INFO_KEY) || {JID, SID} <- Affected],
    ok.

%% @doc The service the session of this full JID enabled, if any.
-spec enabled_by(jid:jid()) -> {ok, mod_event_pusher_push:publish_service()} | none.
enabled_by(SessionJID) ->
    case ejabberd_sm:get_info(SessionJID, ?INFO_KEY) of
        {ok, Service} -> {ok, Service};
        {error, _} -> none
    end.

points_at({PubSub, _, _}, PubSub, undefined) -> true;
points_at({PubSub, Node, _}, PubSub, Node) -> true;
points_at(_, _, _) -> false.
