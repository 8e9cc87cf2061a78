%% @doc What the emulated MongooseIM modules share (not a MongooseIM module):
%% their named ETS tables, created on first use under `ejabberd_sup' (which
%% owns them, so they outlive the process that touched them first), and calls
%% to their servers, which start the host first if it does not run (the boot
%% sequence needs no explicit start), and the error reply to a stanza that
%% cannot be delivered.
-module(mim_host_lib).

-export([ensure_tables/1, call/2, bounce/5]).

-include("jlib.hrl").

%% @doc Creates the tables unless the first one exists already (a module
%% creates its tables together, so the first stands for all).
-spec ensure_tables([{atom(), list()}]) -> ok.
ensure_tables([{First, _} | _] = Tables) ->
    case ets:whereis(First) of
        undefined ->
            {ok, _} = ejabberd_sup:ensure_started(),
            lists:foreach(fun({Name, Opts}) -> ejabberd_sup:create_ets_table(Name, Opts) end,
                          Tables);
        _ ->
            ok
    end.

%% @doc A call to the host's registered server `Name'.
-spec call(atom(), term()) -> term().
call(Name, Request) ->
    {ok, _} = ejabberd_sup:ensure_started(),
    gen_server:call(Name, Request).

%% @doc Routes the error reply to `El' back from `To' to `From'; an error
%% stanza gets none (jlib refuses to answer an error with an error).
-spec bounce(mongoose_acc:t(), jid:jid(), jid:jid(), exml:element(), exml:element()) ->
          mongoose_acc:t().
bounce(Acc, From, To, El, Error) ->
    case jlib:make_error_reply(Acc, El, Error) of
        {Acc1, #xmlel{} = Reply} -> mongoose_router:route(mongoose_acc:update(To, From, Reply, Acc1));
        {Acc1, {error, _}} -> Acc1
    end.
