%% @doc The sessions a test case opens, all closed at its end: login/1 opens
%% an available session (priority 0) of a full JID for the calling process,
%% which stands for its c2s and receives what is routed to it; logout/2
%% closes one; close_all/0 closes what is left. The open sessions live in
%% the case process's dictionary.
-module(ep_sessions).

-export([login/1, logout/2, close_all/0]).

-spec login(binary() | jid:jid()) -> ejabberd_sm:sid().
login(Full) ->
    JID = to_jid(Full),
    SID = mim_host_xmpp:login(JID),
    put(?MODULE, [{JID, SID} | open()]),
    SID.

-spec logout(binary() | jid:jid(), ejabberd_sm:sid()) -> ok.
logout(Full, SID) ->
    JID = to_jid(Full),
    ok = mim_host_xmpp:logout(JID, SID),
    put(?MODULE, open() -- [{JID, SID}]),
    ok.

-spec close_all() -> ok.
close_all() ->
    [catch mim_host_xmpp:logout(JID, SID) || {JID, SID} <- open()],
    erase(?MODULE),
    ok.

open() ->
    case get(?MODULE) of
        undefined -> [];
        Open -> Open
    end.

to_jid(Full) when is_binary(Full) -> jid:from_binary(Full);
to_jid(JID) -> JID.
