%% @doc A plain TCP proxy that tests control, to take a server away from
%% the node under test without touching the server (shared by others):
%% `up' relays each connection to 127.0.0.1:Upstream byte for byte; `down'
%% cuts every open connection and closes each new one at once, as an
%% unreachable server would. Listens on 127.0.0.1 (a port of its own); not
%% linked to its starter. start/2 takes what relays client -> server bytes
%% (ep_sns_proxy reads each HTTP request there, and keeps it with record/2).
-module(ep_tcp_proxy).

-behaviour(gen_server).

-export([start/1, start/2, stop/1, port/1, up/1, down/1, refused/1]).
%% For proxies built on this one
-export([copy/2, record/2, recorded/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(TIMEOUT, 10000).

-type forward() :: fun((pid(), gen_tcp:socket(), gen_tcp:socket()) -> term()).

%%====================================================================
%% API
%%====================================================================

%% @doc A proxy to 127.0.0.1:UpstreamPort, `up'.
-spec start(inet:port_number()) -> {ok, pid()}.
start(UpstreamPort) ->
    start(UpstreamPort, fun(_Proxy, Client, Server) -> copy(Client, Server) end).

%% @doc A proxy whose relay runs Forward(Proxy, Client, Server) for the
%% client -> server direction (server -> client is copied as it comes).
-spec start(inet:port_number(), forward()) -> {ok, pid()}.
start(UpstreamPort, Forward) ->
    gen_server:start(?MODULE, {UpstreamPort, Forward}, []).

%% @doc Keeps Item (what a Forward fun saw) for recorded/1.
-spec record(pid(), term()) -> ok.
record(Proxy, Item) ->
    gen_server:cast(Proxy, {record, Item}).

%% @doc What record/2 kept, oldest first.
-spec recorded(pid()) -> [term()].
recorded(Proxy) ->
    gen_server:call(Proxy, recorded).

-spec stop(pid()) -> ok.
stop(Proxy) ->
    gen_server:stop(Proxy).

%% @doc The port the proxy listens on.
-spec port(pid()) -> inet:port_number().
port(Proxy) ->
    gen_server:call(Proxy, port).

-spec up(pid()) -> ok.
up(Proxy) ->
    gen_server:call(Proxy, {mode, up}).

%% @doc From now on every connection is closed at once; open ones are cut.
-spec down(pid()) -> ok.
down(Proxy) ->
    gen_server:call(Proxy, {mode, down}).

%% @doc How many connections were closed because the proxy was down.
-spec refused(pid()) -> non_neg_integer().
refused(Proxy) ->
    gen_server:call(Proxy, refused).

%%====================================================================
%% gen_server
%%====================================================================

-spec init({inet:port_number(), forward()}) -> {ok, map()}.
init({UpstreamPort, Forward}) ->
    process_flag(trap_exit, true),
    {ok, Listen} = gen_tcp:listen(0, [binary, {ip, {127, 0, 0, 1}}, {active, false},
                                      {reuseaddr, true}, {backlog, 1024}]),
    {ok, Port} = inet:port(Listen),
    Self = self(),
    Acceptor = spawn_link(fun() -> accept_loop(Self, Listen) end),
    {ok, #{listen => Listen, port => Port, upstream => UpstreamPort, mode => up,
           acceptor => Acceptor, relays => [], refused => 0, forward => Forward,
           recorded => []}}.

-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call(port, _From, State = #{port := Port}) ->
    {reply, Port, State};
handle_call({mode, down}, _From, State = #{relays := Relays}) ->
    [exit(Pid, kill) || Pid <- Relays],
    {reply, ok, State#{mode := down, relays := []}};
handle_call({mode, Mode}, _From, State) ->
    {reply, ok, State#{mode := Mode}};
handle_call(refused, _From, State = #{refused := Refused}) ->
    {reply, Refused, State};
handle_call(recorded, _From, State = #{recorded := Recorded}) ->
    {reply, lists:reverse(Recorded), State};
%% The acceptor hands over each new connection.
handle_call({accepted, Socket}, _From, State = #{mode := down, refused := Refused}) ->
    gen_tcp:close(Socket),
    {reply, ok, State#{refused := Refused + 1}};
handle_call({accepted, Socket}, _From, State = #{mode := up, upstream := Upstream,
                                                 relays := Relays, forward := Forward}) ->
    Self = self(),
    Pid = spawn_link(fun() -> relay_start(Self, Upstream, Forward) end),
    ok = gen_tcp:controlling_process(Socket, Pid),
    Pid ! {socket, Socket},
    {reply, ok, State#{relays := [Pid | Relays]}}.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast({record, Item}, State = #{recorded := Recorded}) ->
    {noreply, State#{recorded := [Item | Recorded]}}.

-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({'EXIT', Pid, _Reason}, State = #{relays := Relays}) ->
    {noreply, State#{relays := lists:delete(Pid, Relays)}};
handle_info(_Info, State) ->
    {noreply, State}.

-spec terminate(term(), map()) -> ok.
terminate(_Reason, #{listen := Listen, relays := Relays, acceptor := Acceptor}) ->
    exit(Acceptor, kill),
    [exit(Pid, kill) || Pid <- Relays],
    gen_tcp:close(Listen),
    ok.

%%====================================================================
%% Connections
%%====================================================================

accept_loop(Proxy, Listen) ->
    case gen_tcp:accept(Listen) of
        {ok, Socket} ->
            ok = gen_tcp:controlling_process(Socket, Proxy),
            ok = gen_server:call(Proxy, {accepted, Socket}, ?TIMEOUT),
            accept_loop(Proxy, Listen);
        {error, closed} ->
            ok
    end.

%% Client -> server in this process, server -> client in a linked helper;
%% killing this process (`down') closes both sockets.
relay_start(Proxy, Upstream, Forward) ->
    Client = receive {socket, S} -> S end,
    case gen_tcp:connect({127, 0, 0, 1}, Upstream, [binary, {active, false}], ?TIMEOUT) of
        {ok, Server} ->
            Back = spawn_link(fun() -> copy(Server, Client) end),
            ok = gen_tcp:controlling_process(Server, Back),
            Forward(Proxy, Client, Server);
        {error, _} ->
            gen_tcp:close(Client)
    end.

%% @doc Copies From to To until From closes, then closes To.
-spec copy(gen_tcp:socket(), gen_tcp:socket()) -> no_return().
copy(From, To) ->
    case gen_tcp:recv(From, 0) of
        {ok, Data} ->
            _ = gen_tcp:send(To, Data),
            copy(From, To);
        {error, _} ->
            gen_tcp:close(To),
            exit(normal)
    end.
