%% @doc What the emulated MongooseIM modules share (not a MongooseIM module):
%% their named ETS tables, created on first use under `ejabberd_sup' (which
%% owns them, so they outlive the process that touched them first), and calls
%% to their servers, which start the host first if it does not run (the boot
%% sequence needs no explicit start).
-module(mim_host_lib).

-export([ensure_tables/1, call/2]).

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
