%% @doc The test host's `ejabberd_auth': which users exist, controlled by
%% the test. By default every user exists (`set_users(all)'); `set_users/1'
%% with a list of JIDs makes only those bare JIDs exist.
%%
%% `does_user_exist/3' runs the `does_user_exist' hook as MongooseIM does;
%% MongooseIM's own handler of that hook (stored users) is emulated after the
%% run: a `false' result is then answered from the test's user list.
-module(ejabberd_auth).

-export([does_user_exist/1, does_user_exist/3, remove_user/1]).
%% test host extensions
-export([set_users/1, get_users/0]).

-include("jlib.hrl").
-include("mongoose.hrl").

-define(KEY, {?MODULE, users}).

-type exist_type() :: stored | with_anonymous.
-type users() :: all | [jid:simple_bare_jid()].
-export_type([exist_type/0]).

%% @doc Whether the user exists in the (test's) user store.
-spec does_user_exist(jid:jid() | error) -> boolean().
does_user_exist(#jid{luser = LUser, lserver = LServer}) ->
    case get_users() of
        all -> true;
        Users -> lists:member({LUser, LServer}, Users)
    end;
does_user_exist(error) ->
    false.

%% @doc The hook interface: handlers first, then the stored users.
-spec does_user_exist(mongooseim:host_type(), jid:jid(), exist_type()) -> boolean().
does_user_exist(HostType, JID, RequestType) ->
    case mongoose_hooks:does_user_exist(HostType, JID, RequestType) of
        true -> true;
        false -> does_user_exist(JID)
    end.

%% @doc Removes the user from the store and runs `remove_user' for its
%% domain's host type, as MongooseIM does.
-spec remove_user(jid:jid() | error) -> ok | error | {error, user_does_not_exist | not_allowed}.
remove_user(error) ->
    error;
remove_user(#jid{luser = LUser, lserver = LServer} = JID) ->
    case {does_user_exist(JID), mongoose_domain_api:get_domain_host_type(LServer)} of
        {false, _} ->
            {error, user_does_not_exist};
        {true, {error, not_found}} ->
            {error, not_allowed};
        {true, {ok, HostType}} ->
            case get_users() of
                all -> ok;
                Users -> set_users([jid:make_bare(U, S) || {U, S} <- Users -- [{LUser, LServer}]])
            end,
            Acc = mongoose_acc:new(#{location => ?LOCATION, host_type => HostType,
                                     lserver => LServer, element => undefined}),
            _ = mongoose_hooks:remove_user(Acc, LServer, LUser),
            ok
    end.

%% @doc Test host: `all' (every user exists, the default) or the users that exist.
-spec set_users(all | [jid:jid()]) -> ok.
set_users(all) ->
    persistent_term:put(?KEY, all);
set_users(JIDs) when is_list(JIDs) ->
    persistent_term:put(?KEY, lists:usort([jid:to_lus(J) || J <- JIDs])).

-spec get_users() -> users().
get_users() ->
    persistent_term:get(?KEY, all).
