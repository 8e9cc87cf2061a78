%% @doc A TCP proxy in front of the SNS endpoint (moto) that tests control:
%% `up' relays connections and records every HTTP request that passes
%% (its `Action' and batch size); `down' accepts and closes each connection
%% at once, like an endpoint that is unreachable, and counts the attempts.
%% Listens on 127.0.0.1 (a port of its own); not linked to its starter.
-module(ep_sns_proxy).

-behaviour(gen_server).

-export([start/1, stop/1, url/1, up/1, down/1, requests/1, refused/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

%% One HTTP request that went through: its form-encoded body's Action and
%% parameters.
-type request() :: #{action := binary(), entries := non_neg_integer(),
                     params := [{binary(), binary()}]}.
-export_type([request/0]).

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

%% @doc The proxy's URL, for `sns_host'.
-spec url(pid()) -> string().
url(Proxy) ->
    "http://127.0.0.1:" ++ integer_to_list(gen_server:call(Proxy, port)).

-spec up(pid()) -> ok.
up(Proxy) ->
    gen_server:call(Proxy, {mode, up}).

%% @doc From now on every connection is closed at once; open ones are cut.
-spec down(pid()) -> ok.
down(Proxy) ->
    gen_server:call(Proxy, {mode, down}).

%% @doc The requests relayed so far, oldest first.
-spec requests(pid()) -> [request()].
requests(Proxy) ->
    gen_server:call(Proxy, requests).

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
                                      {reuseaddr, true}, {backlog, 1024}]),
    {ok, Port} = inet:port(Listen),
    Self = self(),
    Acceptor = spawn_link(fun() -> accept_loop(Self, Listen) end),
    {ok, #{listen => Listen, port => Port, upstream => UpstreamPort, mode => up,
           acceptor => Acceptor, relays => [], requests => [], refused => 0}}.

-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call(port, _From, State = #{port := Port}) ->
    {reply, Port, State};
handle_call({mode, down}, _From, State = #{relays := Relays}) ->
    [exit(Pid, kill) || Pid <- Relays],
    {reply, ok, State#{mode := down, relays := []}};
handle_call({mode, Mode}, _From, State) ->
    {reply, ok, State#{mode := Mode}};
handle_call(requests, _From, State = #{requests := Requests}) ->
    {reply, lists:reverse(Requests), State};
handle_call(refused, _From, State = #{refused := Refused}) ->
    {reply, Refused, State};
%% The acceptor hands over each new connection.
handle_call({accepted, Socket}, _From, State = #{mode := down, refused := Refused}) ->
    gen_tcp:close(Socket),
    {reply, ok, State#{refused := Refused + 1}};
handle_call({accepted, Socket}, _From, State = #{mode := up, upstream := Upstream,
                                                 relays := Relays}) ->
    Self = self(),
    Pid = spawn_link(fun() -> relay_start(Self, Upstream) end),
    ok = gen_tcp:controlling_process(Socket, Pid),
    Pid ! {socket, Socket},
    {reply, ok, State#{relays := [Pid | Relays]}}.

-spec handle_cast({request, request()}, map()) -> {noreply, map()}.
handle_cast({request, Request}, State = #{requests := Requests}) ->
    {noreply, State#{requests := [Request | Requests]}}.

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

%% Client -> upstream is parsed request by request (to record each);
%% upstream -> client is copied as it comes, by a linked helper.
relay_start(Proxy, Upstream) ->
    Client = receive {socket, S} -> S end,
    case gen_tcp:connect({127, 0, 0, 1}, Upstream, [binary, {active, false}], ?TIMEOUT) of
        {ok, Server} ->
            Back = spawn_link(fun() -> copy(Server, Client) end),
            ok = gen_tcp:controlling_process(Server, Back),
            relay_requests(Proxy, Client, Server, <<>>);
        {error, _} ->
            gen_tcp:close(Client)
    end.

copy(From, To) ->
    case gen_tcp:recv(From, 0) of
        {ok, Data} ->
            _ = gen_tcp:send(To, Data),
            copy(From, To);
        {error, _} ->
            %% The relay's recv on the client then fails and it ends.
            gen_tcp:close(To)
    end.

relay_requests(Proxy, Client, Server, Buffer) ->
    case take_request(Buffer) of
        {ok, Raw, Body, Rest} ->
            ok = gen_tcp:send(Server, Raw),
            gen_server:cast(Proxy, {request, parse_body(Body)}),
            relay_requests(Proxy, Client, Server, Rest);
        more ->
            case gen_tcp:recv(Client, 0) of
                {ok, Data} ->
                    relay_requests(Proxy, Client, Server, <<Buffer/binary, Data/binary>>);
                {error, _} ->
                    gen_tcp:close(Server)
            end
    end.

%% One complete request (head and Content-Length body) off the buffer.
take_request(Buffer) ->
    case binary:match(Buffer, <<"\r\n\r\n">>) of
        nomatch ->
            more;
        {Pos, 4} ->
            HeadLen = Pos + 4,
            Length = content_length(binary:part(Buffer, 0, Pos)),
            case byte_size(Buffer) >= HeadLen + Length of
                true ->
                    Raw = binary:part(Buffer, 0, HeadLen + Length),
                    Body = binary:part(Buffer, HeadLen, Length),
                    Rest = binary:part(Buffer, HeadLen + Length,
                                       byte_size(Buffer) - HeadLen - Length),
                    {ok, Raw, Body, Rest};
                false ->
                    more
            end
    end.

content_length(Head) ->
    Lines = binary:split(Head, <<"\r\n">>, [global]),
    Lengths = [binary_to_integer(string:trim(Value))
               || Line <- Lines,
                  [Name, Value] <- [binary:split(Line, <<":">>)],
                  string:lowercase(string:trim(Name)) =:= <<"content-length">>],
    case Lengths of
        [Length | _] -> Length;
        [] -> 0
    end.

parse_body(Body) ->
    Params = case uri_string:dissect_query(Body) of
                 L when is_list(L) -> [{to_bin(K), to_bin(V)} || {K, V} <- L];
                 _ -> []
             end,
    Entries = length([K || {K, _} <- Params,
                           binary:match(K, <<"PublishBatchRequestEntries.member.">>) =/= nomatch,
                           binary:longest_common_suffix([K, <<".Id">>]) =:= 3]),
    #{action => proplists:get_value(<<"Action">>, Params, <<>>),
      entries => Entries, params => Params}.

to_bin(true) -> <<>>;
to_bin(V) when is_binary(V) -> V;
to_bin(V) when is_list(V) -> unicode:characters_to_binary(V).
