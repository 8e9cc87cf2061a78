%% @doc A plain TCP proxy that tests control, to take a server away from
%% the node under test without touching the server (shared by others):
%% `up' relays each connection to 127.0.0.1:Upstream byte for byte; `down'
%% cuts every open connection and closes each new one at once, as an
%% unreachable server would. Listens on 127.0.0.1 (a port of its own); not
%% linked to its starter.
-module(ep_tcp_proxy).

-behaviour(gen_server).

-export([start/1, stop/1, port/1, up/1, down/1, refused/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(TIMEOUT, 10000).

%%====================================================================
%% API
%%====================================================================

%% @doc A proxy to 127.0.0.1:UpstreamPort, `up'.
-spec start(inet:port_number()) -> {ok, pid()}.
start(UpstreamPort) ->
    gen_server:start(?MODULE, UpstreamPort, []).

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

-spec init(inet:port_number()) -> {ok, map()}.
init(UpstreamPort) ->
    process_flag(trap_exit, true),
    {ok, Listen} = gen_tcp:listen(0, [binary, {ip, {127, 0, 0, 1}}, {active, false},
                                      {reuseaddr, true}, {backlog, 128}]),
    {ok, Port} = inet:port(Listen),
    Self = self(),
    Acceptor = spawn_link(fun() -> accept_loop(Self, Listen) end),
    {ok, #{listen => Listen, port => Port, upstream => UpstreamPort, mode => up,
           acceptor => Acceptor, relays => [], refused => 0}}.

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
%% The acceptor hands over each new connection.
handle_call({accepted, Socket}, _From, State = #{mode := down, refused := Refused}) ->
    gen_tcp:close(Socket),
    {reply, ok, State#{refused := Refused + 1}};
handle_call({accepted, Socket}, _From, State = #{mode := up, upstream := Upstream,
                                                 relays := Relays}) ->
    Pid = spawn_link(fun() -> relay_start(Upstream) end),
    ok = gen_tcp:controlling_process(Socket, Pid),
    Pid ! {socket, Socket},
    {reply, ok, State#{relays := [Pid | Relays]}}.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

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
relay_start(Upstream) ->
    Client = receive {socket, S} -> S end,
    case gen_tcp:connect({127, 0, 0, 1}, Upstream, [binary, {active, false}], ?TIMEOUT) of
        {ok, Server} ->
            Back = spawn_link(fun() -> copy(Server, Client) end),
            ok = gen_tcp:controlling_process(Server, Back),
            copy(Client, Server);
        {error, _} ->
            gen_tcp:close(Client)
    end.

copy(From, To) ->
    case gen_tcp:recv(From, 0) of
        {ok, Data} ->
            _ = gen_tcp:send(To, Data),
            copy(From, To);
        {error, _} ->
            gen_tcp:close(To),
            exit(normal)
    end.
