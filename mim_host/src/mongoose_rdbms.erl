%% @doc The test host's `mongoose_rdbms': MongooseIM's prepared-query API
%% (`prepare/4', `execute/3,4', `execute_successfully/3,4',
%% `escape_prepared_like/1') over a real database connection, and the
%% worker of an emulated `[outgoing_pools.rdbms.*]' pool.
%%
%% As in MongooseIM: `prepare/4' records a named statement (with `?'
%% placeholders) once per node (`{error, already_exists}' after that);
%% `execute' runs it in the pool of the host type (else the global one) with
%% tag `default' unless given, and returns `{selected, [tuple()]}',
%% `{updated, N}' or `{error, Reason}'; `execute_successfully' returns the
%% first two and raises (logging `sql_execute_failed') on anything else, a
%% missing pool and a lost connection included.
%%
%% Emulated: a pool is one connection process (MongooseIM runs `workers' of
%% them), connected on its first query and again after the connection is
%% lost, so a pool starts even while its database is down. The drivers are
%% Debian's Erlang clients (test-only): `pgsql' (app p1_pgsql) for `pgsql'
%% and `cockroachdb', `p1_mysql' for `mysql'. Parameters are bound by this
%% module, quoted as literals of the driver's SQL dialect, and sent as one
%% simple query (MongooseIM binds them in server-side prepared statements;
%% what the database stores is the same). Values come back as binaries.
%% TLS options are accepted by the config but not used here.
-module(mongoose_rdbms).

-behaviour(gen_server).

%% MongooseIM's API
-export([prepare/4, prepared/1,
         execute/3, execute/4,
         execute_successfully/3, execute_successfully/4,
         escape_prepared_like/1]).

%% The pool worker (started by the emulated mongoose_wpool)
-export([start_link/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-include_lib("kernel/include/logger.hrl").

-type query_name() :: atom().
-type query_params() :: [term()].
-type query_result() :: {selected, [tuple()]} | {updated, non_neg_integer()}
                      | {error, term()}.
-export_type([query_name/0, query_params/0, query_result/0]).

-define(STATEMENTS, prepared_statements).
-define(DEFAULT_POOL_TAG, default).
-define(CONNECT_TIMEOUT, 5000).

%%--------------------------------------------------------------------
%% API
%%--------------------------------------------------------------------

%% @doc Records a named statement; a name is prepared once per node.
-spec prepare(query_name(), Table :: atom() | binary(), Fields :: [atom() | binary()],
              Statement :: iodata()) -> {ok, query_name()} | {error, already_exists}.
prepare(Name, Table, Fields, Statement) when is_atom(Name) ->
    ok = ensure_statements_table(),
    Entry = {Name, to_bin(Table), [to_bin(F) || F <- Fields], iolist_to_binary(Statement)},
    case ets:insert_new(?STATEMENTS, Entry) of
        true -> {ok, Name};
        false -> {error, already_exists}
    end.

-spec prepared(query_name()) -> boolean().
prepared(Name) ->
    ets:whereis(?STATEMENTS) =/= undefined andalso ets:member(?STATEMENTS, Name).

-spec execute(mongooseim:host_type_or_global(), query_name(), query_params()) ->
          query_result().
execute(HostType, Name, Params) ->
    execute(HostType, ?DEFAULT_POOL_TAG, Name, Params).

-spec execute(mongooseim:host_type_or_global(), mongoose_wpool:tag(), query_name(),
              query_params()) -> query_result().
execute(HostType, Tag, Name, Params) when is_atom(Tag), is_atom(Name), is_list(Params) ->
    mongoose_wpool:call(rdbms, HostType, Tag, {sql_execute, Name, Params}).

%% @doc Like execute/3, but anything other than a selection or an update
%% (an SQL error, no pool, a lost connection) is logged and raised.
-spec execute_successfully(mongooseim:host_type_or_global(), query_name(), query_params()) ->
          query_result().
execute_successfully(HostType, Name, Params) ->
    execute_successfully(HostType, ?DEFAULT_POOL_TAG, Name, Params).

-spec execute_successfully(mongooseim:host_type_or_global(), mongoose_wpool:tag(),
                           query_name(), query_params()) -> query_result().
execute_successfully(HostType, Tag, Name, Params) ->
    case execute(HostType, Tag, Name, Params) of
        {selected, _} = Result ->
            Result;
        {updated, _} = Result ->
            Result;
        Other ->
            Log = #{what => sql_execute_failed, host => HostType, statement_name => Name,
                    statement_query => statement_text(Name), statement_params => Params,
                    reason => Other},
            ?LOG_ERROR(Log),
            error(Log)
    end.

%% @doc Escapes `%', `_' and the escape character `$' itself with `$', for a
%% parameter of `LIKE ? ESCAPE '$'' (the caller adds its own wildcards).
-spec escape_prepared_like(binary()) -> binary().
escape_prepared_like(S) ->
    << <<(escape_like_char(C))/binary>> || <<C>> <= S >>.

%%--------------------------------------------------------------------
%% The pool worker
%%--------------------------------------------------------------------

%% @doc A pool's connection process, registered under the pool's name.
-spec start_link(atom(), [{atom(), term()}], map()) -> {ok, pid()}.
start_link(ProcName, _WpoolOpts, ConnOpts) ->
    gen_server:start_link({local, ProcName}, ?MODULE, ConnOpts, []).

-spec init(map()) -> {ok, map()}.
init(ConnOpts) ->
    {ok, #{opts => ConnOpts, conn => undefined}}.

-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call(Request, _From, State) ->
    {Reply, State1} = run(Request, State),
    {reply, Reply, State1}.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% The emulated mongoose_wpool:call/4 sends this.
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({'$wpool_call', From, Ref, Request}, State) ->
    {Reply, State1} = run(Request, State),
    From ! {Ref, Reply},
    {noreply, State1};
handle_info({'DOWN', MRef, process, _Pid, Why}, #{conn := {_Driver, _, MRef}} = State) ->
    ?LOG_WARNING(#{what => rdbms_connection_lost, reason => Why}),
    {noreply, State#{conn := undefined}};
handle_info(_Msg, State) ->
    {noreply, State}.

-spec terminate(term(), map()) -> ok.
terminate(_Reason, State) ->
    _ = disconnect(State),
    ok.

%%--------------------------------------------------------------------
%% Running a statement
%%--------------------------------------------------------------------

run({sql_execute, Name, Params}, State) ->
    case ets:whereis(?STATEMENTS) =/= undefined andalso ets:lookup(?STATEMENTS, Name) of
        [{Name, _Table, _Fields, Statement}] ->
            with_connection(State, fun(Conn) -> query(Conn, Statement, Params, State) end);
        _ ->
            {{error, {statement_not_prepared, Name}}, State}
    end;
run(Other, State) ->
    {{error, {unsupported_request, Other}}, State}.

with_connection(#{conn := undefined} = State, Work) ->
    case connect(maps:get(opts, State)) of
        {ok, Conn} -> with_connection(State#{conn := Conn}, Work);
        {error, Why} -> {{error, {connect_failed, Why}}, State}
    end;
with_connection(#{conn := Conn} = State, Work) ->
    try Work(Conn) of
        Result -> {Result, State}
    catch
        %% A timeout or a driver that died: the connection is not reused.
        Class:Why ->
            _ = disconnect(State),
            {{error, {connection_failed, {Class, Why}}}, State#{conn := undefined}}
    end.

query({Driver, Pid, _MRef}, Statement, Params, #{opts := Opts}) ->
    SQL = bind(Driver, Statement, Params),
    Timeout = query_timeout(Opts),
    case Driver of
        mysql -> mysql_result(p1_mysql_conn:fetch(Pid, [SQL], self(), Timeout));
        _ -> pgsql_result(pgsql:squery(Pid, SQL, Timeout))
    end.

query_timeout(#{query_timeout := 0}) -> infinity;
query_timeout(#{query_timeout := T}) -> T;
query_timeout(_) -> 5000.

%%--------------------------------------------------------------------
%% Connections
%%--------------------------------------------------------------------

connect(#{driver := mysql, host := Host, port := Port, username := User,
          password := Password, database := Database}) ->
    {ok, _} = application:ensure_all_started(p1_mysql),
    LogFun = fun(_Level, _Format, _Args) -> ok end,
    open(mysql,
         fun() -> p1_mysql_conn:start(Host, Port, User, Password, Database, LogFun) end,
         fun(Pid) ->
                 case p1_mysql_conn:fetch(Pid, [<<"SET NAMES utf8mb4">>], self(),
                                          ?CONNECT_TIMEOUT) of
                     {updated, _} -> ok;
                     Other -> Other
                 end
         end);
connect(#{driver := Driver, host := Host, port := Port, username := User,
          password := Password, database := Database}) when Driver =:= pgsql;
                                                          Driver =:= cockroachdb ->
    {ok, _} = application:ensure_all_started(p1_pgsql),
    Options = [{host, Host}, {port, Port}, {database, Database}, {user, User},
               {password, Password}],
    Setup = <<"SET client_encoding = 'UTF8'; SET standard_conforming_strings = on">>,
    open(Driver,
         fun() -> pgsql:connect(Options) end,
         fun(Pid) ->
                 case pgsql:squery(Pid, Setup, ?CONNECT_TIMEOUT) of
                     {ok, [_, _]} -> ok;
                     Other -> Other
                 end
         end).

%% A connection from Start, monitored, once Setup (its session settings)
%% answered ok; a failure of either is an error, never a crash of the pool.
open(Driver, Start, Setup) ->
    try Start() of
        {ok, Pid} ->
            Conn = {Driver, Pid, erlang:monitor(process, Pid)},
            case Setup(Pid) of
                ok -> {ok, Conn};
                Other -> close(Conn), {error, Other}
            end;
        Error ->
            {error, Error}
    catch
        Class:Why -> {error, {Class, Why}}
    end.

disconnect(#{conn := undefined}) -> ok;
disconnect(#{conn := Conn}) -> close(Conn).

close({_Driver, Pid, MRef}) ->
    erlang:demonitor(MRef, [flush]),
    exit(Pid, kill),
    ok.

%%--------------------------------------------------------------------
%% Binding parameters
%%--------------------------------------------------------------------

%% Each `?' outside a quoted literal takes the next parameter.
-spec bind(atom(), binary(), query_params()) -> binary().
bind(Driver, Statement, Params) ->
    bind(Driver, Statement, Params, none, []).

bind(_Driver, <<>>, [], _Quote, Acc) ->
    iolist_to_binary(lists:reverse(Acc));
bind(_Driver, <<>>, Extra, _Quote, _Acc) ->
    error({too_many_query_params, Extra});
bind(Driver, <<$?, Rest/binary>>, [Param | Params], none, Acc) ->
    bind(Driver, Rest, Params, none, [literal(Driver, Param) | Acc]);
bind(_Driver, <<$?, _/binary>>, [], none, _Acc) ->
    error(too_few_query_params);
bind(Driver, <<Q, Rest/binary>>, Params, none, Acc) when Q =:= $'; Q =:= $" ->
    bind(Driver, Rest, Params, Q, [Q | Acc]);
bind(Driver, <<Q, Rest/binary>>, Params, Q, Acc) ->
    bind(Driver, Rest, Params, none, [Q | Acc]);
bind(Driver, <<C, Rest/binary>>, Params, Quote, Acc) ->
    bind(Driver, Rest, Params, Quote, [C | Acc]).

literal(_Driver, null) -> <<"NULL">>;
literal(_Driver, undefined) -> <<"NULL">>;
literal(_Driver, I) when is_integer(I) -> integer_to_binary(I);
literal(pgsql, true) -> <<"TRUE">>;
literal(pgsql, false) -> <<"FALSE">>;
literal(cockroachdb, B) when is_boolean(B) -> literal(pgsql, B);
literal(mysql, true) -> <<"1">>;
literal(mysql, false) -> <<"0">>;
literal(Driver, Text) when is_binary(Text); is_list(Text) ->
    Escaped = << <<(escape_char(Driver, C))/binary>> || <<C>> <= iolist_to_binary(Text) >>,
    <<$', Escaped/binary, $'>>.

%% PostgreSQL (standard_conforming_strings on): only the quote is doubled.
%% MySQL/MariaDB: backslash escapes.
escape_char(mysql, $') -> <<"\\'">>;
escape_char(mysql, $\\) -> <<"\\\\">>;
escape_char(mysql, 0) -> <<"\\0">>;
escape_char(_Pg, 0) -> error(nul_byte_in_text_parameter);
escape_char(_Pg, $') -> <<"''">>;
escape_char(_Driver, C) -> <<C>>.

escape_like_char($%) -> <<"$%">>;
escape_like_char($_) -> <<"$_">>;
escape_like_char($$) -> <<"$$">>;
escape_like_char(C) -> <<C>>.

%%--------------------------------------------------------------------
%% Results
%%--------------------------------------------------------------------

%% One statement, one result: "SELECT n" with rows, or a command tag.
pgsql_result({ok, [{"SELECT" ++ _, _Columns, Rows}]}) ->
    {selected, [list_to_tuple([value(V) || V <- Row]) || Row <- Rows]};
pgsql_result({ok, [{error, Fields}]}) ->
    {error, pgsql_error_text(Fields)};
pgsql_result({ok, [Tag]}) when is_list(Tag) ->
    {updated, list_to_integer(lists:last(string:lexemes(Tag, " ")))};
pgsql_result(Other) ->
    %% A timeout or a lost socket: the connection is dropped.
    error({pgsql_connection_failed, Other}).

pgsql_error_text(Fields) ->
    case lists:keyfind(message, 1, Fields) of
        {message, Text} -> unicode:characters_to_binary(list_to_binary(Text));
        false -> Fields
    end.

mysql_result({data, Result}) ->
    {selected, [list_to_tuple([value(V) || V <- Row])
                || Row <- p1_mysql:get_result_rows(Result)]};
mysql_result({updated, Result}) ->
    {updated, p1_mysql:get_result_affected_rows(Result)};
mysql_result({error, Result}) when is_tuple(Result) ->
    {error, list_to_binary(p1_mysql:get_result_reason(Result))};
mysql_result(Other) ->
    %% A timeout or a lost socket: the connection is dropped.
    error({mysql_connection_failed, Other}).

%% The drivers give text as a list of bytes (UTF-8 as the server sent it).
value(null) -> null;
value(V) when is_list(V) -> list_to_binary(V);
value(V) when is_binary(V); is_integer(V) -> V.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

ensure_statements_table() ->
    case ets:whereis(?STATEMENTS) of
        undefined ->
            ok = mongoose_wpool:ensure_started(),
            ejabberd_sup:create_ets_table(?STATEMENTS, [named_table, public, set,
                                                        {read_concurrency, true}]);
        _ ->
            ok
    end.

statement_text(Name) ->
    case prepared(Name) andalso ets:lookup(?STATEMENTS, Name) of
        [{_, _Table, _Fields, Statement}] -> Statement;
        _ -> not_found
    end.

to_bin(A) when is_atom(A) -> atom_to_binary(A, utf8);
to_bin(B) when is_binary(B) -> B.
