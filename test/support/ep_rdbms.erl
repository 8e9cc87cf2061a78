%% @doc The test databases started by scripts/services.sh (PostgreSQL and
%% MariaDB on 127.0.0.1), for suites of the rdbms push store: the
%% `[outgoing_pools.rdbms.default]' TOML that points a node at one of them,
%% and direct SQL on a connection of the test's own (never through the
%% node's pool), to read and clear what the database holds.
%%
%% Settings come from the same variables as services.sh: EP_PG_PORT
%% (5432), EP_MARIADB_PORT (3306), EP_DB_NAME, EP_DB_USER, EP_DB_PASSWORD.
-module(ep_rdbms).

-export([settings/1, pool_toml/1, pool_toml/2, is_up/1,
         query/2, subscriptions/1, clear/1, insert/2]).

-type driver() :: pgsql | mysql.
-export_type([driver/0]).

-define(TABLE, "event_pusher_push_subscription").
-define(TIMEOUT, 10000).

%% @doc Where the driver's test database is.
-spec settings(driver()) -> #{atom() => term()}.
settings(Driver) ->
    {PortVar, DefaultPort} = case Driver of
                                 pgsql -> {"EP_PG_PORT", 5432};
                                 mysql -> {"EP_MARIADB_PORT", 3306}
                             end,
    #{driver => Driver,
      host => "127.0.0.1",
      port => list_to_integer(os:getenv(PortVar, integer_to_list(DefaultPort))),
      database => os:getenv("EP_DB_NAME", "ep_test"),
      username => os:getenv("EP_DB_USER", "ep_test"),
      password => os:getenv("EP_DB_PASSWORD", "ep_test_pw")}.

%% @doc The pool section for the driver's database.
-spec pool_toml(driver()) -> iodata().
pool_toml(Driver) ->
    pool_toml(Driver, maps:get(port, settings(Driver))).

%% @doc The same, connecting to another port (a proxy in front of it).
-spec pool_toml(driver(), inet:port_number()) -> iodata().
pool_toml(Driver, Port) ->
    #{host := Host, database := DB, username := User, password := Password} = settings(Driver),
    io_lib:format("[outgoing_pools.rdbms.default]\n"
                  "  workers = 2\n"
                  "  [outgoing_pools.rdbms.default.connection]\n"
                  "    driver = \"~s\"\n"
                  "    host = \"~s\"\n"
                  "    port = ~b\n"
                  "    database = \"~s\"\n"
                  "    username = \"~s\"\n"
                  "    password = \"~s\"\n"
                  "    query_timeout = 2000\n\n",
                  [Driver, Host, Port, DB, User, Password]).

%% @doc Whether the database answers a query.
-spec is_up(driver()) -> boolean().
is_up(Driver) ->
    try query(Driver, "SELECT 1") of
        [{<<"1">>}] -> true;
        _ -> false
    catch
        _:_ -> false
    end.

%% @doc Runs one SQL statement on a connection of its own: the rows of a
%% SELECT (tuples of binaries, NULL as `null'), else the affected count.
-spec query(driver(), iodata()) -> [tuple()] | non_neg_integer().
query(Driver, SQL) ->
    Conn = connect(Driver),
    try
        run(Driver, Conn, iolist_to_binary(SQL))
    after
        disconnect(Driver, Conn)
    end.

%% @doc The whole table as `{Owner, Node, PubSub, Form (decoded), CreatedAt}',
%% sorted.
-spec subscriptions(driver()) -> [{binary(), binary(), binary(), map(), integer()}].
subscriptions(Driver) ->
    Rows = query(Driver, "SELECT owner_jid, node, pubsub_jid, form, created_at FROM " ?TABLE),
    lists:sort([{Owner, Node, PubSub, jiffy:decode(Form, [return_maps]),
                 binary_to_integer(CreatedAt)}
                || {Owner, Node, PubSub, Form, CreatedAt} <- Rows]).

-spec clear(driver()) -> ok.
clear(Driver) ->
    _ = query(Driver, "DELETE FROM " ?TABLE),
    ok.

%% @doc Writes rows as another node (e.g. MongooseIM) would have:
%% `{Owner, Node, PubSub, FormJSON}'.
-spec insert(driver(), [{binary(), binary(), binary(), binary()}]) -> ok.
insert(Driver, Rows) ->
    Conn = connect(Driver),
    try
        lists:foreach(
          fun({Owner, Node, PubSub, Form}) ->
                  Values = lists:join(<<", ">>, [quote(Driver, V) || V <- [Owner, Node, PubSub, Form]]),
                  1 = run(Driver, Conn, iolist_to_binary(["INSERT INTO " ?TABLE " VALUES (",
                                                          Values, ", 1)"]))
          end, Rows)
    after
        disconnect(Driver, Conn)
    end.

%%====================================================================
%% Helpers
%%====================================================================

connect(pgsql = Driver) ->
    {ok, _} = application:ensure_all_started(p1_pgsql),
    #{host := Host, port := Port, database := DB, username := User, password := Password} =
        settings(Driver),
    {ok, Conn} = pgsql:connect([{host, Host}, {port, Port}, {database, DB}, {user, User},
                                {password, Password}]),
    {ok, _} = pgsql:squery(Conn, <<"SET client_encoding = 'UTF8'">>, ?TIMEOUT),
    Conn;
connect(mysql = Driver) ->
    {ok, _} = application:ensure_all_started(p1_mysql),
    #{host := Host, port := Port, database := DB, username := User, password := Password} =
        settings(Driver),
    {ok, Conn} = p1_mysql_conn:start(Host, Port, User, Password, DB, fun(_, _, _) -> ok end),
    {updated, _} = p1_mysql_conn:fetch(Conn, [<<"SET NAMES utf8mb4">>], self(), ?TIMEOUT),
    Conn.

disconnect(pgsql, Conn) -> catch pgsql:terminate(Conn), ok;
disconnect(mysql, Conn) -> catch p1_mysql_conn:stop(Conn), ok.

run(pgsql, Conn, SQL) ->
    case pgsql:squery(Conn, SQL, ?TIMEOUT) of
        {ok, [{"SELECT" ++ _, _Columns, Rows}]} -> [row(R) || R <- Rows];
        {ok, [Tag]} when is_list(Tag) -> list_to_integer(lists:last(string:lexemes(Tag, " ")));
        Other -> error({sql_failed, SQL, Other})
    end;
run(mysql, Conn, SQL) ->
    case p1_mysql_conn:fetch(Conn, [SQL], self(), ?TIMEOUT) of
        {data, Result} -> [row(R) || R <- p1_mysql:get_result_rows(Result)];
        {updated, Result} -> p1_mysql:get_result_affected_rows(Result);
        Other -> error({sql_failed, SQL, Other})
    end.

row(Values) ->
    list_to_tuple([value(V) || V <- Values]).

value(null) -> null;
value(V) when is_list(V) -> list_to_binary(V);
value(V) when is_integer(V) -> integer_to_binary(V);
value(V) -> V.

quote(pgsql, V) -> [$', binary:replace(V, <<"'">>, <<"''">>, [global]), $'];
quote(mysql, V) -> [$', binary:replace(binary:replace(V, <<"\\">>, <<"\\\\">>, [global]),
                                       <<"'">>, <<"\\'">>, [global]), $'].
