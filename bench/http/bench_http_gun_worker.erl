%% Row (b)'s pool worker, shaped like a MongooseIM http pool worker: it owns
%% one keep-alive connection (gun here, fusco in MongooseIM) and serves one
%% synchronous request at a time inside handle_call, so a caller is blocked
%% for the whole round trip and for every request queued before its own.
-module(bench_http_gun_worker).
-behaviour(gen_server).

-export([start_link/1, post/5]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(CONNECT_TIMEOUT_MS, 5000).

-type request() :: {post, Path :: binary(), [{binary(), binary()}], Body :: binary(),
                    TimeoutMs :: pos_integer()}.

-spec start_link(inet:port_number()) -> {ok, pid()} | {error, term()}.
start_link(Port) ->
    gen_server:start_link(?MODULE, Port, []).

%% The caller's side: MongooseIM's mongoose_wpool:call/4 ends in a gen_server
%% call to the chosen worker with the pool's call timeout.
-spec post(pid(), binary(), [{binary(), binary()}], binary(), pos_integer()) ->
    {ok, 100..599} | {error, term()}.
post(Worker, Path, Headers, Body, TimeoutMs) ->
    gen_server:call(Worker, {post, Path, Headers, Body, TimeoutMs}, TimeoutMs + 1000).

-spec init(inet:port_number()) -> {ok, pid()} | {stop, term()}.
init(Port) ->
    {ok, Conn} = gun:open({127, 0, 0, 1}, Port, #{protocols => [http], retry => 0}),
    case gun:await_up(Conn, ?CONNECT_TIMEOUT_MS) of
        {ok, http} -> {ok, Conn};
        {error, Reason} -> {stop, {connect_failed, Reason}}
    end.

-spec handle_call(request(), gen_server:from(), pid()) -> {reply, term(), pid()}.
handle_call({post, Path, Headers, Body, TimeoutMs}, _From, Conn) ->
    Stream = gun:post(Conn, Path, Headers, Body),
    Reply = case gun:await(Conn, Stream, TimeoutMs) of
                {response, fin, Status, _RespHeaders} ->
                    {ok, Status};
                {response, nofin, Status, _RespHeaders} ->
                    case gun:await_body(Conn, Stream, TimeoutMs) of
                        {ok, _RespBody} -> {ok, Status};
                        {error, Reason} -> {error, Reason}
                    end;
                {error, Reason} ->
                    {error, Reason}
            end,
    {reply, Reply, Conn}.

-spec handle_cast(term(), pid()) -> {noreply, pid()}.
handle_cast(_Msg, Conn) ->
    {noreply, Conn}.

-spec handle_info(term(), pid()) -> {noreply, pid()} | {stop, term(), pid()}.
handle_info({gun_down, Conn, _Proto, Reason, _Killed, _Unprocessed}, Conn) ->
    {stop, {connection_down, Reason}, Conn};
handle_info(_Msg, Conn) ->
    {noreply, Conn}.

-spec terminate(term(), pid()) -> ok.
terminate(_Reason, Conn) ->
    gun:close(Conn).
