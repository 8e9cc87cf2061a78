%% @doc A real HTTP/1.1 server for tests, built on gen_tcp: it records every
%% request (method, path, headers, body, arrival time, connection) and answers
%% with the statuses a test asks for. It can hold requests open until released
%% and go down and come back on the same port.
%%
%% Statuses: one-shot statuses queued for a path (or for any path) are used
%% first, in order; then a sticky status set for the path; then the default
%% status (200 unless set with `set_status(Sink, default, S)'). A status is
%% a code, or `{Code, #{retry_after => Value, delay => Ms}}': the answer
%% carries a `Retry-After' header, and/or is sent only `Ms' after the
%% request arrived (a slow endpoint; the request is recorded on arrival).
-module(ep_http_sink).
-behaviour(gen_server).

%% API
-export([start/0, start/1, stop/1, port/1, url/1,
         requests/1, requests/2, wait_for_requests/3, wait_for_requests/4,
         set_status/3, queue_statuses/3, hold/1, release/1, held_count/1,
         down/1, up/1, reset/1, header/2]).

%% gen_server callbacks
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

%% internal entry points (spawned)
-export([accept_loop/2, connection/2]).

-type sink() :: pid().
-type request() :: #{method := binary(),
                     path := binary(),
                     headers := [{binary(), binary()}],
                     body := binary(),
                     at := integer(),           % erlang:monotonic_time(microsecond)
                     conn := pos_integer(),     % connection number (keep-alive proof)
                     seq := pos_integer(),      % arrival order
                     status := 100..599}.       % the status the sink answered (or will)
-type path_key() :: binary() | any.
-type status() :: 100..599 | {100..599, #{retry_after => binary(), delay => non_neg_integer()}}.
-export_type([sink/0, request/0, status/0]).

-define(DEFAULT_WAIT_MS, 5000).

%%====================================================================
%% API
%%====================================================================

-spec start() -> {ok, sink()}.
start() ->
    start(#{}).

%% @doc Starts a sink on 127.0.0.1; `port => 0' (default) picks a free port.
%% Not linked to the caller: common_test runs init and cases in different
%% processes.
-spec start(#{port => inet:port_number()}) -> {ok, sink()} | {error, term()}.
start(Opts) ->
    gen_server:start(?MODULE, Opts, []).

-spec stop(sink()) -> ok.
stop(Sink) ->
    gen_server:stop(Sink).

-spec port(sink()) -> inet:port_number().
port(Sink) ->
    gen_server:call(Sink, port).

%% @doc `<<"http://127.0.0.1:Port">>', the value of a pool's `connection.host'.
-spec url(sink()) -> binary().
url(Sink) ->
    iolist_to_binary(["http://127.0.0.1:", integer_to_list(port(Sink))]).

%% @doc Every request received so far, in arrival order.
-spec requests(sink()) -> [request()].
requests(Sink) ->
    gen_server:call(Sink, requests).

-spec requests(sink(), binary()) -> [request()].
requests(Sink, Path) ->
    [R || R = #{path := P} <- requests(Sink), P =:= Path].

%% @doc Waits until at least `N' requests arrived and returns all of them.
-spec wait_for_requests(sink(), non_neg_integer(), timeout()) -> [request()].
wait_for_requests(Sink, N, TimeoutMs) ->
    ep_wait:for(fun() -> requests(Sink) end,
                fun(Rs) -> length(Rs) >= N end,
                TimeoutMs, #{name => {sink_requests, N}}).

-spec wait_for_requests(sink(), binary(), non_neg_integer(), timeout()) -> [request()].
wait_for_requests(Sink, Path, N, TimeoutMs) ->
    ep_wait:for(fun() -> requests(Sink, Path) end,
                fun(Rs) -> length(Rs) >= N end,
                TimeoutMs, #{name => {sink_requests, Path, N}}).

%% @doc Sticky status for a path, or for every path (`default').
-spec set_status(sink(), binary() | default, status()) -> ok.
set_status(Sink, PathOrDefault, Status) ->
    gen_server:call(Sink, {set_status, PathOrDefault, Status}).

%% @doc One-shot statuses, used in order by the next requests to `Path'
%% (or to any path), before the sticky ones.
-spec queue_statuses(sink(), path_key(), [status()]) -> ok.
queue_statuses(Sink, PathOrAny, Statuses) ->
    gen_server:call(Sink, {queue_statuses, PathOrAny, Statuses}).

%% @doc From now on requests are recorded when they arrive but not answered
%% until `release/1'.
-spec hold(sink()) -> ok.
hold(Sink) ->
    gen_server:call(Sink, hold).

%% @doc Answers every held request and stops holding.
-spec release(sink()) -> ok.
release(Sink) ->
    gen_server:call(Sink, release).

-spec held_count(sink()) -> non_neg_integer().
held_count(Sink) ->
    gen_server:call(Sink, held_count).

%% @doc The sink goes down: the listening socket and every open connection are
%% closed (held requests are dropped unanswered). Recorded requests are kept.
-spec down(sink()) -> ok.
down(Sink) ->
    gen_server:call(Sink, down).

%% @doc Listens again on the same port.
-spec up(sink()) -> ok | {error, term()}.
up(Sink) ->
    gen_server:call(Sink, up).

%% @doc Forgets recorded requests and status settings; stops holding.
-spec reset(sink()) -> ok.
reset(Sink) ->
    gen_server:call(Sink, reset).

%% @doc The value of a (lowercase) header of a recorded request, or `undefined'.
-spec header(binary(), request()) -> binary() | undefined.
header(Name, #{headers := Headers}) ->
    case lists:keyfind(Name, 1, Headers) of
        {_, Value} -> Value;
        false -> undefined
    end.

%%====================================================================
%% gen_server callbacks
%%====================================================================

-spec init(map()) -> {ok, map()} | {stop, term()}.
init(Opts) ->
    process_flag(trap_exit, true),
    State0 = #{port => maps:get(port, Opts, 0), lsock => undefined, acceptor => undefined,
               requests => [], seq => 0, conn_seq => 0,
               sticky => #{}, default => 200, queues => #{},
               holding => false, held => []},
    case listen(State0) of
        {ok, State} -> {ok, State};
        {error, Reason} -> {stop, Reason}
    end.

-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()} | {noreply, map()}.
handle_call(port, _From, State = #{port := Port}) ->
    {reply, Port, State};
handle_call(requests, _From, State = #{requests := Rs}) ->
    {reply, lists:reverse(Rs), State};
handle_call(next_conn, _From, State = #{conn_seq := N}) ->
    {reply, N + 1, State#{conn_seq := N + 1}};
handle_call({request, Req}, From, State) ->
    handle_request(Req, From, State);
handle_call({set_status, default, Status}, _From, State) ->
    {reply, ok, State#{default := Status}};
handle_call({set_status, Path, Status}, _From, State = #{sticky := Sticky}) ->
    {reply, ok, State#{sticky := Sticky#{Path => Status}}};
handle_call({queue_statuses, Key, Statuses}, _From, State = #{queues := Qs}) ->
    {reply, ok, State#{queues := Qs#{Key => maps:get(Key, Qs, []) ++ Statuses}}};
handle_call(hold, _From, State) ->
    {reply, ok, State#{holding := true}};
handle_call(release, _From, State) ->
    {reply, ok, release_held(State#{holding := false})};
handle_call(held_count, _From, State = #{held := Held}) ->
    {reply, length(Held), State};
handle_call(down, _From, State) ->
    {reply, ok, close(State)};
handle_call(up, _From, State = #{lsock := undefined}) ->
    case listen(State) of
        {ok, NewState} -> {reply, ok, NewState};
        {error, _} = Error -> {reply, Error, State}
    end;
handle_call(up, _From, State) ->
    {reply, ok, State};
handle_call(reset, _From, State) ->
    State1 = release_held(State#{holding := false}),
    {reply, ok, State1#{requests := [], sticky := #{}, default := 200, queues := #{}}}.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({'EXIT', Pid, _Reason}, State = #{acceptor := Pid}) ->
    {noreply, State#{acceptor := undefined}};
handle_info(_Info, State) ->
    {noreply, State}.

-spec terminate(term(), map()) -> ok.
terminate(_Reason, State) ->
    _ = close(State),
    ok.

%%====================================================================
%% Server side helpers
%%====================================================================

listen(State = #{port := Port}) ->
    Opts = [binary, {packet, http_bin}, {active, false}, {reuseaddr, true},
            {ip, {127, 0, 0, 1}}, {backlog, 1024}, {nodelay, true}],
    case gen_tcp:listen(Port, Opts) of
        {ok, LSock} ->
            {ok, ActualPort} = inet:port(LSock),
            Acceptor = spawn_link(?MODULE, accept_loop, [self(), LSock]),
            {ok, State#{lsock := LSock, port := ActualPort, acceptor := Acceptor}};
        {error, _} = Error ->
            Error
    end.

%% Killing the acceptor kills every connection process linked to it, which
%% closes their sockets: clients see the server go away.
close(State = #{lsock := LSock, acceptor := Acceptor}) ->
    _ = is_pid(Acceptor) andalso exit(Acceptor, kill),
    _ = LSock =/= undefined andalso gen_tcp:close(LSock),
    State#{lsock := undefined, acceptor := undefined, held := []}.

handle_request(Req = #{path := Path}, From, State) ->
    #{seq := Seq, requests := Rs, holding := Holding, held := Held} = State,
    {Status, State1} = next_status(Path, State),
    Recorded = Req#{seq => Seq + 1, status => code(Status)},
    State2 = State1#{seq := Seq + 1, requests := [Recorded | Rs]},
    case Holding of
        true -> {noreply, State2#{held := [{From, Status} | Held]}};
        false -> {reply, {respond, Status}, State2}
    end.

next_status(Path, State = #{queues := Qs, sticky := Sticky, default := Default}) ->
    case Qs of
        #{Path := [S | Rest]} -> {S, State#{queues := Qs#{Path := Rest}}};
        #{any := [S | Rest]} -> {S, State#{queues := Qs#{any := Rest}}};
        _ -> {maps:get(Path, Sticky, Default), State}
    end.

release_held(State = #{held := Held}) ->
    [gen_server:reply(From, {respond, Status}) || {From, Status} <- lists:reverse(Held)],
    State#{held := []}.

%%====================================================================
%% Acceptor and connections
%%====================================================================

-spec accept_loop(sink(), gen_tcp:socket()) -> ok.
accept_loop(Sink, LSock) ->
    case gen_tcp:accept(LSock) of
        {ok, Sock} ->
            Pid = spawn_link(?MODULE, connection, [Sink, Sock]),
            ok = gen_tcp:controlling_process(Sock, Pid),
            Pid ! go,
            accept_loop(Sink, LSock);
        {error, closed} ->
            ok;
        {error, _} ->
            %% e.g. emfile: keep serving the connections we have.
            accept_loop(Sink, LSock)
    end.

%% @doc One client connection: requests are read one after the other
%% (keep-alive) until the client closes or asks to close.
-spec connection(sink(), gen_tcp:socket()) -> ok.
connection(Sink, Sock) ->
    receive go -> ok end,
    ConnId = gen_server:call(Sink, next_conn),
    %% Any failure (client gone, bad request) ends this connection only.
    try serve(Sink, Sock, ConnId)
    catch _:_ -> ok
    after gen_tcp:close(Sock)
    end.

serve(Sink, Sock, ConnId) ->
    case read_request(Sock) of
        {ok, Req0 = #{keep_alive := KeepAlive}} ->
            Req = (maps:remove(keep_alive, Req0))#{conn => ConnId},
            {respond, Status} = gen_server:call(Sink, {request, Req}, infinity),
            case Status of
                {_, #{delay := Ms}} -> timer:sleep(Ms);
                _ -> ok
            end,
            ok = gen_tcp:send(Sock, response(Status, KeepAlive)),
            case KeepAlive of
                true -> serve(Sink, Sock, ConnId);
                false -> ok
            end;
        {error, _} ->
            ok
    end.

read_request(Sock) ->
    ok = inet:setopts(Sock, [{packet, http_bin}]),
    case gen_tcp:recv(Sock, 0) of
        {ok, {http_request, Method, Uri, Version}} ->
            case read_headers(Sock, []) of
                {ok, Headers} ->
                    case read_body(Sock, Headers) of
                        {ok, Body} ->
                            {ok, #{method => to_bin(Method), path => uri_path(Uri),
                                   headers => Headers, body => Body,
                                   at => erlang:monotonic_time(microsecond),
                                   keep_alive => keep_alive(Version, Headers)}};
                        Error ->
                            Error
                    end;
                Error ->
                    Error
            end;
        {ok, {http_error, Line}} ->
            {error, {bad_request_line, Line}};
        {ok, Other} ->
            {error, {unexpected, Other}};
        {error, _} = Error ->
            Error
    end.

read_headers(Sock, Acc) ->
    case gen_tcp:recv(Sock, 0) of
        {ok, {http_header, _, _Field, RawName, Value}} ->
            Name = string:lowercase(to_bin(RawName)),
            read_headers(Sock, [{Name, Value} | Acc]);
        {ok, http_eoh} ->
            {ok, lists:reverse(Acc)};
        {ok, Other} ->
            {error, {bad_header, Other}};
        {error, _} = Error ->
            Error
    end.

read_body(Sock, Headers) ->
    TransferEncoding = proplists:get_value(<<"transfer-encoding">>, Headers, <<>>),
    case string:lowercase(TransferEncoding) of
        <<"chunked">> ->
            read_chunks(Sock, []);
        _ ->
            case proplists:get_value(<<"content-length">>, Headers) of
                undefined -> {ok, <<>>};
                Len -> recv_exact(Sock, binary_to_integer(string:trim(Len)))
            end
    end.

recv_exact(_Sock, 0) ->
    {ok, <<>>};
recv_exact(Sock, Len) ->
    ok = inet:setopts(Sock, [{packet, raw}]),
    gen_tcp:recv(Sock, Len).

read_chunks(Sock, Acc) ->
    ok = inet:setopts(Sock, [{packet, line}]),
    {ok, SizeLine} = gen_tcp:recv(Sock, 0),
    [SizeHex | _] = binary:split(string:trim(SizeLine), <<";">>),
    case binary_to_integer(SizeHex, 16) of
        0 ->
            ok = skip_trailers(Sock),
            {ok, iolist_to_binary(lists:reverse(Acc))};
        Size ->
            {ok, Data} = recv_exact(Sock, Size),
            {ok, <<"\r\n">>} = gen_tcp:recv(Sock, 2),
            read_chunks(Sock, [Data | Acc])
    end.

skip_trailers(Sock) ->
    ok = inet:setopts(Sock, [{packet, line}]),
    case gen_tcp:recv(Sock, 0) of
        {ok, <<"\r\n">>} -> ok;
        {ok, _Trailer} -> skip_trailers(Sock)
    end.

keep_alive(Version, Headers) ->
    Connection = string:lowercase(proplists:get_value(<<"connection">>, Headers, <<>>)),
    case Version of
        {1, 1} -> Connection =/= <<"close">>;
        _ -> Connection =:= <<"keep-alive">>
    end.

code({Code, _}) -> Code;
code(Code) -> Code.

response(Spec, KeepAlive) ->
    Status = code(Spec),
    RetryAfter = case Spec of
                     {_, #{retry_after := Value}} -> [<<"retry-after: ">>, Value, <<"\r\n">>];
                     _ -> []
                 end,
    Body = case Status of
               204 -> <<>>;
               304 -> <<>>;
               _ -> <<"ok">>
           end,
    ConnHeader = case KeepAlive of
                     true -> <<"keep-alive">>;
                     false -> <<"close">>
                 end,
    [<<"HTTP/1.1 ">>, integer_to_binary(Status), <<" ">>, reason(Status), <<"\r\n">>,
     <<"content-type: text/plain\r\n">>,
     <<"content-length: ">>, integer_to_binary(byte_size(Body)), <<"\r\n">>,
     <<"connection: ">>, ConnHeader, <<"\r\n">>, RetryAfter, <<"\r\n">>,
     Body].

reason(200) -> <<"OK">>;
reason(201) -> <<"Created">>;
reason(204) -> <<"No Content">>;
reason(400) -> <<"Bad Request">>;
reason(404) -> <<"Not Found">>;
reason(410) -> <<"Gone">>;
reason(429) -> <<"Too Many Requests">>;
reason(500) -> <<"Internal Server Error">>;
reason(503) -> <<"Service Unavailable">>;
reason(_) -> <<"Status">>.

uri_path({abs_path, Path}) -> Path;
uri_path({absoluteURI, _Scheme, _Host, _Port, Path}) -> Path;
uri_path('*') -> <<"*">>;
uri_path(Other) -> to_bin(Other).

to_bin(B) when is_binary(B) -> B;
to_bin(A) when is_atom(A) -> atom_to_binary(A, utf8);
to_bin(L) when is_list(L) -> list_to_binary(L).
