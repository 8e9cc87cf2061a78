%% @doc The test host's `mongoose_mnesia': `create_table/2' as MongooseIM
%% has it (an existing table is fine: copies are added for this node; any
%% other failure raises `{mnesia_create_table_failed, Table, Result}').
%%
%% MongooseIM starts mnesia at boot; the test host starts it on first use
%% (`ensure_started/0', also called by `create_table/2') with a disc schema in
%% a fresh directory of this OS process, so `disc_copies' tables work and no
%% run sees another's data. A test that reads or writes a table directly
%% (e.g. records in MongooseIM's shape) calls `ensure_started/0' first.
-module(mongoose_mnesia).

-export([create_table/2]).
%% test host extension
-export([ensure_started/0]).

-include_lib("kernel/include/logger.hrl").

-spec create_table(atom(), list()) -> {atomic, ok} | {aborted, {already_exists, atom()}}.
create_table(Table, Opts) ->
    ok = ensure_started(),
    case mnesia:create_table(Table, Opts) of
        {atomic, ok} = Res ->
            Res;
        {aborted, {already_exists, Table}} = Res ->
            [add_copy(Table, Type) || Type <- [disc_copies, disc_only_copies, ram_copies],
                                      proplists:get_value(Type, Opts, []) =/= []],
            Res;
        Res ->
            ?LOG_CRITICAL(#{what => mnesia_create_table_failed, table => Table,
                            create_opts => Opts, reason => Res}),
            erlang:error({mnesia_create_table_failed, Table, Res})
    end.

%% @doc Starts mnesia unless it runs: a disc schema in the configured
%% `mnesia' `dir', else in `<tmp>/ep_mnesia.<os pid>'.
-spec ensure_started() -> ok.
ensure_started() ->
    case mnesia:system_info(is_running) of
        yes ->
            ok;
        _ ->
            Dir = case application:get_env(mnesia, dir) of
                      {ok, Configured} -> Configured;
                      undefined -> default_dir()
                  end,
            ok = application:set_env(mnesia, dir, Dir),
            case mnesia:create_schema([node()]) of
                ok -> ok;
                {error, {_, {already_exists, _}}} -> ok
            end,
            ok = mnesia:start(),
            ok = mnesia:wait_for_tables([schema], 30000),
            ?LOG_INFO(#{what => mnesia_started, dir => Dir}),
            ok
    end.

-spec default_dir() -> file:filename().
default_dir() ->
    Tmp = case os:getenv("TMPDIR") of
              false -> "/tmp";
              T -> T
          end,
    filename:join(Tmp, "ep_mnesia." ++ os:getpid()).

-spec add_copy(atom(), atom()) -> ok.
add_copy(Table, Type) ->
    _ = mnesia:add_table_copy(Table, node(), Type),
    ok.
