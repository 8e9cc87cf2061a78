%% @doc The test host's `ejabberd_sm': the session table and delivery to
%% users, with MongooseIM's API and semantics.
%%
%% A session is `#session{sid = {Microseconds, Pid}, usr, us, priority, info}'
%% (session.hrl); `Pid' stands for the client's c2s process and receives
%% `{route, Acc}' for every stanza delivered to the session (as
%% `mongoose_c2s:route/2' sends). Priority `undefined' = no available
%% presence (just opened, or `unset_presence/5'); an integer = available.
%% Tests open sessions with `open_session/5' (SID from `make_new_sid/0', or
%% `{erlang:system_time(microsecond), Pid}' for another process) and change
%% presence with `set_presence/6' / `unset_presence/5' (helpers: `mim_host_xmpp').
%%
%% Differences from MongooseIM (none visible to the event pusher):
%% `store_info/4' and `remove_info/3' update the session row at once
%% (MongooseIM asks the c2s process to, asynchronously); no session limit;
%% the `sm_register_connection'/`sm_remove_connection'/`set_presence' hooks
%% are not run (`unset_presence' is); messages with no available resource are
%% dropped (no offline storage).
-module(ejabberd_sm).

-behaviour(gen_iq_component).

-export([make_new_sid/0, open_session/5, close_session/5, set_presence/6, unset_presence/5,
         store_info/4, get_info/2, remove_info/3, get_session/1, get_session_pid/1,
         get_raw_sessions/1, get_user_resources/1, get_user_present_resources/1,
         get_user_present_pids/2, is_offline/1, get_vh_session_list/1,
         route/3, route/4, register_iq_handler/3, unregister_iq_handler/2]).
%% test host: the component lookup
-export([lookup_iq_handler/2]).
%% test host: ejabberd_sup creates the table when it starts
-export([ensure_tables/0]).

-include("jlib.hrl").
-include("mongoose.hrl").
-include("session.hrl").

-define(SESSIONS, ejabberd_sm_session).
-define(IQTABLE, sm_iqtable).

-type sid() :: {integer(), pid()}.
-type priority() :: integer() | undefined.
-type info_key() :: atom().
-type info() :: #{info_key() => any()}.
-type session() :: #session{sid :: sid(), usr :: jid:simple_jid(), us :: jid:simple_bare_jid(),
                            priority :: priority(), info :: info()}.
-type close_reason() :: resumed | normal | {replaced, pid()}.
-export_type([sid/0, priority/0, info_key/0, info/0, session/0, close_reason/0]).

%%--------------------------------------------------------------------
%% Sessions
%%--------------------------------------------------------------------

%% @doc A session id owned by the calling process.
-spec make_new_sid() -> sid().
make_new_sid() ->
    {erlang:system_time(microsecond), self()}.

%% @doc Stores the session; an older session of the same full JID is
%% replaced (removed), its pid returned.
-spec open_session(mongooseim:host_type(), sid(), jid:jid(), priority(), info()) -> [pid()].
open_session(_HostType, SID, #jid{} = JID, Priority, Info) ->
    Replaced = [S || S <- sessions_of_usr(JID), S#session.sid =/= SID],
    [ets:delete(?SESSIONS, S#session.sid) || S <- Replaced],
    set_session(SID, JID, Priority, Info),
    [Pid || #session{sid = {_, Pid}} <- Replaced].

-spec close_session(mongoose_acc:t(), sid(), jid:jid(), close_reason(), info()) ->
          mongoose_acc:t().
close_session(Acc, SID, _JID, _Reason, _Info) ->
    ensure_tables(),
    ets:delete(?SESSIONS, SID),
    Acc.

-spec set_presence(mongoose_acc:t(), sid(), jid:jid(), priority(), any(), info()) ->
          mongoose_acc:t().
set_presence(Acc, SID, JID, Priority, _Presence, Info) ->
    set_session(SID, JID, Priority, Info),
    Acc.

%% @doc The session stays, with no available presence; runs `unset_presence'.
-spec unset_presence(mongoose_acc:t(), sid(), jid:jid(), binary(), info()) -> mongoose_acc:t().
unset_presence(Acc, SID, JID, Status, Info) ->
    set_session(SID, JID, undefined, Info),
    mongoose_hooks:unset_presence(Acc, JID, Status).

%% @doc Sets `Key' in the info of the session `SID' (if it still exists).
-spec store_info(jid:jid(), sid(), info_key(), any()) -> ok.
store_info(_JID, SID, Key, Value) ->
    ensure_tables(),
    case ets:lookup(?SESSIONS, SID) of
        [#session{info = Info} = Session] ->
            NewInfo = case Value of
                          undefined -> maps:remove(Key, Info);
                          _ -> Info#{Key => Value}
                      end,
            true = ets:insert(?SESSIONS, Session#session{info = NewInfo}),
            ok;
        [] ->
            ok
    end.

-spec remove_info(jid:jid(), sid(), info_key()) -> ok.
remove_info(JID, SID, Key) ->
    store_info(JID, SID, Key, undefined).

%% @doc `Key' of the info of the full JID's session.
-spec get_info(jid:jid(), info_key()) -> {ok, any()} | {error, offline | not_set}.
get_info(JID, Key) ->
    case get_session(JID) of
        #session{info = #{Key := Value}} -> {ok, Value};
        #session{} -> {error, not_set};
        offline -> {error, offline}
    end.

%% @doc The full JID's session (the newest if several).
-spec get_session(jid:jid()) -> offline | session().
get_session(JID) ->
    case sessions_of_usr(JID) of
        [] -> offline;
        Sessions -> lists:max(Sessions)
    end.

-spec get_session_pid(jid:jid()) -> none | pid().
get_session_pid(JID) ->
    session_pid(get_session(JID)).

-spec session_pid(offline | session()) -> none | pid().
session_pid(#session{sid = {_Time, Pid}}) -> Pid;
session_pid(offline) -> none.

%% @doc Every session of the JID's user (one per resource, the newest).
-spec get_raw_sessions(jid:jid()) -> [session()].
get_raw_sessions(#jid{luser = LUser, lserver = LServer}) ->
    clean(sessions_of_us({LUser, LServer})).

-spec get_user_resources(jid:jid()) -> [binary()].
get_user_resources(JID) ->
    [R || #session{usr = {_, _, R}} <- get_raw_sessions(JID)].

%% @doc `{Priority, Resource}' of the sessions with an available presence.
-spec get_user_present_resources(jid:jid()) -> [{priority(), binary()}].
get_user_present_resources(JID) ->
    [{P, R} || #session{usr = {_, _, R}, priority = P} <- get_raw_sessions(JID),
               is_integer(P)].

-spec get_user_present_pids(jid:luser(), jid:lserver()) -> [{priority(), pid()}].
get_user_present_pids(LUser, LServer) ->
    [{P, Pid} || #session{sid = {_, Pid}, priority = P} <- clean(sessions_of_us({LUser, LServer})),
                 is_integer(P)].

%% @doc True unless the user has an available session of priority >= 0.
-spec is_offline(jid:jid()) -> boolean().
is_offline(#jid{luser = LUser, lserver = LServer}) ->
    %% a session with a negative priority gets no messages to the bare JID
    Reachable = [Pid || {Priority, Pid} <- get_user_present_pids(LUser, LServer), Priority >= 0],
    Reachable =:= [].

-spec get_vh_session_list(jid:lserver()) -> [session()].
get_vh_session_list(LServer) ->
    ensure_tables(),
    ets:match_object(?SESSIONS, #session{us = {'_', LServer}, _ = '_'}).

%%--------------------------------------------------------------------
%% Routing
%%--------------------------------------------------------------------

-spec route(jid:jid(), jid:jid(), mongoose_acc:t() | exml:element()) -> mongoose_acc:t().
route(From, To, #xmlel{} = El) ->
    HostType = case mongoose_domain_api:get_domain_host_type(To#jid.lserver) of
                   {ok, HT} -> HT;
                   {error, not_found} -> undefined
               end,
    Acc = mongoose_acc:new(#{location => ?LOCATION, lserver => To#jid.lserver,
                             host_type => HostType, element => El,
                             from_jid => From, to_jid => To}),
    route(From, To, Acc, El);
route(From, To, Acc) ->
    route(From, To, Acc, mongoose_acc:element(Acc)).

%% @doc A full JID: its session's pid, else (offline) a message goes to the
%% bare JID and an IQ request is bounced `service-unavailable'. A bare JID:
%% IQs to the handlers of component `ejabberd_sm'; a message to the available
%% sessions of the highest non-negative priority; a presence to every
%% available session.
-spec route(jid:jid(), jid:jid(), mongoose_acc:t(), exml:element()) -> mongoose_acc:t().
route(From, #jid{lresource = <<>>} = To, Acc, #xmlel{name = Name} = El) ->
    case Name of
        <<"iq">> -> process_iq(From, To, Acc, El);
        <<"message">> -> route_message(From, To, Acc, El);
        <<"presence">> -> route_presence(From, To, Acc, El);
        _ -> Acc
    end;
route(From, To, Acc, #xmlel{name = Name} = El) ->
    case get_session_pid(To) of
        Pid when is_pid(Pid) ->
            deliver(Pid, From, To, Acc, El);
        none when Name =:= <<"message">> ->
            route_message(From, To, Acc, El);
        none when Name =:= <<"iq">> ->
            case mongoose_acc:stanza_type(Acc) of
                Type when Type =:= <<"error">>; Type =:= <<"result">> -> Acc;
                _ -> mim_host_lib:bounce(Acc, From, To, El, mongoose_xmpp_errors:service_unavailable())
            end;
        none ->
            Acc
    end.

-include("mim_host_iq_handlers.hrl").

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec process_iq(jid:jid(), jid:jid(), mongoose_acc:t(), exml:element()) -> mongoose_acc:t().
process_iq(From, To, Acc0, El) ->
    case mongoose_iq:info(Acc0) of
        {#iq{type = Type}, Acc} when Type =:= result; Type =:= error ->
            Acc;
        {#iq{xmlns = XMLNS} = IQ, Acc} ->
            case gen_iq_component:find_handler(?MODULE, To#jid.lserver, XMLNS) of
                {ok, Handler} ->
                    gen_iq_component:handle(Handler, Acc, From, To, IQ);
                error ->
                    Text = <<"Unknown xmlns=", XMLNS/binary, " for host=",
                             (To#jid.lserver)/binary>>,
                    mim_host_lib:bounce(Acc, From, To, El, mongoose_xmpp_errors:service_unavailable(Text))
            end;
        {_, Acc} ->
            mim_host_lib:bounce(Acc, From, To, El, mongoose_xmpp_errors:bad_request())
    end.

-spec route_message(jid:jid(), jid:jid(), mongoose_acc:t(), exml:element()) -> mongoose_acc:t().
route_message(From, #jid{luser = LUser, lserver = LServer} = To, Acc, El) ->
    Present = [S || #session{priority = P} = S <- clean(sessions_of_us({LUser, LServer})),
                    is_integer(P), P >= 0],
    case Present of
        [] ->
            ?LOG_INFO(#{what => sm_message_dropped, reason => no_available_session,
                        to_jid => jid:to_binary(To)}),
            Acc;
        _ ->
            Max = lists:max([P || #session{priority = P} <- Present]),
            lists:foldl(fun(#session{sid = {_, Pid}, usr = {_, _, R}}, AccIn) ->
                                deliver(Pid, From, jid:replace_resource_noprep(To, R), AccIn, El)
                        end, Acc, [S || #session{priority = P} = S <- Present, P =:= Max])
    end.

-spec route_presence(jid:jid(), jid:jid(), mongoose_acc:t(), exml:element()) ->
          mongoose_acc:t().
route_presence(From, #jid{luser = LUser, lserver = LServer} = To, Acc, El) ->
    lists:foldl(fun(#session{sid = {_, Pid}, usr = {_, _, R}}, AccIn) ->
                        deliver(Pid, From, jid:replace_resource_noprep(To, R), AccIn, El)
                end, Acc, [S || #session{priority = P} = S <- clean(sessions_of_us({LUser, LServer})),
                                is_integer(P)]).

%% What mongoose_c2s:route/2 does: the c2s process gets the accumulator.
-spec deliver(pid(), jid:jid(), jid:jid(), mongoose_acc:t(), exml:element()) -> mongoose_acc:t().
deliver(Pid, From, To, Acc, El) ->
    Acc1 = mongoose_acc:update_stanza(#{element => El, from_jid => From, to_jid => To}, Acc),
    Pid ! {route, Acc1},
    Acc1.

-spec set_session(sid(), jid:jid(), priority(), info()) -> ok.
set_session(SID, #jid{luser = U, lserver = S, lresource = R}, Priority, Info) ->
    ensure_tables(),
    true = ets:insert(?SESSIONS, #session{sid = SID, usr = {U, S, R}, us = {U, S},
                                          priority = Priority, info = Info}),
    ok.

-spec sessions_of_usr(jid:jid()) -> [session()].
sessions_of_usr(#jid{luser = U, lserver = S, lresource = R}) ->
    ensure_tables(),
    ets:match_object(?SESSIONS, #session{usr = {U, S, R}, _ = '_'}).

-spec sessions_of_us(jid:simple_bare_jid()) -> [session()].
sessions_of_us(US) ->
    ensure_tables(),
    ets:match_object(?SESSIONS, #session{us = US, _ = '_'}).

%% One session per resource: the one with the greatest sid.
-spec clean([session()]) -> [session()].
clean(Sessions) ->
    maps:values(lists:foldl(fun(#session{usr = USR, sid = SID} = S, Acc) ->
                                    case Acc of
                                        #{USR := #session{sid = Other}} when Other > SID -> Acc;
                                        #{} -> Acc#{USR => S}
                                    end
                            end, #{}, Sessions)).

-spec ensure_tables() -> ok.
ensure_tables() ->
    mim_host_lib:ensure_tables([{?SESSIONS, [named_table, public, set, {keypos, #session.sid}]},
                            {?IQTABLE, [named_table, public, set, {read_concurrency, true}]}]).
